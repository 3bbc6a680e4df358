"""The platform-neutral core of a request: reuse, join or enqueue; cancel (places in the queue:
shared.places).

Its records in Redis (a request, a run's hash and waiting set, the result, the ETA average)
are laid out in shared.keys; ``job:<key>`` is a hash of state, percent, arq_id (this run's
arq job id), spec (the JobRequest that started it), error_code, error_message, updated.

The arq job id of a run is ``<key>.<random>``, so a new run after a failure never collides
with arq's bookkeeping of the previous one; our own Lua script is what makes identical work
run once.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from arq.connections import ArqRedis
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from shared import events, keys, masters, metrics, usage
from shared.errors import Cancelled
from shared.lua import LuaScript
from shared.places import DEFAULT_JOB_S as DEFAULT_JOB_S
from shared.places import DOWNLOAD_SUFFIX as DOWNLOAD_SUFFIX
from shared.places import RENDER_STAGE
from shared.places import STATS_JOB_S as STATS_JOB_S
from shared.places import average_job_s as average_job_s
from shared.places import queue_position as queue_position
from shared.places import record_job_time as record_job_time
from shared.places import running_count as running_count
from shared.places import waiting_arq_ids as waiting_arq_ids
from shared.schemas import JobRequest, JobResult, JobState, ProgressEvent
from shared.storage import Storage

REQUEST_TTL_S = 3 * 24 * 3600
FINAL_STATE_TTL_S = 24 * 3600
JOB_FUNCTION = "separate"
DOWNLOAD_FUNCTION = "download"
RENDER_FUNCTION = "render"


result_key = keys.result
job_key = keys.job
subscribers_key = keys.job_requests
request_key = keys.request
cancel_key = keys.cancel

#: Redis errors that mean "unreachable for now" (restart, failover, network); BusyLoadingError,
#: while a restarted Redis reads its append-only file, is a ConnectionError.
REDIS_DOWN = (RedisConnectionError, RedisTimeoutError)

# Reuse a valid result, else subscribe the request and either join the live run or start one.
_SUBMIT = LuaScript("""
local res = redis.call('GET', KEYS[1])
if res then return {'cached', res} end
redis.call('SET', KEYS[4], ARGV[2], 'EX', ARGV[5])
redis.call('SADD', KEYS[3], ARGV[1])
redis.call('EXPIRE', KEYS[3], ARGV[5])
local state = redis.call('HGET', KEYS[2], 'state')
if state and state ~= 'done' and state ~= 'failed' and state ~= 'cancelled' then
  return {'joined', redis.call('HGET', KEYS[2], 'arq_id') or ''}
end
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[2], 'state', 'queued', 'spec', ARGV[2], 'arq_id', ARGV[6],
           'updated', ARGV[4])
return {'new', ARGV[6]}
""")

# Final state of a run: record it, hand back and clear the waiting requests, atomically with
# respect to _SUBMIT (a request either sees the result or is among the members returned).
_FINISH = LuaScript("""
if ARGV[3] ~= '' then redis.call('SET', KEYS[3], ARGV[3], 'PX', ARGV[4]) end
if redis.call('HGET', KEYS[1], 'arq_id') ~= ARGV[5] then return {} end
redis.call('HSET', KEYS[1], 'state', ARGV[1], 'error_code', ARGV[2], 'updated', ARGV[6])
redis.call('EXPIRE', KEYS[1], ARGV[7])
local members = redis.call('SMEMBERS', KEYS[2])
redis.call('DEL', KEYS[2])
return members
""")


@dataclass(frozen=True)
class Submitted:
    """What the frontend tells the user right away."""

    outcome: Literal["cached", "joined", "queued"]
    job_id: str
    request_id: str
    position: int | None = None
    eta_s: float | None = None
    result: JobResult | None = None


async def submit(
    redis: ArqRedis, request: JobRequest, *, queue_name: str, download_queue: str | None = None
) -> Submitted:
    """Answer from the cache, join the run already queued/running, or enqueue a new run.

    A new run starts with a render when its song's separation left a valid master
    (shared.masters: another format or stems mode, made without Demucs), else a YouTube
    source with its download; both run on ``download_queue`` (no model, no GPU slot held: a
    render answers in seconds even behind long separations). The download (or a render
    whose master is gone after all) then puts the separation on ``queue_name``.
    """
    key = request.key
    arq_id = f"{key}.{secrets.token_hex(4)}"
    raw = await _SUBMIT(
        redis,
        [result_key(key), job_key(key), subscribers_key(key), request_key(request.request_id)],
        [
            request.request_id,
            request.model_dump_json(),
            "",
            f"{time.time():.3f}",
            str(REQUEST_TTL_S),
            arq_id,
        ],
    )
    kind, value = raw[0].decode(), raw[1].decode()
    if kind == "cached":
        result = JobResult.model_validate_json(value)
        if result.valid():
            await metrics.observe_requests(redis, [request], JobState.DONE)
            return Submitted("cached", key, request.request_id, result=result)
        # Links about to expire: drop the entry and go again for fresh links.
        await redis.delete(result_key(key))
        return await submit(redis, request, queue_name=queue_name, download_queue=download_queue)
    arq_id = value
    if kind == "new":
        first_stage = await _first_stage(redis, request, download_queue)
        # what the run waits for first (a render's place gets a render's ETA: shared.places)
        stage = RENDER_STAGE if first_stage == RENDER_FUNCTION else (first_stage or "separate")
        await redis.hset(job_key(key), "stage", stage)  # type: ignore[misc]
        if first_stage is None:
            await enqueue_fifo(redis, JOB_FUNCTION, key, arq_id, arq_id, queue_name)
        else:
            assert download_queue is not None
            stage_id = arq_id + DOWNLOAD_SUFFIX
            await enqueue_fifo(redis, first_stage, key, arq_id, stage_id, download_queue)
    position, eta = await queue_position(redis, arq_id, queue_name=queue_name)
    if position is None and download_queue is not None:
        render = await redis.hget(job_key(key), "stage") == RENDER_STAGE.encode()  # type: ignore[misc]
        position, eta = await queue_position(
            redis, arq_id + DOWNLOAD_SUFFIX, queue_name=download_queue, render=render
        )
    outcome: Literal["joined", "queued"] = "joined" if kind == "joined" else "queued"
    return Submitted(outcome, key, request.request_id, position=position, eta_s=eta)


async def _first_stage(redis: Redis, request: JobRequest, download_queue: str | None) -> str | None:
    """The function of a new run's stage on the download queue (a render from the song's
    master, a YouTube download), or None: straight to the separation queue. A custom mix is
    always a render (shared.mixes: it fails there when the master is gone, it never
    separates)."""
    if download_queue is not None and request.options.mix is not None:
        return RENDER_FUNCTION
    if download_queue is not None and await masters.find(redis, request.separation_key):
        return RENDER_FUNCTION
    if request.source.kind == "youtube":
        if download_queue is None:
            raise ValueError("a YouTube source needs the download queue")
        return DOWNLOAD_FUNCTION
    return None


async def finish(
    redis: Redis,
    key: str,
    arq_id: str,
    state: JobState,
    *,
    result: JobResult | None = None,
    error_code: str = "",
) -> list[JobRequest]:
    """Record a run's final state; return the requests that were waiting for it."""
    ttl_ms = int((result.expires_at - time.time()) * 1000) if result else 0
    raw = await _FINISH(
        redis,
        [job_key(key), subscribers_key(key), result_key(key)],
        [
            state.value,
            error_code,
            result.model_dump_json() if result and ttl_ms > 0 else "",
            str(max(ttl_ms, 1)),
            arq_id,
            f"{time.time():.3f}",
            str(FINAL_STATE_TTL_S),
        ],
    )
    return await load_requests(redis, [m.decode() for m in raw])


async def load_requests(redis: Redis, request_ids: list[str]) -> list[JobRequest]:
    if not request_ids:
        return []
    raws = await redis.mget([request_key(r) for r in request_ids])
    return [JobRequest.model_validate_json(r) for r in raws if r]


async def waiting_requests(redis: Redis, key: str) -> list[JobRequest]:
    members = await redis.smembers(subscribers_key(key))  # type: ignore[misc]
    return await load_requests(redis, sorted(m.decode() for m in members))


_SET_STATE = LuaScript("""
if redis.call('HGET', KEYS[1], 'arq_id') ~= ARGV[1] then return 0 end
local state = redis.call('HGET', KEYS[1], 'state')
if state == 'done' or state == 'failed' or state == 'cancelled' then return 0 end
redis.call('HSET', KEYS[1], 'state', ARGV[2], 'percent', ARGV[3], 'updated', ARGV[4])
return 1
""")


async def set_state(
    redis: Redis, key: str, arq_id: str, state: JobState, percent: float | None
) -> bool:
    """Record a run's progress; False when the run was cancelled or superseded meanwhile."""
    done = await _SET_STATE(
        redis,
        [job_key(key)],
        [arq_id, state.value, "" if percent is None else f"{percent:.1f}", f"{time.time():.3f}"],
    )
    return bool(done)


# The next free score of a queue: now, or one ms after the last one handed out.
_NEXT_SCORE = LuaScript("""
local last = tonumber(redis.call('GET', KEYS[1]) or '0')
local score = math.max(tonumber(ARGV[1]), last + 1)
redis.call('SET', KEYS[1], score, 'PX', 86400000)
return score
""")


async def enqueue_fifo(
    redis: ArqRedis, function: str, key: str, arq_id: str, job_id: str, queue_name: str
) -> None:
    """Enqueue so that runs start in the order they were submitted.

    arq scores a job with its enqueue time in ms and workers take the lowest score first,
    ties in job-id order: two submissions in the same millisecond would start in the order
    of their random ids. Each gets a score of its own (at most a few ms ahead of the clock).
    """
    score = await _NEXT_SCORE(redis, [keys.queue_score(queue_name)], [str(int(time.time() * 1000))])
    await redis.enqueue_job(
        function,
        key,
        arq_id,
        _job_id=job_id,
        _queue_name=queue_name,
        _defer_until=datetime.fromtimestamp(int(score) / 1000, tz=UTC),
    )


async def notify(redis: Redis, requests: list[JobRequest], event: ProgressEvent) -> None:
    """Publish an event to each request's frontend; a final one ends their usage first (so a
    user told "done" can send the next song at once)."""
    if event.state.final:
        await usage.on_final(redis, requests, event)
        await metrics.observe_requests(redis, requests, event.state, at=event.ts)
    await events.publish(redis, [(r.reply_to, r.request_id) for r in requests], event)


async def cancel_request(
    redis: ArqRedis, request: JobRequest, *, storage: Storage | None = None
) -> bool:
    """Withdraw one request; abort the run when nobody else is waiting for it.

    An aborted run's source (the upload, or the audio its download stage stored) is deleted
    from ``storage`` here, before the cancelled event: arq never calls a job aborted before it
    started, so no worker would delete it. Frontends pass their storage; None (tests of the
    queue alone) leaves it. Returns True when the request was still waiting (the user gets a
    cancelled event).
    """
    key = request.key
    removed = await redis.srem(subscribers_key(key), request.request_id)  # type: ignore[misc]
    if not removed:
        return False
    cancelled = Cancelled()
    told = [request]
    if await redis.scard(subscribers_key(key)) == 0:  # type: ignore[misc]
        raw = await redis.hget(job_key(key), "arq_id")  # type: ignore[misc]
        if raw:
            arq_id = raw.decode()
            await redis.set(cancel_key(arq_id), b"1", ex=FINAL_STATE_TTL_S)
            # arq's abort protocol: the worker cancels the task, or skips it if not started.
            await redis.zadd(keys.ARQ_ABORT, {arq_id: int(time.time() * 1000)})
            # requests that joined meanwhile hear the end too
            told += await finish(redis, key, arq_id, JobState.CANCELLED, error_code=cancelled.code)
            if storage is not None:
                await _delete_sources(redis, storage, key, arq_id)
    await notify(
        redis,
        told,
        ProgressEvent(
            job_id=key,
            request_ids=[],
            state=JobState.CANCELLED,
            error_code=cancelled.code,
            error_message=cancelled.user_message,
            error_params=cancelled.params,
        ),
    )
    return True


async def _delete_sources(redis: Redis, storage: Storage, key: str, arq_id: str) -> None:
    """Delete what run ``arq_id`` holds of a user's bytes: the upload that started it and the
    audio its download stage stored (a worker that is running it meanwhile is being aborted;
    one that is downloading deletes its file itself once it sees the run cancelled)."""
    raw = await redis.hmget(job_key(key), ["arq_id", "spec", "storage_key"])  # type: ignore[misc]
    if raw[0] is None or raw[0].decode() != arq_id:
        return  # another run of this key started since: its files are not ours
    found = {raw[2].decode()} if raw[2] else set()
    if raw[1] is not None:
        found.add(JobRequest.model_validate_json(raw[1]).source.storage_key or "")
    for storage_key in sorted(found - {""}):
        await storage.delete(storage_key)
