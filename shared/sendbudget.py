"""One send budget per bot, shared by all its processes: the platform's limits, in Redis.

A platform limits what a bot sends as a whole (Telegram: about 30 messages a second; Discord:
50 requests a second) and per chat (Telegram: a message a second in a private chat, 20 a
minute in a group; Discord: 5 per 5 s in a channel). Each process of a bot takes every send
from two token buckets in Redis, the bot's and the chat's, in one atomic script on Redis'
clock, so any number of processes on any number of hosts stay within the limits together.

A :class:`Limit` of ``count`` per ``period_s`` becomes a bucket that never lets more than
``count`` sends through in any window of ``period_s``: ``burst`` tokens (a tenth of the count,
at least 1) refilled at ``(count - burst) / period_s``; or, for a limit that allows short
bursts, a given burst refilled at ``count / period_s``.

Two kinds of send: urgent ones (a final message, a refusal, a direct answer) are never dropped
and only wait for a token; progress edits take a token only while the bot's bucket keeps a
reserve for urgent sends, and within a process urgent sends go first. A progress edit that
waits can be withdrawn (:meth:`SendBudget.request` returns a future the caller may cancel):
the delivery engine shows the newest state instead of an older one, or the final.

A platform's 429 for a chat holds that chat back for every process (:meth:`SendBudget.hold`).
While Redis is unreachable sends go ahead unbudgeted (the platform's 429s still hold them
back): a user is told rather than kept waiting for Redis.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import itertools
import logging
import math
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import RedisError

from shared import keys
from shared.lua import LuaScript

log = logging.getLogger(__name__)

#: How long an idle bucket stays in Redis (a full one is the same as none).
BUCKET_TTL_MS = 60_000

# KEYS: the bot's bucket, the chat's bucket (hashes: tokens, ts, hold).
# ARGV: per bucket (bot, then chat): refill per ms, burst; then the bot bucket's reserve
# (tokens a progress edit must leave) and the TTL in ms.
# Reply: {0, 0} when a token of each was taken, else the ms to wait for the bot's and the
# chat's (0 for one that has a token).
_TAKE = LuaScript("""
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function level(key, rate, burst)
  local v = redis.call('HMGET', key, 'tokens', 'ts', 'hold')
  local hold = tonumber(v[3]) or 0
  if v[1] == false then return burst, hold end
  return math.min(burst, tonumber(v[1]) + math.max(0, now - tonumber(v[2])) * rate), hold
end
local function wait(key, rate, burst, need)
  local tokens, hold = level(key, rate, burst)
  if hold > now then return hold - now, tokens end
  if tokens >= need then return 0, tokens end
  return math.max(1, math.ceil((need - tokens) / rate)), tokens
end
local bot_wait, bot = wait(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), 1 + tonumber(ARGV[5]))
local chat_wait, chat = wait(KEYS[2], tonumber(ARGV[3]), tonumber(ARGV[4]), 1)
if bot_wait > 0 or chat_wait > 0 then return {bot_wait, chat_wait} end
redis.call('HSET', KEYS[1], 'tokens', bot - 1, 'ts', now)
redis.call('PEXPIRE', KEYS[1], ARGV[6])
redis.call('HSET', KEYS[2], 'tokens', chat - 1, 'ts', now)
redis.call('PEXPIRE', KEYS[2], ARGV[6])
return {0, 0}
""")

# KEYS: a chat's bucket; ARGV: ms to hold it back, TTL in ms.
_HOLD = LuaScript("""
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local hold = math.max(tonumber(redis.call('HGET', KEYS[1], 'hold') or '0'), now + ARGV[1])
redis.call('HSET', KEYS[1], 'hold', hold)
redis.call('PEXPIRE', KEYS[1], math.max(hold - now, tonumber(ARGV[2])))
return hold - now
""")


@dataclass(frozen=True)
class Limit:
    """At most ``count`` sends in any ``period_s`` seconds; or, with ``bursts``, ``count`` per
    ``period_s`` on average after a burst of that many (a platform that allows short bursts)."""

    count: float
    period_s: float
    bursts: int | None = None

    @property
    def burst(self) -> float:
        if self.bursts is not None:
            return float(self.bursts)
        return max(1.0, math.ceil(self.count / 10))

    @property
    def per_ms(self) -> float:
        """Tokens refilled per ms (what the burst does not use up of the count)."""
        fixed = self.bursts is None and self.count > self.burst
        return (self.count - self.burst if fixed else self.count) / (self.period_s * 1000)

    @property
    def reserve(self) -> float:
        """Tokens of a bot's bucket kept for urgent sends."""
        return float((int(self.burst) - 1) // 2)


def bot_name(platform: str, token: str) -> str:
    """A bot's name in Redis keys, never its token: Telegram's bot id (the token's part
    before ":"), a Discord bot's user id (the token's first part), else a hash of the token."""
    head = token.split(":" if platform == "telegram" else ".", 1)[0]
    if platform != "telegram":
        with contextlib.suppress(ValueError):
            head = base64.b64decode(head + "=" * (-len(head) % 4), validate=True).decode()
    if head.isdigit() and len(head) < len(token):
        return head
    return hashlib.sha256(token.encode()).hexdigest()[:16]


def _chat_part(chat: Hashable) -> str:
    return hashlib.sha256(str(chat).encode()).hexdigest()[:16]


@dataclass
class _Waiter:
    urgent: bool
    seq: int
    chat: Hashable
    granted: asyncio.Future[None]


class SendBudget:
    """A bot's budget as one process takes from it: :meth:`take` waits for a send."""

    def __init__(
        self,
        redis: Redis,
        platform: str,
        bot: str,
        *,
        bot_limit: Limit,
        chat_limit: Callable[[Hashable], Limit],
    ) -> None:
        self.redis, self.platform, self.bot = redis, platform, bot
        self.bot_limit, self.chat_limit = bot_limit, chat_limit
        self._waiters: list[_Waiter] = []
        self._seq = itertools.count()
        self._arrived = asyncio.Event()
        self._chat_until: dict[Hashable, float] = {}
        self._blocked_until = {True: 0.0, False: 0.0}  # urgent?: monotonic time
        self._task: asyncio.Task[None] | None = None
        self._redis_down_logged = 0.0

    async def take(self, chat: Hashable, *, urgent: bool = True) -> None:
        """Wait until a send to ``chat`` fits the bot's and the chat's budget."""
        granted = self.request(chat, urgent=urgent)
        try:
            await granted
        finally:
            granted.cancel()  # when the caller was cancelled, nobody waits for it any more

    def request(self, chat: Hashable, *, urgent: bool) -> asyncio.Future[None]:
        """A future done once a send to ``chat`` is granted; cancel it to withdraw."""
        granted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(_Waiter(urgent, next(self._seq), chat, granted))
        self._arrived.set()
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._grant(), name=f"{self.platform}-budget")
        return granted

    async def hold(self, chat: Hashable, seconds: float) -> None:
        """The platform asked to wait before writing to ``chat``: every process waits."""
        with contextlib.suppress(RedisError):
            await _HOLD(
                self.redis,
                [self._key(chat)],
                [str(math.ceil(seconds * 1000)), str(BUCKET_TTL_MS)],
            )
        self._chat_until[chat] = max(self._chat_until.get(chat, 0.0), time.monotonic() + seconds)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for waiter in self._waiters:
            waiter.granted.cancel()
        self._waiters.clear()

    # --- granting, one send at a time --------------------------------------------------

    def _key(self, chat: Hashable | None) -> str:
        part = None if chat is None else _chat_part(chat)
        return keys.send_budget(self.platform, self.bot, part)

    def _next(self, now: float) -> tuple[_Waiter | None, float]:
        """The waiter to try now (urgent first, then oldest), else how long until one may."""
        self._waiters = [w for w in self._waiters if not w.granted.done()]
        best, soonest = None, math.inf
        for waiter in self._waiters:
            until = max(self._chat_until.get(waiter.chat, 0.0), self._blocked_until[waiter.urgent])
            if until > now:
                soonest = min(soonest, until - now)
            elif best is None or (not waiter.urgent, waiter.seq) < (not best.urgent, best.seq):
                best = waiter
        return best, soonest

    async def _grant(self) -> None:
        while True:
            now = time.monotonic()
            waiter, wait_s = self._next(now)
            if waiter is None:
                if not self._waiters:
                    self._chat_until = {c: u for c, u in self._chat_until.items() if u > now}
                self._arrived.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(None if math.isinf(wait_s) else wait_s):
                        await self._arrived.wait()
                continue
            bot_ms, chat_ms = await self._try(waiter)
            now = time.monotonic()
            if bot_ms == 0 and chat_ms == 0:
                if not waiter.granted.done():
                    waiter.granted.set_result(None)
                continue
            if chat_ms > 0:
                self._chat_until[waiter.chat] = now + chat_ms / 1000
            if bot_ms > 0:
                self._blocked_until[waiter.urgent] = now + bot_ms / 1000
                if waiter.urgent:  # progress needs more of the bucket than urgent sends
                    self._blocked_until[False] = max(
                        self._blocked_until[False], now + bot_ms / 1000
                    )

    async def _try(self, waiter: _Waiter) -> tuple[int, int]:
        bot, chat = self.bot_limit, self.chat_limit(waiter.chat)
        try:
            reply = await _TAKE(
                self.redis,
                [self._key(None), self._key(waiter.chat)],
                [
                    repr(bot.per_ms),
                    repr(bot.burst),
                    repr(chat.per_ms),
                    repr(chat.burst),
                    "0" if waiter.urgent else repr(bot.reserve),
                    str(BUCKET_TTL_MS),
                ],
            )
        except RedisError as exc:
            if time.monotonic() - self._redis_down_logged > 60:
                self._redis_down_logged = time.monotonic()
                log.warning("%s: send budget unreachable (%s), sending anyway", self.platform, exc)
            return 0, 0
        return int(reply[0]), int(reply[1])
