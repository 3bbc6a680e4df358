"""A user's /forget: delete what the service keeps about them, on every platform alike.

Deleted: their request records (``stembot:request:<id>``: song titles, chats, options), the
list of jobs they asked for (shared.usage), their limit usage (window, active slots, minutes),
and for each job only they asked for: its cached result, its job record, its stems, zip and
uploaded file, and the master its separation kept (shared.masters) unless a job someone else
asked for comes from the same separation. A job someone else asked for too keeps its result
and files (they expire with their links); if this user's request is what started it, that
copy of their request is removed from the job record once the run is over.

Kept on purpose: bans and the admins' audit log (the operators' record, see
shared.limits.forget_user), and the per-day totals (shared.stats: no user in them).
The frontends' records of their requests (``shared.keys.final_parts``, ``api_job``) go too;
each platform deletes the rest of its own per-user state (Telegram's settings, message
links) itself. shared.keys lists every per-user key.
While one of their songs is still in progress nothing is deleted: the user cancels it or
waits, then asks again (so a worker never writes the results of a forgotten request).
"""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis

from shared import keys, limits, masters
from shared.admin import NotAllowed
from shared.schemas import FINAL_STATES, JobRequest
from shared.storage import Storage

SCAN_COUNT = 1000
#: The user id of an HTTP API key's owner is ``api:<owner>`` (bots.api).
API_USER = "api:"
_FINAL = {state.value for state in FINAL_STATES}


@dataclass(frozen=True)
class Forgotten:
    """What /forget did."""

    #: Their request records that were deleted.
    requests: list[JobRequest]
    #: Jobs only they asked for whose result or files were deleted.
    deleted_jobs: int
    #: Jobs someone else asked for too: kept until they expire.
    kept_jobs: int

    @property
    def request_ids(self) -> list[str]:
        return [r.request_id for r in self.requests]


async def forget(redis: Redis, storage: Storage, user_id: str) -> Forgotten:
    """Delete a user's data (see the module docs); NotAllowed("in_progress") while a song of
    theirs is waiting or running."""
    mine, others_keys, others_separations = await _request_records(redis, user_id)
    for request in mine:
        if await redis.sismember(keys.job_requests(request.key), request.request_id):  # type: ignore[misc]
            raise NotAllowed("in_progress")
    asked = {k.decode() for k in await redis.smembers(keys.user_jobs(user_id))}  # type: ignore[misc]
    job_keys = asked | {r.key for r in mine}
    shared = others_keys | await _asked_by_others(redis, user_id, job_keys)
    deleted = kept = 0
    kept_separations, doomed_separations = set(others_separations), set()
    for key in sorted(job_keys):
        state, spec_raw = await redis.hmget(keys.job(key), ["state", "spec"])  # type: ignore[misc]
        spec = JobRequest.model_validate_json(spec_raw) if spec_raw else None
        live = state is not None and state.decode() not in _FINAL
        separations = {r.separation_key for r in [*mine, *([spec] if spec else [])] if r.key == key}
        if key in shared or live:
            kept += 1
            kept_separations |= separations
            if spec is not None and spec.user_id == user_id and not live:
                await redis.hdel(keys.job(key), "spec")  # type: ignore[misc]
            continue
        uploads = {r.source.storage_key for r in [*mine, *([spec] if spec else [])] if r.key == key}
        gone = await redis.delete(keys.result(key), keys.job(key), keys.job_requests(key))
        files = await _delete_job_files(storage, key)
        for upload in sorted(u for u in uploads if u):
            await storage.delete(upload)
        doomed_separations |= separations
        if gone or files:
            deleted += 1
    for separation in sorted(doomed_separations - kept_separations):
        await masters.delete(redis, storage, separation)
    stale = [keys.request(r.request_id) for r in mine] + [keys.user_jobs(user_id)]
    # what the frontends keep per request: what of the final message went out, the API's record
    stale += [keys.final_parts(r.frontend, r.request_id) for r in mine]
    stale += [keys.api_job(r.request_id) for r in mine]
    stale += await _api_records(redis, user_id)
    await redis.delete(*stale)
    await limits.forget_user(redis, user_id)
    return Forgotten(mine, deleted, kept)


async def _request_records(
    redis: Redis, user_id: str
) -> tuple[list[JobRequest], set[str], set[str]]:
    """(this user's request records, the job keys and separation keys of everyone else's)."""
    mine: list[JobRequest] = []
    others: set[str] = set()
    others_separations: set[str] = set()
    batch: list[bytes] = []

    async def read() -> None:
        for raw in await redis.mget(batch):
            if raw is None:
                continue
            request = JobRequest.model_validate_json(raw)
            if request.user_id == user_id:
                mine.append(request)
            else:
                others.add(request.key)
                others_separations.add(request.separation_key)
        batch.clear()

    async for name in redis.scan_iter(match=keys.request("*"), count=SCAN_COUNT):
        batch.append(name)
        if len(batch) >= SCAN_COUNT:
            await read()
    if batch:
        await read()
    return sorted(mine, key=lambda r: r.created_at), others, others_separations


async def _api_records(redis: Redis, user_id: str) -> list[str]:
    """The HTTP API's records of an API user (``api:<owner>``), those answered from the cache
    included (they have no request record)."""
    if not user_id.startswith(API_USER):
        return []
    owner = user_id.removeprefix(API_USER).encode()
    found = []
    async for name in redis.scan_iter(match=keys.api_job("*"), count=SCAN_COUNT):
        if await redis.hget(name, "owner") == owner:  # type: ignore[misc]
            found.append(name.decode())
    return found


async def _asked_by_others(redis: Redis, user_id: str, job_keys: set[str]) -> set[str]:
    """Those of ``job_keys`` another user asked for (answered from the cache included)."""
    if not job_keys:
        return set()
    found: set[str] = set()
    own = keys.user_jobs(user_id).encode()
    wanted = sorted(job_keys)
    match = keys.user_jobs("*")
    async for name in redis.scan_iter(match=match, count=SCAN_COUNT):
        if name == own:
            continue
        flags = await redis.smismember(name, wanted)  # type: ignore[misc]
        found.update(k for k, hit in zip(wanted, flags, strict=True) if hit)
    return found


async def _delete_job_files(storage: Storage, key: str) -> bool:
    """Remove a job's stems and zip now (not at their expiry); True when there were any."""
    return await storage.delete_job(key)
