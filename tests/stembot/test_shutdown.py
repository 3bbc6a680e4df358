"""`stembot run` and `stembot split` stopped by SIGTERM (`docker stop`, systemd) or SIGINT
(Ctrl-C): the real processes, each with the private redis-server it starts when no
STEMBOT_REDIS_URL is set, stopped mid-job.

The process must exit within seconds with one line saying why, hand its running job back
(what it wrote to its Redis on the way out, recorded by ``redis-cli monitor``), and leave
neither its redis-server nor that server's temporary folder nor the job's scratch folder.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest
from redis.asyncio import Redis

from shared.config import env_names
from shared.redis_server import free_port
from tests.stembot.test_cli import STEMBOT
from tests.support.audio import make_audio
from tests.support.waiting import until

pytestmark = pytest.mark.faults

#: What "promptly" means: the running Demucs segment ends, the jobs go back, Redis stops.
STOP_WITHIN_S = 15  # (about 3 s of it, on 2 busy cores, is Python unloading torch at exit)
QUEUE = "stembot:queue:separate"


@pytest.fixture
def env(tmp_path: Path, model_repo: Path) -> dict[str, str]:
    """No STEMBOT_REDIS_URL (so a private Redis), no bot token, random-weight models."""
    env = {k: v for k, v in os.environ.items() if k not in env_names()}
    env.update(
        PYTHONUNBUFFERED="1",
        STEMBOT_MODEL_REPO=str(model_repo),
        STEMBOT_STORAGE_DIR=str(tmp_path / "storage"),
        STEMBOT_DEVICE="cpu",
        STEMBOT_WEB_PORT=str(free_port()),
        STEMBOT_PUBLIC_URL=f"http://127.0.0.1:{free_port()}",
    )
    return env


@dataclass
class Stembot:
    """One `stembot` process, in its own process group as a shell runs it."""

    proc: subprocess.Popen[bytes]
    stderr_path: Path
    left: Leftovers

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    async def private_redis(self) -> psutil.Process:
        """Until it has started its redis-server; that process."""

        async def child() -> psutil.Process | None:
            if self.proc.poll() is not None:
                raise AssertionError(f"stembot exited:\n{self.stderr()[-3000:]}")
            for proc in psutil.Process(self.proc.pid).children(recursive=True):
                with _gone_is_none():
                    if proc.name() == "redis-server" and _port(proc):
                        return proc
            return None

        server = await until(child, timeout_s=60, what="the private redis-server")
        self.left.servers.append((server, Path(server.cwd())))
        return server

    async def separating(self) -> None:
        """Until the user sees Demucs at work on the job (the progress line)."""

        async def seen() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"stembot exited:\n{self.stderr()[-3000:]}")
            return "\nseparating  [" in self.stderr()

        await until(seen, timeout_s=90, what="the job to be separating")

    async def exit_code(self) -> int:
        try:
            return await asyncio.to_thread(self.proc.wait, STOP_WITHIN_S)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"still running {STOP_WITHIN_S} s after the signal:\n{self.stderr()[-3000:]}"
            ) from None


@dataclass
class Leftovers:
    """What a test started or found started; removed at its end, so that a test that fails
    (as on code that leaves its redis-server behind) leaves nothing running."""

    popens: list[subprocess.Popen[bytes]] = field(default_factory=list)
    servers: list[tuple[psutil.Process, Path]] = field(default_factory=list)

    def clear(self) -> None:
        for popen in self.popens:
            popen.kill()  # nothing, if it has ended
            popen.wait()
        for server, folder in self.servers:
            with _gone_is_none():
                server.kill()
                server.wait(10)
            shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def leftovers() -> Iterator[Leftovers]:
    left = Leftovers()
    try:
        yield left
    finally:
        left.clear()


def start(left: Leftovers, tmp_path: Path, env: dict[str, str], *args: str) -> Stembot:
    """Start `stembot ARGS` in its own session, as a shell starts a foreground command."""
    stderr_path = tmp_path / "stderr.txt"
    with (tmp_path / "stdout.txt").open("wb") as out, stderr_path.open("wb") as err:
        proc = subprocess.Popen(
            [STEMBOT, *args], env=env, cwd=tmp_path, stdout=out, stderr=err, start_new_session=True
        )
    left.popens.append(proc)
    return Stembot(proc, stderr_path, left)


def _port(server: psutil.Process) -> int | None:
    """The port the redis-server listens on, once it does."""
    for conn in server.net_connections("tcp"):
        if conn.status == psutil.CONN_LISTEN:
            return int(conn.laddr.port)
    return None


class _gone_is_none:
    """A process that ended while we looked at it is simply not there."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: object, exc: object, tb: object) -> bool:
        return isinstance(exc, psutil.NoSuchProcess)


@dataclass
class Monitor:
    """``redis-cli monitor`` on the private Redis: every command it runs, until it stops."""

    proc: subprocess.Popen[bytes]
    path: Path

    @classmethod
    def start(cls, port: int, path: Path, left: Leftovers) -> Monitor:
        with path.open("wb") as out:
            proc = subprocess.Popen(
                ["redis-cli", "-p", str(port), "monitor"], stdout=out, stderr=subprocess.STDOUT
            )
        left.popens.append(proc)
        return cls(proc, path)

    async def attached(self) -> Monitor:
        async def ok() -> bool:
            return self.path.read_text().startswith("OK\n")

        await until(ok, timeout_s=10, what="redis-cli monitor to attach")
        return self

    async def commands(self) -> str:
        """Everything the server ran; redis-cli ends when the server stops."""
        try:
            await asyncio.to_thread(self.proc.wait, 5)
        except subprocess.TimeoutExpired:
            raise AssertionError("the private redis-server is still serving") from None
        return self.path.read_text()


@dataclass
class Stop:
    code: int
    stderr: str
    arq_id: str  # the job that was running
    commands: str  # what the private Redis ran from the signal on


async def stop_mid_job(cli: Stembot, sig: signal.Signals, tmp_path: Path) -> Stop:
    """Signal ``cli`` while Demucs separates; check that nothing of it is left."""
    server = await cli.private_redis()
    redis_dir = Path(server.cwd())
    assert redis_dir.name.startswith("stembot-redis-") and redis_dir.is_dir()
    port = _port(server)
    assert port is not None
    await cli.separating()
    redis = Redis(port=port)
    try:
        running = await redis.keys("arq:in-progress:*")
    finally:
        await redis.aclose()
    assert len(running) == 1
    arq_id = running[0].decode().removeprefix("arq:in-progress:")
    workdir = tmp_path / "storage" / "tmp" / arq_id
    assert workdir.is_dir()
    monitor = await Monitor.start(port, tmp_path / "monitor.txt", cli.left).attached()

    if sig == signal.SIGINT:  # Ctrl-C: the terminal signals the whole foreground group
        os.killpg(cli.proc.pid, sig)
    else:  # docker stop: the main process only
        cli.proc.send_signal(sig)
    code = await cli.exit_code()

    commands = await monitor.commands()
    assert not server.is_running()  # the redis-server it started is gone...
    assert not redis_dir.exists()  # ...and so is its folder
    assert not workdir.exists()  # the job's scratch files too
    assert list((tmp_path / "storage" / "tmp").iterdir()) == []
    stderr = cli.stderr()
    assert "Traceback" not in stderr
    return Stop(code, stderr, arq_id, commands)


def handed_back(stop: Stop) -> None:
    """arq's hand-back: the job's in-progress mark deleted, its try given back, and the job
    left in the queue (not finished, not failed)."""
    commands, arq_id = stop.commands, stop.arq_id
    assert f'"DEL" "arq:in-progress:{arq_id}"' in commands
    assert f'"DECRBY" "arq:retry:{arq_id}" "1"' in commands
    assert f'"ZREM" "{QUEUE}" "{arq_id}"' not in commands
    assert f"arq:result:{arq_id}" not in commands


@pytest.mark.timeout(120)
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_run_stopped_mid_job_hands_it_back_and_stops_its_redis(
    tmp_path: Path, env: dict[str, str], leftovers: Leftovers, sig: signal.Signals
) -> None:
    cli = start(leftovers, tmp_path, env, "run")  # no token: it splits its demo song
    stop = await stop_mid_job(cli, sig, tmp_path)
    assert stop.code == 0  # a service asked to stop has stopped, as systemd and Docker expect
    assert stop.stderr.endswith(f"\nstembot: stopped by {sig.name}\n")
    assert "cancelled, will be run again" in stop.stderr  # arq's own word for the hand-back
    handed_back(stop)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_split_stopped_mid_job_hands_it_back_and_stops_its_redis(
    tmp_path: Path, env: dict[str, str], leftovers: Leftovers, sig: signal.Signals
) -> None:
    song = make_audio(tmp_path / "song.wav", seconds=20.0)
    cli = start(leftovers, tmp_path, env, "split", str(song), "--out", "out")
    stop = await stop_mid_job(cli, sig, tmp_path)
    assert stop.code == 128 + sig  # the split did not finish, as a shell reports a signal
    lines = stop.stderr.splitlines()
    assert lines[-1] == f"stembot: stopped by {sig.name} before the split finished"
    assert lines[-2].startswith("separating  [")  # nothing else between progress and reason
    assert (tmp_path / "stdout.txt").read_text() == ""
    assert not (tmp_path / "out").exists()
    handed_back(stop)


@pytest.mark.timeout(60)
async def test_split_stopped_while_starting_stops_its_redis(
    tmp_path: Path, env: dict[str, str], leftovers: Leftovers
) -> None:
    song = make_audio(tmp_path / "song.wav", seconds=2.0)
    cli = start(leftovers, tmp_path, env, "split", str(song))
    server = await cli.private_redis()  # as soon as it listens, before any job ran
    redis_dir = Path(server.cwd())
    cli.proc.terminate()
    assert await cli.exit_code() == 128 + signal.SIGTERM
    stderr = cli.stderr()
    assert stderr.endswith("\nstembot: stopped by SIGTERM before the split finished\n") or (
        stderr == "stembot: stopped by SIGTERM before the split finished\n"
    )
    assert "Traceback" not in stderr
    assert not server.is_running()
    assert not redis_dir.exists()
