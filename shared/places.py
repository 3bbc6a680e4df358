"""Places in the queue: where a waiting run stands, read where it is shown.

The bots, the API and the first answer to a request read a place when they show it, in one
script call whatever the length of the queue; no worker tells waiting requests where they are
(that work would grow with the queue, on the worker's path to separating). A place is the
run's position among the jobs of its arq queue that no worker runs yet (lowest score first, as
arq takes them) and an ETA from the average job time and the jobs running.
"""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis

from shared import keys
from shared.lua import LuaScript

DEFAULT_JOB_S = 60.0
#: A render from a kept master (another format, a custom mix) takes seconds: no model.
DEFAULT_RENDER_S = 10.0
#: Suffix of the arq id of a run's stage on the download queue (a download, or a render from
#: a kept master); the separation stage uses the run id.
DOWNLOAD_SUFFIX = ".dl"
STATS_JOB_S = keys.JOB_SECONDS
STATS_RENDER_S = keys.RENDER_SECONDS
#: The job hash's ``stage`` of a run whose first stage is a render (shared.jobs.submit): its
#: place in the download queue gets an ETA from the renders' average, not the separations'.
RENDER_STAGE = "render"


async def waiting_arq_ids(redis: Redis, queue_name: str) -> list[str]:
    """arq job ids in the queue that no worker has started yet, oldest first."""
    # Every entry, also those a few ms ahead of the clock (see enqueue_fifo); arq's retries
    # put a job back with a later score, which is its real place in the line too.
    ids = [i.decode() for i in await redis.zrangebyscore(queue_name, "-inf", "+inf")]
    if not ids:
        return []
    async with redis.pipeline(transaction=False) as pipe:
        for arq_id in ids:
            pipe.exists(keys.arq_in_progress(arq_id))
        running = await pipe.execute()
    return [i for i, r in zip(ids, running, strict=True) if not r]


async def average_job_s(redis: Redis) -> float:
    raw = await redis.get(STATS_JOB_S)
    return float(raw) if raw else DEFAULT_JOB_S


async def record_job_time(redis: Redis, seconds: float, *, render: bool = False) -> None:
    """Exponential moving average of job wall time (for ETAs): separations, or ``render``s
    from a kept master (which take seconds, and have their own)."""
    stats, default = (STATS_RENDER_S, DEFAULT_RENDER_S) if render else (STATS_JOB_S, DEFAULT_JOB_S)
    raw = await redis.get(stats)
    old = float(raw) if raw else default
    await redis.set(stats, f"{0.7 * old + 0.3 * seconds:.2f}")


# The place of each wanted arq id among the jobs of one arq queue that no worker runs yet
# (lowest score first, as arq takes them), the jobs running, and the jobs waiting.
_SCAN = """
local function scan(queue, prefix, wanted)
  local places, position, running = {}, 0, 0
  for _, id in ipairs(redis.call('ZRANGE', queue, 0, -1)) do
    if redis.call('EXISTS', prefix .. id) == 1 then
      running = running + 1
    else
      if wanted[id] then places[id] = position end
      position = position + 1
    end
  end
  return places, running, position
end
"""

# KEYS: queue, stats; ARGV: in-progress prefix, arq id ('' for none) -> {place or -1, running,
# average job seconds or '', waiting}
_PLACE = LuaScript(
    _SCAN
    + """
local places, running, waiting = scan(KEYS[1], ARGV[1], {[ARGV[2]] = true})
return {places[ARGV[2]] or -1, running, redis.call('GET', KEYS[2]) or '', waiting}
"""
)

# The places of a bot's waiting requests, for the process that shows them (``owner``).
# KEYS: separate queue, download queue, the platform's waiting registry, stats, render stats,
# then the job hash of each request; ARGV: in-progress prefix, download suffix, owner, render
# stage, then the request ids.
# Reply: {Redis time in ms, average job seconds or '', average render seconds or '', then per
# request: place, running, 1 for a render waiting in the download queue (else 0)} with place
# -1 (not waiting: dropped from the registry), -2 (another process shows it) or -3 (queued,
# between two queues this instant).
_PLACES = LuaScript(
    _SCAN
    + """
local n = #KEYS - 5
local runs, renders, sep_wanted, dl_wanted = {}, {}, {}, {}
for i = 1, n do
  local rid = ARGV[4 + i]
  if redis.call('HGET', KEYS[3], rid) ~= ARGV[3] then
    runs[i] = -2
  else
    local job = redis.call('HMGET', KEYS[5 + i], 'state', 'arq_id', 'stage')
    if job[1] == 'queued' and job[2] then
      runs[i] = job[2]
      renders[i] = job[3] == ARGV[4]
      sep_wanted[job[2]] = true
      dl_wanted[job[2] .. ARGV[2]] = true
    else
      runs[i] = -1
      redis.call('HDEL', KEYS[3], rid)
    end
  end
end
local sep, sep_running, dl, dl_running = {}, 0, {}, 0
if next(sep_wanted) then
  sep, sep_running = scan(KEYS[1], ARGV[1], sep_wanted)
  dl, dl_running = scan(KEYS[2], ARGV[1], dl_wanted)
end
local t = redis.call('TIME')
local out = {tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000),
             redis.call('GET', KEYS[4]) or '', redis.call('GET', KEYS[5]) or ''}
for i = 1, n do
  local run, place, running, render = runs[i], nil, 0, 0
  if type(run) == 'string' then
    place, running = sep[run], sep_running
    if place == nil then
      place, running = dl[run .. ARGV[2]], dl_running
      if place ~= nil and renders[i] then render = 1 end
    end
    run = place or -3
  end
  out[#out + 1] = run
  out[#out + 1] = running
  out[#out + 1] = render
end
return out
"""
)


def _eta(position: int, average_s: float, running: int) -> float:
    return round((position + 1) * average_s / max(1, running), 1)


def _average(raw: bytes | str, default: float = DEFAULT_JOB_S) -> float:
    return float(raw) if raw else default


async def running_count(redis: Redis, queue_name: str) -> int:
    _, running, _, _ = await _PLACE(
        redis, [queue_name, STATS_JOB_S], [keys.arq_in_progress(""), ""]
    )
    return int(running)


async def next_place(redis: Redis, queue_name: str) -> tuple[int, float]:
    """(position, eta seconds) a run put in the queue now gets: after every waiting one."""
    _, running, average, waiting = await _PLACE(
        redis, [queue_name, STATS_JOB_S], [keys.arq_in_progress(""), ""]
    )
    return int(waiting), _eta(int(waiting), _average(average), int(running))


async def queue_position(
    redis: Redis, arq_id: str, *, queue_name: str, render: bool = False
) -> tuple[int | None, float | None]:
    """(position, eta seconds) of a waiting run (a ``render``'s ETA from the renders'
    average); (None, None) once it is running or gone."""
    stats, default = (STATS_RENDER_S, DEFAULT_RENDER_S) if render else (STATS_JOB_S, DEFAULT_JOB_S)
    position, running, average, _ = await _PLACE(
        redis, [queue_name, stats], [keys.arq_in_progress(""), arq_id]
    )
    if position < 0:
        return None, None
    return int(position), _eta(int(position), _average(average, default), int(running))


#: A waiting request's place: (position, eta seconds).
Place = tuple[int, float]


@dataclass(frozen=True)
class Places:
    """What one read of the queues found for a bot's waiting requests."""

    #: Redis' clock at the read (ms): a newer read of the same request wins
    read_ms: int
    #: request id -> its place, for those waiting in a queue
    waiting: dict[str, Place]
    #: requests no longer waiting (running, over, gone): dropped from the registry
    gone: list[str]
    #: requests that another process shows
    elsewhere: list[str]


async def places(
    redis: Redis,
    requests: list[tuple[str, str]],
    *,
    registry: str,
    owner: str,
    queue_name: str,
    download_queue: str,
) -> Places:
    """The places of ``requests`` ((request id, job key) pairs) that ``owner`` shows according
    to ``registry`` (a hash of request id -> owner), in one script call."""
    stats = [STATS_JOB_S, STATS_RENDER_S]
    raw = await _PLACES(
        redis,
        [queue_name, download_queue, registry, *stats, *(keys.job(k) for _, k in requests)],
        [keys.arq_in_progress(""), DOWNLOAD_SUFFIX, owner, RENDER_STAGE]
        + [rid for rid, _ in requests],
    )
    averages = (_average(raw[1]), _average(raw[2], DEFAULT_RENDER_S))
    found = Places(int(raw[0]), {}, [], [])
    for i, (request_id, _) in enumerate(requests):
        place, running, render = (int(x) for x in raw[3 + 3 * i : 6 + 3 * i])
        if place >= 0:
            found.waiting[request_id] = (place, _eta(place, averages[render], running))
        elif place == -1:
            found.gone.append(request_id)
        elif place == -2:
            found.elsewhere.append(request_id)
    return found
