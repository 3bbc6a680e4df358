"""ffmpeg reads only what the user sent: playlists, scripts and manifests are refused unopened.

Every hostile file names a canary song on this machine's disk and on a local HTTP server
(tests/support/hostile_files.py). Today's ffmpeg follows several of them (an HLS playlist of
absolute, relative or file:// paths, a master playlist, a key URI, an SBaGen script): the
probe must refuse each one with its own message and leave both canaries untouched.
"""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from shared.errors import ReferencesOtherFiles, Unreadable
from shared.media import ALLOWED_DEMUXERS, input_args, probe
from tests.support.audio import make_audio
from tests.support.hostile_files import HOSTILE, Canary, canary, write_hostile
from worker.audio import decode

REFUSED = (
    "That file is a playlist or script that points to other files or links, not a song "
    "itself. Send me the audio file itself (mp3, m4a, ogg, flac, wav...)."
)


@pytest_asyncio.fixture
async def bait(tmp_path: Path) -> AsyncIterator[Canary]:
    async with canary(tmp_path / "canary") as found:
        yield found


@pytest.mark.parametrize("name", sorted(HOSTILE))
async def test_probe_refuses_files_that_name_other_files(
    tmp_path: Path, bait: Canary, name: str
) -> None:
    path = write_hostile(tmp_path / "uploads", name, bait)
    with pytest.raises(ReferencesOtherFiles) as info:
        await probe(path, max_duration_s=600)
    assert info.value.code == "references_other_files"
    assert info.value.user_message == REFUSED
    bait.assert_untouched()


@pytest.mark.parametrize("name", ["hls-absolute-path", "ffconcat-relative", "sbaGen-script"])
def test_the_decode_is_pinned_to_the_probed_format(tmp_path: Path, bait: Canary, name: str) -> None:
    """The worker decodes with the demuxer the probe found: if the file changed between the
    two looks (or the probe was fooled), ffmpeg reads it as that format or fails."""
    path = write_hostile(tmp_path / "uploads", name, bait)
    with pytest.raises(Unreadable):
        decode(path, 44100, 2, src_channels=2, demuxer="mp3")
    bait.assert_untouched()


async def test_a_real_song_is_probed_with_its_demuxer(tmp_path: Path) -> None:
    for name, demuxer in [("a.mp3", "mp3"), ("a.m4a", "mov"), ("a.webm", "matroska")]:
        extra = ["-c:a", "libopus"] if name.endswith("webm") else []
        info = await probe(make_audio(tmp_path / name, seconds=1.0, extra=extra), max_duration_s=9)
        assert info.demuxer == demuxer


def test_every_allowed_demuxer_exists_in_this_ffmpeg() -> None:
    out = subprocess.run(
        ["ffmpeg", "-hide_banner", "-demuxers"], capture_output=True, text=True, check=True
    ).stdout
    names = {n for line in out.splitlines()[4:] for n in line.split()[1].split(",")}
    assert ALLOWED_DEMUXERS <= names, ALLOWED_DEMUXERS - names


def test_input_args_refuse_a_demuxer_outside_the_list(tmp_path: Path) -> None:
    assert input_args(tmp_path / "x", "mp3")[-4:] == ["-f", "mp3", "-i", f"file:{tmp_path}/x"]
    for name in ("hls", "concat", "image2", "lavfi", "sdp"):
        with pytest.raises(ValueError):
            input_args(tmp_path / "x", name)
