"""`stembot split --mix`: the mix files written next to the stems, through a private Redis
and in-process workers, as a user runs it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from shared.config import env_names
from shared.redis_server import free_port
from tests.support.audio import make_audio
from tests.support.cli import run_main


@pytest.fixture
def cli_env(tmp_path: Path, model_repo: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in env_names()}
    env.update(
        STEMBOT_MODEL_REPO=str(model_repo),
        STEMBOT_STORAGE_DIR=str(tmp_path / "storage"),
        STEMBOT_DEVICE="cpu",
        STEMBOT_PUBLIC_URL=f"http://127.0.0.1:{free_port()}",
    )
    return env


def test_split_writes_the_mixes_next_to_the_stems(tmp_path: Path, cli_env: dict[str, str]) -> None:
    song = make_audio(tmp_path / "song.mp3", seconds=3.0)
    args = ["split", str(song), "--out", "out", "--format", "wav"]
    ran = run_main(*args, "--mix", "bass,drums", "--mix", "no_vocals", env=cli_env, cwd=tmp_path)
    assert ran.code == 0, ran.err
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    stems = ["bass.wav", "drums.wav", "other.wav", "vocals.wav"]
    assert names == sorted([*stems, "mix_drums_bass.wav", "instrumental.wav"])
    lines = ran.out.splitlines()
    at = lines.index("Mixes (download links valid 24 h):")
    assert lines[at + 1] == "  mix_drums_bass: out/mix_drums_bass.wav"
    assert lines[at + 2].startswith(f"    {cli_env['STEMBOT_PUBLIC_URL']}/files/")
    assert lines[at + 2].split("?")[0].endswith("/mix_drums_bass.wav")
    assert lines[at + 3] == "  instrumental: out/instrumental.wav"
    assert len(lines) == at + 5
    # a mix is not silence, and not a stem
    mixed = (tmp_path / "out" / "mix_drums_bass.wav").read_bytes()
    assert len(mixed) == (tmp_path / "out" / "bass.wav").stat().st_size
    assert mixed != (tmp_path / "out" / "bass.wav").read_bytes()


@pytest.mark.parametrize(
    ("mix", "message"),
    [
        (
            "flute",
            "The model htdemucs has no 'flute' stem. Choose one of: drums, bass, other, vocals.",
        ),
        (
            "no_flute",
            "The model htdemucs has no 'flute' stem. Choose one of: drums, bass, other, vocals.",
        ),
        (",", "Choose at least one stem to mix."),
        (
            "drums,bass,other,vocals",
            "A mix of every stem is the whole song: leave out at least one stem (for example the "
            "vocals, for karaoke).",
        ),
    ],
)
def test_a_mix_that_does_not_fit_is_refused_before_anything_runs(
    tmp_path: Path, cli_env: dict[str, str], mix: str, message: str
) -> None:
    song = make_audio(tmp_path / "song.mp3", seconds=1.0)
    ran = run_main("split", str(song), "--mix", mix, env=cli_env, cwd=tmp_path)
    assert (ran.code, ran.out) == (1, "")
    assert ran.err == f"stembot: {message}\n"
    assert not (tmp_path / "out").exists()
