"""The separation key, the master's record, and how the core queues a render (real Redis)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from arq.connections import ArqRedis, RedisSettings, create_pool
from arq.jobs import Job

from shared import jobs, keys, masters
from shared.masters import Master
from shared.redis_server import PrivateRedis
from shared.schemas import JobOptions, Source, delivery_key, separation_key
from shared.storage import LocalStorage
from tests.shared.test_jobs import make_request, make_result

QUEUE, DOWNLOADS = "test:queue", "test:download"
SONG = Source(kind="upload", identity="a" * 64, title="Song")


@pytest.fixture
async def arq_redis(redis_server: PrivateRedis) -> AsyncIterator[ArqRedis]:
    pool = await create_pool(RedisSettings.from_dsn(redis_server.url))
    await pool.flushall()
    yield pool
    await pool.aclose()


def test_the_separation_key_holds_what_changes_demucs_output_only() -> None:
    base = separation_key(SONG, JobOptions())
    for delivery in ({"format": "flac"}, {"stems": "vocals"}, {"format": "wav", "stems": "bass"}):
        options = JobOptions(**delivery)  # type: ignore[arg-type]
        assert separation_key(SONG, options) == base
        assert delivery_key(SONG, options) != delivery_key(SONG, JobOptions())
    for separation in ({"model": "htdemucs_ft"}, {"shifts": 2}, {"overlap": 0.5}, {"segment": 5}):
        assert separation_key(SONG, JobOptions(**separation)) != base
    other = Source(kind="upload", identity="b" * 64, title="Song")
    assert separation_key(other, JobOptions()) != base
    youtube = Source(kind="youtube", identity="a" * 64, title="Song")
    assert separation_key(youtube, JobOptions()) != base
    # a job's key is what it always was (results and links made before stay valid)
    assert delivery_key(SONG, JobOptions()) == "7b9a9df38d13a331dbb185fd01fc8d72"
    request = make_request()
    assert (request.key, request.separation_key) == (
        delivery_key(request.source, request.options),
        separation_key(request.source, request.options),
    )


def a_master(key: str, expires_in: float = 3600) -> Master:
    result = make_result("job-key", expires_in)
    files = {"vocals": "vocals.flac"}
    return Master(
        separation_key=key,
        files=files,
        samplerate=44100,
        channels=2,
        frames=44100,
        expires_at=result.expires_at,
        result=result,
    )


async def test_a_master_is_found_while_valid_and_dropped_only_by_itself(
    arq_redis: ArqRedis,
) -> None:
    kept = a_master("k1")
    await masters.record(arq_redis, kept)
    assert await masters.find(arq_redis, "k1") == kept
    assert 3590_000 < await arq_redis.pttl(keys.master("k1")) <= 3600_000
    # a master about to expire is not used
    await masters.record(arq_redis, a_master("k2", expires_in=masters.MARGIN_S - 1))
    assert await masters.find(arq_redis, "k2") is None
    # a later separation's master replaced it: dropping the old one leaves the new one
    newer = a_master("k1")
    await masters.record(arq_redis, newer)
    await masters.drop(arq_redis, kept)
    assert await masters.find(arq_redis, "k1") == newer
    await masters.drop(arq_redis, newer)
    assert await masters.find(arq_redis, "k1") is None


async def test_keep_until_extends_the_files_and_the_record(
    arq_redis: ArqRedis, tmp_path: Path
) -> None:
    storage = LocalStorage(tmp_path / "root", "http://x", b"k" * 32, upload_ttl_s=3600)
    kept = a_master("k1")
    flac = tmp_path / "vocals.flac"
    flac.write_bytes(b"fLaC")
    await storage.publish_job(
        kept.storage_key, [("vocals", flac)], title="Song", expires_at=kept.expires_at
    )
    await masters.record(arq_redis, kept)
    later = time.time() + 7200
    extended = await masters.keep_until(arq_redis, storage, kept, later)
    assert extended is not None and extended.expires_at == later
    assert await masters.find(arq_redis, "k1") == extended
    listing = await storage.load_job(kept.storage_key)
    assert listing is not None and listing.expires_at == later
    assert await masters.delete(arq_redis, storage, "k1")
    assert await masters.find(arq_redis, "k1") is None
    assert await masters.keep_until(arq_redis, storage, kept, later) is None


async def queued_function(redis: ArqRedis, queue: str) -> tuple[str, str]:
    [arq_id] = [i.decode() for i in await redis.zrange(queue, 0, -1)]
    info = await Job(arq_id, redis, _queue_name=queue).info()
    assert info is not None
    return arq_id, info.function


async def test_the_core_queues_a_render_when_the_song_has_a_master(arq_redis: ArqRedis) -> None:
    mp3 = make_request()
    first = await jobs.submit(arq_redis, mp3, queue_name=QUEUE, download_queue=DOWNLOADS)
    assert first.outcome == "queued"
    assert (await queued_function(arq_redis, QUEUE))[1] == jobs.JOB_FUNCTION

    await masters.record(arq_redis, a_master(mp3.separation_key))
    flac = make_request(user="u2", format="flac")
    second = await jobs.submit(arq_redis, flac, queue_name=QUEUE, download_queue=DOWNLOADS)
    assert second.outcome == "queued" and second.job_id == flac.key != first.job_id
    arq_id, function = await queued_function(arq_redis, DOWNLOADS)
    assert function == jobs.RENDER_FUNCTION
    assert arq_id.endswith(jobs.DOWNLOAD_SUFFIX)
    assert (second.position, second.eta_s is not None) == (0, True)  # its place on that queue

    # another song, or the same song with another model, has no master: a separation
    other = make_request(identity="b" * 64, user="u3", format="flac")
    await jobs.submit(arq_redis, other, queue_name=QUEUE, download_queue=DOWNLOADS)
    assert await arq_redis.zcard(QUEUE) == 2 and await arq_redis.zcard(DOWNLOADS) == 1
