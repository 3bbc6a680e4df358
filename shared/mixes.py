"""Custom mixes: any subset of a finished song's stems summed into one file.

A mix is a job of its own (shared.jobs) whose options name the stems it holds
(``JobOptions.mix``, in the model's order): its delivery key holds the subset and the format,
so the same mix asked for again is answered from the cache, and its separation key is the
song's, so it is made from the song's kept master (shared.masters) by a render on the
download queue (worker.mixdown), never by Demucs: it answers in seconds.

What a mix may be: at least one stem of the song's model, not all of them at full volume
(every stem summed is the song itself, which the user already has: asking for it is a
mistake, most likely a "select all", and it would cost a render and a file for nothing).
Each stem may have a volume (``JobOptions.mix_gains``, percent, 0..200, default 100: the
results page's mixer sends its faders): a stem at 0 is left out, and the gains are part of
the mix's delivery key (a mix without gains keeps the key it had before gains existed).

Limits (:func:`admit`): a mix costs seconds of ffmpeg, not a separation, so it does not count
against the songs a user may start per hour, their songs in progress or their minutes of
audio, and the queue cap (sized for separations) does not refuse it. It passes the bans and
a limit of its own, ``STEMBOT_MIXES_PER_HOUR`` (default 30) per user, in a window apart from
the songs' (``stembot:limits:mixes:<user>``); exempt admins skip that window as they skip the
songs' limits. A mix admitted and then refused (the song expired meanwhile) is refunded.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

from redis.asyncio import Redis

from shared import gate, jobs, keys, limits, masters, metrics
from shared.config import Settings
from shared.errors import InvalidOption, MixExpired, MixNotReady, NoStemsToMix, ServiceUnavailable
from shared.gate import LimitReached
from shared.i18n import N_
from shared.lua import LuaScript
from shared.models import MODEL_SOURCES
from shared.schemas import (
    MAX_GAIN,
    UNITY_GAIN,
    AudioFormat,
    JobOptions,
    JobRequest,
    JobResult,
    JobState,
    mix_name,
)

EMPTY = N_("Choose at least one stem to mix.")
EVERY_STEM = N_(
    "A mix of every stem is the whole song: leave out at least one stem "
    "(for example the vocals, for karaoke)."
)
UNKNOWN_STEM = N_("The model {model} has no {stem} stem. Choose one of: {stems}.")
UNKNOWN_FORMAT = N_("Unknown format {format}. Choose one of: {choices}.")
# TRANSLATORS: {stem} is a stem's name in quotes ('drums'); a mix's volumes are per stem
NOT_IN_MIX = N_(
    "The stem {stem} has a volume but is not in the mix: add it to the stems, or leave its "
    "volume out."
)
# TRANSLATORS: {stem} is a stem's name in quotes ('drums'), {volume} the number sent
VOLUME_RANGE = N_("The volume of {stem} must be from 0 to {max} (percent), not {volume}.")
VOLUMES_FIELD = N_(
    "The field {field} must be an object of stem names and volumes in percent, such as {example}."
)
VOLUMES_EXAMPLE = '{"drums": 50, "bass": 100}'
#: More names than any model has stems: a longer list is not a mix request.
MAX_STEMS = 16
#: What a mix is named on the command line for "every stem but this one" (``no_drums``).
WITHOUT = "no_"


def check_stems(model: str, stems: Sequence[str]) -> tuple[str, ...]:
    """The stems of a mix in the model's order (each named once), or InvalidOption: none,
    one the model does not have, or every stem."""
    return check_mix(model, stems, None)[0]


def check_mix(
    model: str, stems: Sequence[str], volumes: Mapping[str, float] | None
) -> tuple[tuple[str, ...], tuple[int, ...] | None]:
    """The stems of a mix in the model's order (each named once) and their gains in percent
    (None: all 100), or InvalidOption: none, one the model does not have, a volume out of
    range or for a stem not in the mix, or every stem at 100 % (the song itself). A stem at
    0 % is left out; every stem is a mix when some are louder or softer."""
    sources = MODEL_SOURCES[model]
    wanted = {s.strip().lower() for s in stems}
    levels = {name.strip().lower(): level for name, level in (volumes or {}).items()}
    unknown = sorted((wanted | set(levels)) - set(sources))
    if unknown:
        raise InvalidOption(
            UNKNOWN_STEM, model=model, stem=repr(unknown[0]), stems=", ".join(sources)
        )
    outside = sorted(set(levels) - wanted)
    if outside:
        raise InvalidOption(NOT_IN_MIX, stem=repr(outside[0]))
    gains: dict[str, int] = {}
    for name in sorted(levels):
        level = levels[name]
        if not 0 <= level <= MAX_GAIN:  # NaN too
            raise InvalidOption(VOLUME_RANGE, stem=repr(name), volume=f"{level:g}", max=MAX_GAIN)
        gains[name] = round(level)
    chosen = tuple(s for s in sources if s in wanted and gains.get(s, UNITY_GAIN) > 0)
    if not chosen:
        raise InvalidOption(EMPTY)
    levels_of = tuple(gains.get(s, UNITY_GAIN) for s in chosen)
    unity = all(g == UNITY_GAIN for g in levels_of)
    if unity and set(chosen) == set(sources):
        raise InvalidOption(EVERY_STEM)
    return chosen, None if unity else levels_of


def parse_volumes(value: object) -> dict[str, float]:
    """The ``volumes`` of a mix request as sent (JSON): an object of stem names and numbers
    (percent); InvalidOption when it is not one. What the names and numbers may be is
    :func:`check_mix`'s to say."""
    if (
        not isinstance(value, dict)
        or len(value) > MAX_STEMS
        or not all(
            isinstance(k, str) and isinstance(v, int | float) and not isinstance(v, bool)
            for k, v in value.items()
        )
    ):
        raise InvalidOption(VOLUMES_FIELD, field="'volumes'", example=VOLUMES_EXAMPLE)
    return {k: float(v) for k, v in value.items()}


def parse(model: str, text: str) -> tuple[str, ...]:
    """A mix as the command line names it: stems separated by commas (``bass,drums``), or
    every stem but one (``no_vocals``)."""
    text = text.strip().lower()
    if text.startswith(WITHOUT) and "," not in text:
        left_out = text.removeprefix(WITHOUT)
        check_stems(model, [left_out])  # an unknown stem says so
        return check_stems(model, [s for s in MODEL_SOURCES[model] if s != left_out])
    return check_stems(model, [s for s in text.split(",") if s.strip()])


def options(
    song: JobOptions,
    stems: Sequence[str],
    fmt: AudioFormat | str | None,
    volumes: Mapping[str, float] | None = None,
) -> JobOptions:
    """The options of a mix of a song separated with ``song``: the same separation, the
    chosen stems at their volumes (percent, default 100; :func:`check_mix`), the format
    asked for (default: the song's)."""
    chosen, gains = check_mix(song.model, stems, volumes)
    if fmt is None:
        fmt = song.format
    elif fmt not in {f.value for f in AudioFormat}:
        raise InvalidOption(
            UNKNOWN_FORMAT,
            format=repr(fmt),
            choices=", ".join(f.value for f in AudioFormat),
        )
    update = {"stems": "all", "format": AudioFormat(fmt), "mix": chosen, "mix_gains": gains}
    return JobOptions.model_validate(song.model_dump() | update)


def name(opts: JobOptions) -> str:
    """The mix's file name without extension (``no_drums``, ``mix_drums_bass``)."""
    assert opts.mix is not None
    return mix_name(MODEL_SOURCES[opts.model], opts.mix)


async def find_song(
    redis: Redis, request_id: str | None, key: str | None = None
) -> JobRequest | None:
    """The request of a song to mix: the stored request (3 days), or the spec of the run
    of ``key`` (a request answered from the cache is not stored; a run's record lasts a day
    after its end); None when neither is kept any more."""
    stored = await jobs.load_requests(redis, [request_id]) if request_id else []
    if stored:
        return stored[0]
    raw = await redis.hget(keys.job(key), "spec") if key else None  # type: ignore[misc]
    return JobRequest.model_validate_json(raw) if raw else None


async def check_song(redis: Redis, song: JobRequest) -> JobResult:
    """The song's valid result, when its kept stems can be mixed; else why not (not ready
    yet, failed or cancelled, expired)."""
    raw = await redis.get(keys.result(song.key))
    result = JobResult.model_validate_json(raw) if raw else None
    if result is None or not result.valid():
        state = await redis.hget(keys.job(song.key), "state")  # type: ignore[misc]
        if state is not None and not JobState(state.decode()).final:
            raise MixNotReady()
        if state is not None and state.decode() != JobState.DONE.value:
            raise NoStemsToMix()
        raise MixExpired()
    if await masters.find(redis, song.separation_key) is None:
        raise MixExpired()  # no master was kept (or it was found damaged): nothing to mix from
    return result


async def song_of(redis: Redis, key: str) -> tuple[JobRequest, JobResult]:
    """The song whose result is ``key`` (a chat's final message, a results page) and that
    result, when its stems can be mixed; else why not (MixExpired, MixNotReady,
    NoStemsToMix; ServiceUnavailable when Redis does not answer)."""
    try:
        song = await find_song(redis, None, key)
        if song is None:
            raise MixExpired()
        return song, await check_song(redis, song)
    except jobs.REDIS_DOWN as exc:
        raise ServiceUnavailable() from exc


# The bans, then the hour's mixes of the user (exempt users skip the count).
_ADMIT = LuaScript("""
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1
   or (ARGV[2] ~= '' and redis.call('HEXISTS', KEYS[1], ARGV[2] .. ' ' .. ARGV[1]) == 1) then
  return {'banned', '0', '0'}
end
if ARGV[7] == '1' then return {'ok', '0', '0'} end
local now = tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - tonumber(ARGV[6]))
local per_hour = tonumber(ARGV[5])
local count = redis.call('ZCARD', KEYS[2])
if per_hour > 0 and count >= per_hour then
  local oldest = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
  return {'mix_hourly', tostring(count), oldest[2]}
end
redis.call('ZADD', KEYS[2], now, ARGV[3])
redis.call('EXPIRE', KEYS[2], ARGV[6])
return {'ok', '0', '0'}
""")


async def admit(
    redis: Redis,
    settings: Settings,
    *,
    frontend: str,
    user_id: str,
    request_id: str,
    scope: str | None = None,
    admin: bool = False,
    now: float | None = None,
) -> None:
    """Count a mix of this user, or raise LimitReached (banned, or the hour's mixes used).
    The hour's mixes are ``STEMBOT_MIXES_PER_HOUR`` unless an admin set ``mixes_per_hour``,
    globally or for the scope (shared.limits: the same layers as the songs' limits)."""
    now = time.time() if now is None else now
    in_force = await limits.effective(redis, gate.defaults(settings), scope)
    per_hour = in_force.mixes_per_hour
    exempt = admin and settings.limits.admins_exempt
    args = [user_id, limits.check_scope(scope) if scope else "", request_id, repr(now)]
    args += [str(per_hour), str(limits.WINDOW_S), "1" if exempt else "0"]
    raw = await _ADMIT(redis, [keys.BANS, keys.limit_mixes(user_id)], args)
    kind, used, oldest = (x.decode() for x in raw)
    if kind == "ok":
        return
    if kind == "banned":
        decision = limits.Decision(False, "banned")
    else:
        retry = max(float(oldest) + limits.WINDOW_S - now, 1.0)
        decision = limits.Decision(False, "mix_hourly", retry, per_hour, int(used))
    hit = metrics.series(
        "stembot_rate_limit_hits_total", frontend=frontend, limit=str(decision.reason)
    )
    await metrics.add(redis, {hit: 1.0})
    raise LimitReached(decision)


async def refund(redis: Redis, user_id: str, request_id: str) -> None:
    """Uncount a mix refused after it was admitted."""
    await redis.zrem(keys.limit_mixes(user_id), request_id)
