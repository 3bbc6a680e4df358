"""Fixtures shared by the whole suite: a real redis-server, storage, models, the service."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import torch
from redis.asyncio import Redis

from shared.redis_server import PrivateRedis
from tests.support.service import Service, running_service

# The test models are tiny: one thread computes them fastest. Two threads on two cores spin
# against the event loop, Redis and ffmpeg of the same test, and run 2-5x slower.
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[PrivateRedis]:
    """One real redis-server for the session; each test gets a flushed database."""
    with PrivateRedis() as server:
        yield server


@pytest.fixture
async def redis(redis_server: PrivateRedis) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_server.url)
    await client.flushall()
    yield client
    await client.aclose()


@pytest.fixture
def storage_dir(tmp_path: Path) -> Path:
    path = tmp_path / "storage"
    path.mkdir()
    return path


@pytest.fixture
async def service(
    redis_server: PrivateRedis, storage_dir: Path, model_repo: Path
) -> AsyncIterator[Service]:
    """The whole service (Redis, worker, download worker, web server), Redis flushed."""
    async with running_service(redis_server.url, storage_dir, model_repo) as svc:
        await svc.redis.flushall()
        yield svc


@pytest.fixture(scope="session")
def model_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small Demucs model repo (random weights, real classes) for the whole session."""
    from tests.support.model_repo import write_model_repo

    return write_model_repo(tmp_path_factory.mktemp("models"))
