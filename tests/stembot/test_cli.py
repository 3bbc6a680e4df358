"""`stembot split` as a user runs it: a real process, a private Redis, an in-process worker."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from bots.web import create_app
from shared.config import Settings, env_names
from shared.redis_server import free_port
from shared.storage import build_storage
from stembot.demo import demo_split
from tests.support.audio import make_audio
from tests.support.service import Service

STEMBOT = str(Path(sys.executable).with_name("stembot"))


def run_cli(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [STEMBOT, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=180
    )


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


async def test_split_writes_stems_and_links_download(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    song = make_audio(tmp_path / "some.mp3", seconds=5.0)
    proc = run_cli("split", str(song), "--out", "out", env=cli_env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "done" in proc.stderr
    stems = sorted((tmp_path / "out").iterdir())
    assert [p.name for p in stems] == ["bass.mp3", "drums.mp3", "other.mp3", "vocals.mp3"]
    # the results page first: the best thing to open
    first, *_ = proc.stdout.splitlines()
    title, page = first.split(": ", 1)
    assert title == "Results page (listen, mix, download; valid 24 h)"
    assert page.startswith(cli_env["STEMBOT_PUBLIC_URL"] + "/r/")
    links = dict(
        line.strip().split(": ", 1) for line in proc.stdout.splitlines() if line.startswith("  ")
    )
    assert list(links) == ["drums", "bass", "other", "vocals", "all"]

    # the links download while the web server serves the same storage folder
    port = int(cli_env["STEMBOT_PUBLIC_URL"].rsplit(":", 1)[1])
    settings = Settings(
        storage_dir=Path(cli_env["STEMBOT_STORAGE_DIR"]),
        public_url=cli_env["STEMBOT_PUBLIC_URL"],
    )
    runner = web.AppRunner(create_app(settings, build_storage(settings)))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(page) as resp:
                assert resp.status == 200
                assert "some" in await resp.text()
            for name, link in links.items():
                async with http.get(link) as resp:
                    assert resp.status == 200
                    body = await resp.read()
                if name != "all":
                    assert body == (tmp_path / "out" / f"{name}.mp3").read_bytes()
    finally:
        await runner.cleanup()


def test_each_command_loads_only_what_it_runs() -> None:
    """`stembot --help` and the bots' commands (off without a token) start without loading
    what other commands run: torch alone takes seconds to import. (Each service command
    imports its own modules when it runs.)"""
    heavy = ("torch", "demucs", "discord", "telegram", "yt_dlp", "aiohttp.web")
    code = (
        "import sys, stembot.cli, stembot.services; "
        f"print(' '.join(m for m in {heavy!r} if m in sys.modules))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert (proc.returncode, proc.stdout) == (0, "\n"), proc.stderr


def test_missing_file_is_one_line_error(tmp_path: Path, cli_env: dict[str, str]) -> None:
    proc = run_cli("split", "nope.mp3", env=cli_env, cwd=tmp_path)
    assert proc.returncode == 1
    assert proc.stderr == "stembot: No such file: nope.mp3\n"


def test_not_audio_is_one_line_error(tmp_path: Path, cli_env: dict[str, str]) -> None:
    (tmp_path / "notes.mp3").write_text("not a song at all\n" * 100)
    proc = run_cli("split", "notes.mp3", env=cli_env, cwd=tmp_path)
    assert proc.returncode == 1
    assert proc.stderr.startswith("stembot: That file has no audio track I can use.")
    assert proc.stderr.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_unreachable_redis_is_one_line_error(tmp_path: Path, cli_env: dict[str, str]) -> None:
    song = make_audio(tmp_path / "some.mp3", seconds=1.0)
    env = dict(cli_env, STEMBOT_REDIS_URL=f"redis://:hunter2@127.0.0.1:{free_port()}/0")
    proc = run_cli("split", str(song), env=env, cwd=tmp_path)
    assert proc.returncode == 1
    assert proc.stderr.startswith("stembot: cannot reach Redis at redis://***@127.0.0.1:")
    assert proc.stderr.count("\n") == 1
    assert "hunter2" not in proc.stderr


async def test_demo_prints_the_results_page_first(
    service: Service, capsys: pytest.CaptureFixture[str]
) -> None:
    """What `make run` shows a newcomer with no bot token: the results page link first."""
    await demo_split(service.redis, service.storage, service.settings)
    first, *rest = capsys.readouterr().out.splitlines()
    title, page = first.split(": ", 1)
    assert title == "Results page (listen, mix, download; valid 24 h, served while this runs)"
    assert page.startswith(f"{service.base_url}/r/")
    async with aiohttp.ClientSession() as http, http.get(page) as resp:
        assert resp.status == 200
        assert "demo song" in await resp.text()
    assert [line.split(":")[0] for line in rest[:4]] == ["drums", "bass", "other", "vocals"]
    assert rest[4] == "Download links (valid 24 h, served while this runs):"
