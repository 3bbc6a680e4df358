"""Real processes for the fault tests: `stembot worker` subprocesses against a real Redis.

Each worker is the real entry point (``python -m stembot.cli worker``) with its own log file;
tests kill or stop it with real signals and wait on what Redis, the reply stream, the log or
the process itself says, never on fixed sleeps.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from arq.connections import ArqRedis, RedisSettings, create_pool

from shared import events
from shared.config import Settings
from shared.intake import build_options, file_chunks, submit_upload
from shared.jobs import Submitted
from shared.redis_server import PrivateRedis
from shared.schemas import ProgressEvent
from shared.storage import build_storage
from tests.support.service import StorageFolders
from tests.support.waiting import until

#: Short leases so a killed worker's job is re-run within seconds (the default is 60 s).
LEASE_S = 3
SIGNING_KEY = "faults-signing-key-not-a-secret"


@dataclass
class WorkerProcess:
    """One `stembot worker` process."""

    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    async def ready(self, within: float = 90) -> WorkerProcess:
        """Until the worker has loaded its model and polls its queue."""

        async def up() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"worker {self.name} exited:\n{self.log()[-3000:]}")
            return "worker: ready on queue" in self.log()

        await until(up, timeout_s=within, what=f"worker {self.name} to start")
        return self

    def took(self, arq_id: str) -> bool:
        """arq logged that this worker started the job (`→ <id>:separate(...)`)."""
        return f"→ {arq_id}:separate" in self.log()

    async def exit_code(self, within: float) -> int:
        try:
            return await asyncio.to_thread(self.proc.wait, within)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"worker {self.name} still running after {within} s") from None


@dataclass
class Faults(StorageFolders):
    """Workers as processes, and the test's own side of the service (submit, read events)."""

    settings: Settings
    redis: ArqRedis
    tmp: Path
    workers: list[WorkerProcess] = field(default_factory=list)

    def env(self, **overrides: str) -> dict[str, str]:
        s = self.settings
        env = {k: v for k, v in os.environ.items() if not k.startswith("STEMBOT_")}
        env.update(
            PYTHONUNBUFFERED="1",
            STEMBOT_REDIS_URL=str(s.redis.redis_url),
            STEMBOT_QUEUE_NAME=s.redis.queue_name,
            STEMBOT_DOWNLOAD_QUEUE_NAME=s.redis.download_queue_name,
            STEMBOT_STORAGE_DIR=str(s.storage.storage_dir),
            STEMBOT_MODEL_REPO=str(s.separation.model_repo),
            STEMBOT_DEVICE="cpu",
            STEMBOT_TORCH_THREADS="1",  # two workers share this machine's two cores
            STEMBOT_SIGNING_KEY=SIGNING_KEY,
            STEMBOT_PUBLIC_URL=s.storage.public_url,
            STEMBOT_JOB_LEASE_S=str(LEASE_S),
            STEMBOT_LOG_LEVEL="INFO",
        )
        env.update(overrides)
        return env

    def start_worker(self, name: str, **env: str) -> WorkerProcess:
        """Start `stembot worker --queue separate` (call ``ready()`` to wait for it)."""
        log_path = self.tmp / f"worker-{name}.log"
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "stembot.cli", "worker", "--queue", "separate"],
                cwd=self.tmp,  # no developer .env is read
                env=self.env(**env),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        worker = WorkerProcess(name, proc, log_path)
        self.workers.append(worker)
        return worker

    async def submit(self, path: Path, *, user: str = "u1") -> tuple[Submitted, str]:
        stream = f"test:events:{uuid.uuid4().hex}"
        submitted = await submit_upload(
            redis=self.redis,
            storage=build_storage(self.settings),
            settings=self.settings,
            chunks=file_chunks(path),
            filename=path.name,
            frontend="test",
            user_id=f"test:{user}",
            reply_to=stream,
            options=build_options(self.settings),
        )
        return submitted, stream

    async def stream(self, stream: str) -> list[ProgressEvent]:
        """Every event on a reply stream so far."""
        return [events.decode_entry(f) for _, f in await self.redis.xrange(stream)]

    async def final_events(self, stream: str, within: float = 90) -> list[ProgressEvent]:
        """Once the stream has a final event: every final event on it."""

        async def finals() -> list[ProgressEvent]:
            return [e for e in await self.stream(stream) if e.state.final]

        return await until(finals, timeout_s=within, what=f"a final event on {stream}")

    async def idle(self, within: float = 30) -> None:
        """Until no separation job is queued or running (arq is done with them)."""
        queue = self.settings.redis.queue_name

        async def empty() -> bool:
            return await self.redis.zcard(queue) == 0 and not await self.redis.keys(
                "arq:in-progress:*"
            )

        await until(empty, timeout_s=within, what="the queue to be empty")

    def stop_all(self) -> None:
        for worker in self.workers:
            if worker.proc.poll() is None:
                worker.proc.send_signal(signal.SIGKILL)
                worker.proc.wait()


@contextlib.asynccontextmanager
async def open_faults(redis_url: str, tmp: Path, model_repo: Path) -> AsyncIterator[Faults]:
    storage = tmp / "storage"
    storage.mkdir()
    settings = Settings(
        redis_url=redis_url,
        queue_name=f"test:queue:{uuid.uuid4().hex[:8]}",
        download_queue_name=f"test:download:{uuid.uuid4().hex[:8]}",
        storage_dir=storage,
        model_repo=model_repo,
        device="cpu",
        public_url="http://127.0.0.1:9",
        signing_key=SIGNING_KEY,
    )
    redis = await create_pool(RedisSettings.from_dsn(redis_url))
    faults = Faults(settings, redis, tmp)
    try:
        yield faults
    finally:
        faults.stop_all()
        await redis.aclose()


@pytest.fixture
async def faults(
    redis_server: PrivateRedis, tmp_path: Path, model_repo: Path
) -> AsyncIterator[Faults]:
    """Worker processes on the suite's Redis (flushed)."""
    async with open_faults(redis_server.url, tmp_path, model_repo) as f:
        await f.redis.flushall()
        yield f


@pytest.fixture
def aof_redis() -> Iterator[PrivateRedis]:
    """A Redis of this test's own with persistence on (append-only file, as deployed), which
    the test may stop and start again on the same port and folder."""
    server = PrivateRedis(appendonly=True).start()
    try:
        yield server
    finally:
        server.stop()
