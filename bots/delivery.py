"""Progress delivery, for every chat platform: a bot's event stream becomes edits of one
status message per request.

The stream (``stembot:events:<platform>``) is read in a consumer group, so what was not
acknowledged comes back after a restart. An entry is acknowledged only once every status
message it is for shows it, or something newer. Edits are paced (one per message at most every
``edit_interval_s``, a chat held back while the platform's rate limit says so); a newer event
replaces an older one not shown yet, and network errors back off. The final message goes out
once: its parts (the text, each attached stem) are recorded per request id in Redis before the
entry is acknowledged, so a redelivered final event sends nothing again.

What a platform adds is a :class:`Presenter`: how to find a request's status message, how to
show progress and the end on it, and which of its errors mean "wait" or "try again".
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict, deque
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import ClassVar, Generic, Protocol, Self, TypeVar, cast

from pydantic import BaseModel
from redis.asyncio import Redis
from redis.exceptions import RedisError

from shared import jobs, keys
from shared.backoff import Backoff, full_jitter
from shared.core import stream_of
from shared.events import EventConsumer
from shared.schemas import JobRequest, ProgressEvent

log = logging.getLogger(__name__)

#: One consumer name for every run of a bot: entries pending for it come back after a restart.
CONSUMER = "bot"
MAX_ATTEMPTS = 6


class Target(Protocol):
    """A request's status message."""

    @property
    def request_id(self) -> str: ...

    @property
    def chat(self) -> Hashable: ...

    @property
    def message(self) -> Hashable: ...


T = TypeVar("T", bound=Target)


class Status(BaseModel):
    """A request's status message: a platform's reply model (shared.schemas) with the
    request's id, e.g. ``class Status(TelegramReply, delivery.Status)``."""

    request_id: str = ""
    #: the reply field that names the chat (the message is ``message_id``)
    chat_field: ClassVar[str]

    @property
    def chat(self) -> Hashable:
        return cast(Hashable, getattr(self, self.chat_field))

    @property
    def message(self) -> Hashable:
        return cast(Hashable, getattr(self, "message_id"))  # noqa: B009

    @classmethod
    def of(cls, request: JobRequest) -> Self | None:
        """The status of a request made on this platform (None for another frontend's)."""
        if request.reply.frontend != cls.model_fields["frontend"].default:
            return None
        reply = request.reply.model_dump()
        return cls.model_validate({**reply, "request_id": request.request_id})


class Parts:
    """What of a request's final message went out already: "text", "file:<stem>", ...

    Kept in Redis (``stembot:<platform>:final:<request id>``) so a restart sends nothing twice.
    """

    def __init__(self, redis: Redis, platform: str, request_id: str, done: set[str]) -> None:
        self.redis, self.key, self.done = redis, keys.final_parts(platform, request_id), done

    @classmethod
    async def load(cls, redis: Redis, platform: str, request_id: str) -> Parts:
        raw = await redis.hkeys(keys.final_parts(platform, request_id))  # type: ignore[misc]
        return cls(redis, platform, request_id, {k.decode() for k in raw})

    def __contains__(self, part: str) -> bool:
        return part in self.done

    async def mark(self, part: str) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(self.key, part, "1")
            pipe.expire(self.key, jobs.REQUEST_TTL_S)
            await pipe.execute()
        self.done.add(part)


class Presenter(Protocol[T]):
    """The platform's side of delivery."""

    platform: str

    def target_of(self, request: JobRequest) -> T | None:
        """The status message a stored request points at; None when it is not ours."""

    async def progress(self, target: T, event: ProgressEvent, shown: object) -> object:
        """Show a non-final state unless ``shown`` (what the last call returned) is the same."""

    async def final(self, target: T, event: ProgressEvent, parts: Parts) -> None:
        """Show the end; send each part not in ``parts`` yet and mark it once sent."""

    async def finished(self, target: T) -> None:
        """The request is over and its message complete (forget per-request state)."""

    def retry_after(self, exc: Exception) -> float | None:
        """Seconds the platform asks us to wait, when ``exc`` is its rate limit."""

    def transient(self, exc: Exception) -> bool:
        """True for a network error worth retrying for ever."""


class Pacer:
    """When each status message may be edited next, and which chats are held back."""

    def __init__(self, edit_interval_s: float) -> None:
        self.edit_interval_s = edit_interval_s
        self._next_edit: dict[tuple[Hashable, Hashable], float] = {}
        self._chat_pause: dict[Hashable, float] = {}

    async def wait_turn(self, chat: Hashable, message: Hashable) -> None:
        """Until this message may be edited again and its chat is not held back."""
        while True:
            now = time.monotonic()
            until = max(self._next_edit.get((chat, message), 0.0), self._chat_pause.get(chat, 0.0))
            if until <= now:
                return
            await asyncio.sleep(until - now)

    def pause(self, chat: Hashable, seconds: float) -> None:
        """Hold a chat back as long as the platform's rate limit asks."""
        log.info("rate limited: waiting %.1f s before writing to a chat", seconds)
        until = time.monotonic() + seconds
        self._chat_pause[chat] = max(until, self._chat_pause.get(chat, 0.0))

    def hold(self, chat: Hashable, message: Hashable, seconds: float | None = None) -> None:
        """Edit this message no sooner than ``seconds`` (default: the edit interval) from now."""
        delay = self.edit_interval_s if seconds is None else seconds
        self._next_edit[(chat, message)] = time.monotonic() + delay

    def release(self, chat: Hashable, message: Hashable) -> None:
        """Forget a message's pacing (it will not be edited again)."""
        self._next_edit.pop((chat, message), None)


@dataclass
class _Follow(Generic[T]):
    target: T
    parts: Parts
    latest: ProgressEvent | None = None
    entries: list[str] = field(default_factory=list)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    seen_stream: bool = False
    closed: bool = False
    shown: object = None
    attempts: int = 0
    task: asyncio.Task[None] | None = None


class Delivery(Generic[T]):
    def __init__(self, redis: Redis, presenter: Presenter[T], pacer: Pacer) -> None:
        self.redis, self.presenter, self.pacer = redis, presenter, pacer
        self.platform = presenter.platform
        self.consumer = EventConsumer(redis, stream_of(self.platform), self.platform, CONSUMER)
        self._follows: dict[str, _Follow[T]] = {}
        self._finished: OrderedDict[str, None] = OrderedDict()
        self._unacked: dict[str, set[str]] = {}
        self._acking: set[str] = set()
        self._acked = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # --- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        await self.consumer.ensure_group()
        self._task = asyncio.create_task(self._read_loop(), name=f"{self.platform}-delivery")

    async def stop(self) -> None:
        """Stop at once; what was not acknowledged is delivered by the next run."""
        tasks = [t for t in [self._task, *(f.task for f in self._follows.values())] if t]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._task = None
        self._follows.clear()

    # --- what the handlers call --------------------------------------------------------

    async def follow(self, target: T, event: ProgressEvent) -> None:
        """Show a request's first state (queued, or a cached result) on its status message."""
        follow = await self._follow(target.request_id, target)
        if follow is not None:
            await self._offer(follow, event, None)

    # --- reading the stream ------------------------------------------------------------

    async def _read_loop(self) -> None:
        inbox: deque[tuple[str, ProgressEvent]] = deque()  # read, not yet handed to a follow
        # while Redis is unreachable (restart, failover): up to 0.5 s, doubling to 30 s, jittered
        backoff = Backoff(first_s=0.5, max_s=30.0)
        while True:
            try:
                if not inbox:
                    batch = await self.consumer.read(block_ms=1000)
                    known = self._unacked.keys() | self._acking
                    inbox.extend((eid, event) for eid, event in batch if eid not in known)
                    if batch and not inbox:
                        # The backlog hands pending entries back until they are acknowledged.
                        await self._some_acked(within_s=1)
                while inbox:
                    await self._dispatch(*inbox[0])
                    inbox.popleft()
                if backoff.succeeded():
                    log.info("%s delivery: Redis reachable again", self.platform)
            except RedisError as exc:
                name, wait = self.platform, backoff.failed()
                log.warning("%s delivery: Redis error (%s), retrying in %.1f s", name, exc, wait)
                await asyncio.sleep(wait)
                if "NOGROUP" in str(exc):  # a Redis that came back empty (no persistence)
                    with contextlib.suppress(RedisError):
                        await self.consumer.ensure_group()

    async def _some_acked(self, within_s: float) -> None:
        self._acked.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within_s):
                await self._acked.wait()

    async def _dispatch(self, entry_id: str, event: ProgressEvent) -> None:
        follows = [f for rid in event.request_ids if (f := await self._follow(rid)) is not None]
        if not follows:
            await self._ack([entry_id])
            return
        self._unacked[entry_id] = {f.target.request_id for f in follows}
        for follow in follows:
            await self._offer(follow, event, entry_id)

    async def _follow(self, request_id: str, target: T | None = None) -> _Follow[T] | None:
        if request_id in self._follows:
            return self._follows[request_id]
        if request_id in self._finished:
            return None
        parts = await Parts.load(self.redis, self.platform, request_id)
        if "complete" in parts:
            self._remember_finished(request_id)
            return None
        if target is None:
            requests = await jobs.load_requests(self.redis, [request_id])
            target = self.presenter.target_of(requests[0]) if requests else None
            if target is None:
                return None  # expired, or not one of ours
        if request_id in self._follows:  # made by the handler or the stream meanwhile
            return self._follows[request_id]
        follow = _Follow(target, parts)
        self._follows[request_id] = follow
        follow.task = asyncio.create_task(self._drive(follow), name=f"deliver-{request_id}")
        return follow

    async def _offer(self, follow: _Follow[T], event: ProgressEvent, entry_id: str | None) -> None:
        if entry_id is None:
            if follow.seen_stream:
                return  # the stream is ahead of the handler's first state already
        else:
            follow.seen_stream = True
            follow.entries.append(entry_id)
        if follow.closed:
            entries, follow.entries = follow.entries, []
            await self._covered(follow, entries)
            return
        if follow.latest is None or not follow.latest.state.final:
            follow.latest = event  # stream order: newer replaces older; a final stays
        follow.wake.set()

    # --- one status message --------------------------------------------------------------

    async def _drive(self, follow: _Follow[T]) -> None:
        target = follow.target
        while True:
            await follow.wake.wait()
            await self.pacer.wait_turn(target.chat, target.message)
            follow.wake.clear()
            event, entries = follow.latest, follow.entries
            follow.latest, follow.entries = None, []
            if event is None:
                await self._covered(follow, entries)
                continue
            try:
                if event.state.final:
                    follow.closed = True
                    await self.presenter.final(target, event, follow.parts)
                    await follow.parts.mark("complete")
                    await self.presenter.finished(target)
                elif "text" not in follow.parts:
                    shown = await self.presenter.progress(target, event, follow.shown)
                    if shown != follow.shown:  # edited: the next edit waits its turn
                        self.pacer.hold(target.chat, target.message)
                    follow.shown = shown
            except Exception as exc:
                wait = self.presenter.retry_after(exc)
                if wait is not None:
                    self.pacer.pause(target.chat, wait)
                    self._retry(follow, event, entries)
                    continue
                if isinstance(exc, RedisError | OSError) or self.presenter.transient(exc):
                    self._backoff(follow, event, entries, exc, limit=None)  # never give up
                    continue
                # a bug: retry a few times, then drop this update
                log.exception("%s: delivering %s failed", self.platform, target.request_id)
                if not self._backoff(follow, event, entries, exc, limit=MAX_ATTEMPTS):
                    continue
            follow.attempts = 0
            if follow.closed:
                entries, follow.entries = entries + follow.entries, []
            await self._covered(follow, entries)
            if follow.closed:
                self._follows.pop(target.request_id, None)
                self.pacer.release(target.chat, target.message)
                self._remember_finished(target.request_id)
                return

    def _retry(self, follow: _Follow[T], event: ProgressEvent, entries: list[str]) -> None:
        follow.closed = False
        if follow.latest is None or event.state.final:
            follow.latest = event
        follow.entries = entries + follow.entries
        follow.wake.set()

    def _backoff(
        self,
        follow: _Follow[T],
        event: ProgressEvent,
        entries: list[str],
        exc: Exception,
        limit: int | None,
    ) -> bool:
        """Retry later (jittered backoff, up to a minute); True once the update is given up."""
        follow.attempts += 1
        target, name = follow.target, self.platform
        if limit is not None and follow.attempts >= limit:
            log.error("%s: giving up on an update of %s (%r)", name, target.request_id, exc)
            return True
        log.warning("%s: update of %s failed (%s), retrying", name, target.request_id, exc)
        wait = full_jitter(follow.attempts, first_s=2.0, max_s=60.0)
        self.pacer.hold(target.chat, target.message, wait)
        self._retry(follow, event, entries)
        return False

    # --- acknowledgement ---------------------------------------------------------------

    async def _covered(self, follow: _Follow[T], entries: list[str]) -> None:
        """The follow's message shows these entries (or newer): ack those no one else needs."""
        done = []
        for entry_id in entries:
            waiting = self._unacked.get(entry_id)
            if waiting is not None:
                waiting.discard(follow.target.request_id)
                if not waiting:
                    del self._unacked[entry_id]
                    done.append(entry_id)
        if done:
            await self._ack(done)

    async def _ack(self, entry_ids: list[str]) -> None:
        self._acking.update(entry_ids)
        try:
            await self.consumer.ack(*entry_ids)
        except RedisError as exc:  # left pending: delivered (and deduplicated) after a restart
            log.warning("%s delivery: cannot acknowledge events (%s)", self.platform, exc)
        finally:
            self._acking.difference_update(entry_ids)
        self._acked.set()

    def _remember_finished(self, request_id: str) -> None:
        self._finished[request_id] = None
        while len(self._finished) > 10_000:
            self._finished.popitem(last=False)
