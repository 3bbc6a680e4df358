"""Separate once, deliver many: the lossless master each separation leaves behind.

After Demucs, the worker keeps every stem of the model (before any two-stem mix) as 24-bit
FLAC (worker.master) in the storage, published as the job ``master-<separation key>``: its
meta.json says until when, so the storage cleanup deletes it with the links, and no link is
ever signed for it. Its record here, ``stembot:master:<separation key>``, says that it is
there and what the separation found (its result: title, length, model, key and tempo); the
record expires with the master.

A request whose separation key (shared.schemas: the source and what changes Demucs' output,
not the format or the stems mode) has a valid master but no result of its own is made from
the master: the core queues a render (shared.jobs), which decodes, mixes, encodes and
publishes without the model. A render first extends the master to its own links' lifetime,
so a master lives as long as the last links made from it. A master that is gone or damaged
is dropped and the run separates after all.
"""

from __future__ import annotations

import time
import uuid

from pydantic import BaseModel, Field, ValidationError
from redis.asyncio import Redis

from shared import keys
from shared.lua import LuaScript
from shared.schemas import JobResult
from shared.storage import Storage

#: The storage job of a master is this prefix and the separation key.
PREFIX = "master-"
#: A master with less time left than this is not used (a render would race its expiry).
MARGIN_S = 60.0


def storage_key(separation_key: str) -> str:
    """The storage job a master is kept as."""
    return PREFIX + separation_key


class Master(BaseModel):
    """A kept master: where its stems are, their shape, and what the separation found."""

    separation_key: str
    #: the model's stems, in its order -> their file names in the storage job
    files: dict[str, str]
    samplerate: int
    channels: int
    #: samples per channel, the same in every stem
    frames: int
    expires_at: float
    #: the separation's own result; a render copies what belongs to the song from it
    result: JobResult
    #: tells this master from a later one of the same key (see :func:`drop`)
    id: str = Field(default_factory=lambda: uuid.uuid4().hex)

    @property
    def storage_key(self) -> str:
        return storage_key(self.separation_key)

    def valid(self, now: float | None = None) -> bool:
        return (time.time() if now is None else now) + MARGIN_S < self.expires_at


async def find(redis: Redis, separation_key: str) -> Master | None:
    """The valid master of a separation, or None (also for a record this version cannot
    read: the run separates, and keeps a new one)."""
    raw = await redis.get(keys.master(separation_key))
    if raw is None:
        return None
    try:
        master = Master.model_validate_json(raw)
    except ValidationError:
        return None
    return master if master.valid() else None


async def record(redis: Redis, master: Master) -> None:
    """Say that ``master`` is in the storage, until its expiry."""
    left_ms = int((master.expires_at - time.time()) * 1000)
    if left_ms > 0:
        await redis.set(keys.master(master.separation_key), master.model_dump_json(), px=left_ms)


async def keep_until(
    redis: Redis, storage: Storage, master: Master, expires_at: float
) -> Master | None:
    """Keep ``master`` at least until ``expires_at``, in the storage and in its record; None
    when the storage no longer has it."""
    if not await storage.extend_job(master.storage_key, expires_at):
        return None
    kept = master.model_copy(update={"expires_at": max(master.expires_at, expires_at)})
    await record(redis, kept)
    return kept


# Delete the record only while it is still this master's (a new separation may have kept
# a new one meanwhile).
_DROP = LuaScript("""
local raw = redis.call('GET', KEYS[1])
if raw and cjson.decode(raw)['id'] == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
""")


async def drop(redis: Redis, master: Master) -> None:
    """Forget a master found gone or damaged, so that the next request separates again
    (its files, if any, are replaced by that separation's, or expire)."""
    await _DROP(redis, [keys.master(master.separation_key)], [master.id])


async def delete(redis: Redis, storage: Storage, separation_key: str) -> bool:
    """Remove a master now, record and files (/forget); True when there were files."""
    await redis.delete(keys.master(separation_key))
    return await storage.delete_job(storage_key(separation_key))
