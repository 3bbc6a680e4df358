"""Read a whole Redis: which keys name a user, which keys the layout (shared.keys) misses."""

from __future__ import annotations

from fnmatch import fnmatchcase

from redis.asyncio import Redis

from shared import keys
from shared.config import Settings


async def contents(redis: Redis, name: str) -> list[bytes]:
    """Every string a key holds (its values, fields, members, stream entries)."""
    kind = (await redis.type(name)).decode()
    if kind == "string":
        return [await redis.get(name) or b""]
    if kind == "hash":
        raw = await redis.hgetall(name)
        return [part for item in raw.items() for part in item]
    if kind == "set":
        return sorted(await redis.smembers(name))
    if kind == "zset":
        return list(await redis.zrange(name, 0, -1))
    if kind == "list":
        return list(await redis.lrange(name, 0, -1))
    if kind == "stream":
        entries = await redis.xrange(name)
        return [part for _, fields in entries for item in fields.items() for part in item]
    raise AssertionError(f"{name!r} has a type this helper does not read: {kind}")


async def naming(redis: Redis, *needles: str) -> dict[str, list[str]]:
    """Keys whose name or content contains any of ``needles``: name -> where ("name", or the
    stored strings that hold it)."""
    found: dict[str, list[str]] = {}
    wanted = [n.encode() for n in needles]
    async for name in redis.scan_iter(count=1000):
        where = ["name"] if any(n in name for n in wanted) else []
        where += [
            v.decode(errors="replace")
            for v in await contents(redis, name.decode())
            if any(n in v for n in wanted)
        ]
        if where:
            found[name.decode()] = where
    return found


def patterns(settings: Settings, *extra: str) -> list[str]:
    """The documented layout, with this run's queue names (settings) and ``extra`` patterns
    (a test's own reply streams)."""
    queues = [settings.redis.queue_name, settings.redis.download_queue_name]
    return [*keys.PATTERNS, *queues, *(keys.health_check(q) for q in queues), *extra]


async def undocumented(redis: Redis, settings: Settings, *extra: str) -> list[str]:
    """Keys that match no pattern of the layout."""
    known = patterns(settings, *extra)
    names = [name.decode() async for name in redis.scan_iter(count=1000)]
    return sorted(n for n in names if not any(fnmatchcase(n, p) for p in known))
