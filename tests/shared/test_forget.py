"""/forget in the core, with real runs: what only the user asked for goes, shared results stay."""

from __future__ import annotations

import copy
import uuid
from pathlib import Path

import aiohttp
import pytest
from redis.asyncio import Redis

from shared import jobs, limits, masters, stats, usage
from shared.admin import NotAllowed
from shared.core import Core, Requester, Upload
from shared.forget import forget
from shared.intake import file_chunks
from shared.schemas import JobRequest, JobResult, LocalReply
from tests.support.audio import make_audio
from tests.support.service import Service

ANA, BEN = "telegram:1", "telegram:2"


async def ask(service: Service, path: Path, user: str, scope: str | None = None) -> JobResult:
    """A user's request through the core; its result (run or cached)."""
    stream = f"test:events:{uuid.uuid4().hex}"
    accepted = await Core(service.redis, service.storage, service.settings).request(
        Requester("test", user, scope=scope),
        Upload(file_chunks(path), path.name),
        service.options(),
        LocalReply(frontend="test"),
        reply_to=stream,
    )
    submitted = accepted.first
    if submitted.result is not None:
        return submitted.result
    final = (await service.events_until_final(stream))[-1]
    assert final.result is not None, final
    return final.result


async def ana_requests(redis: Redis) -> list[JobRequest]:
    found = [
        JobRequest.model_validate_json(await redis.get(k))
        for k in await redis.keys(jobs.request_key("*"))
    ]
    return [r for r in found if r.user_id == ANA]


async def status_of(url: str) -> int:
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        return response.status


async def test_forget_deletes_only_what_nobody_else_asked_for(
    service: Service, tmp_path: Path
) -> None:
    service.settings.limits.jobs_per_hour = 0
    solo = await ask(service, make_audio(tmp_path / "Solo.wav", seconds=2.0), ANA)
    duet_path = make_audio(tmp_path / "Duet.wav", seconds=2.5)
    duet = await ask(service, duet_path, ANA, scope="telegram:chat:-5")
    assert (await ask(service, duet_path, BEN)).key == duet.key  # answered from the cache
    redis, storage = service.redis, service.storage
    assert solo.zip is not None and await status_of(solo.zip.url) == 200
    assert await redis.exists(limits.window_key(ANA))
    [today] = await stats.recent(redis, 1)
    assert (today.done, round(today.minutes, 3)) == (2, round(4.5 / 60, 3))

    separations = {r.source.title: r.separation_key for r in await ana_requests(redis)}
    for separation in separations.values():
        assert await masters.find(redis, separation) is not None

    forgotten = await forget(redis, storage, ANA)

    assert (len(forgotten.requests), forgotten.deleted_jobs, forgotten.kept_jobs) == (2, 1, 1)
    assert {r.source.title for r in forgotten.requests} == {"Solo", "Duet"}
    # the master of Ana's own song goes with it; the one Ben's stems come from stays
    assert await masters.find(redis, separations["Solo"]) is None
    assert not storage.job_dir(masters.storage_key(separations["Solo"])).exists()
    assert await masters.find(redis, separations["Duet"]) is not None
    assert storage.job_dir(masters.storage_key(separations["Duet"])).is_dir()
    # the song only Ana asked for: links dead, files, cached result and job record gone
    assert await status_of(solo.zip.url) == 404
    assert not storage.job_dir(solo.key).exists()
    assert not await redis.exists(jobs.result_key(solo.key), jobs.job_key(solo.key))
    # the one Ben asked for too stays, without Ana's request in its job record
    assert duet.zip is not None and await status_of(duet.zip.url) == 200
    assert await redis.exists(jobs.result_key(duet.key))
    assert await redis.hget(jobs.job_key(duet.key), "spec") is None
    assert await redis.hget(jobs.job_key(duet.key), "state") == b"done"
    # nothing of Ana's is left in Redis but the totals; Ben's list is untouched
    for rid in forgotten.request_ids:
        assert not await redis.exists(jobs.request_key(rid))
    assert not await redis.exists(usage.user_jobs_key(ANA), limits.window_key(ANA))
    assert await redis.smembers(usage.user_jobs_key(BEN)) == {duet.key.encode()}
    leftovers = [k for k in await redis.keys("*") if ANA.encode() in k or b"telegram:1" in k]
    assert leftovers == []
    assert service.tmp_leftovers() == []  # the stems went at once, not to a cleanup later

    again = await forget(redis, storage, ANA)
    assert (again.requests, again.deleted_jobs, again.kept_jobs) == ([], 0, 0)


async def test_forget_waits_for_songs_in_progress(service: Service, tmp_path: Path) -> None:
    settings = copy.deepcopy(service.settings)
    settings.redis.queue_name = "test:queue:nobody"  # no worker takes it: the song waits
    path = make_audio(tmp_path / "Waiting.wav", seconds=2.0)
    submitted = await Core(service.redis, service.storage, settings).request(
        Requester("test", ANA),
        Upload(file_chunks(path), path.name),
        service.options(),
        LocalReply(frontend="test"),
        reply_to="test:events:waiting",
    )
    assert submitted.outcome == "queued"
    with pytest.raises(NotAllowed) as refused:
        await forget(service.redis, service.storage, ANA)
    assert refused.value.reason == "in_progress"
    assert await service.redis.exists(jobs.request_key(submitted.request_id))
    assert len(service.uploads()) == 1
