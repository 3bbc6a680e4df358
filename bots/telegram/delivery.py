"""Progress delivery: the bot's event stream becomes edits of one status message per request.

The stream (``stembot:events:telegram``) is read in a consumer group, so what was not
acknowledged comes back after a restart. An entry is acknowledged only once every status
message it is for shows it, or something newer. Edits are paced by the Messenger
(one message at most every ``telegram_edit_interval_s``, RetryAfter honoured); a newer event
replaces an older one not shown yet, and network errors back off. The final message goes out
once: its parts (the text, each stem's audio) are recorded per request id in Redis before the
entry is acknowledged, so a redelivered final event sends nothing again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError
from telegram.error import NetworkError, RetryAfter

from bots.telegram.messenger import Messenger
from bots.telegram.render import cancel_markup, final_text, progress_text
from bots.telegram.settings import TelegramSettings
from bots.telegram.store import Store
from shared import jobs
from shared.events import EventConsumer
from shared.schemas import JobRequest, JobState, ProgressEvent

log = logging.getLogger(__name__)

STREAM = "stembot:events:telegram"
GROUP = "telegram"
#: One name for every run of the bot: entries pending for it come back after a restart.
CONSUMER = "bot"
MAX_ATTEMPTS = 6


@dataclass(frozen=True)
class Status:
    """A request's status message, and who it is for (kept in ``JobRequest.context``)."""

    request_id: str
    chat_id: int
    message_id: int
    user_id: int
    lang: str
    title: str
    files: bool

    def context(self) -> dict[str, Any]:
        return {
            "chat_id": self.chat_id,
            "message_id": self.message_id,
            "user_id": self.user_id,
            "lang": self.lang,
            "title": self.title,
            "files": self.files,
        }

    @classmethod
    def of(cls, request: JobRequest) -> Status | None:
        ctx = request.context
        try:
            return cls(
                request_id=request.request_id,
                chat_id=int(ctx["chat_id"]),
                message_id=int(ctx["message_id"]),
                user_id=int(ctx["user_id"]),
                lang=str(ctx.get("lang", "en")),
                title=str(ctx.get("title") or request.source.title),
                files=bool(ctx.get("files", True)),
            )
        except (KeyError, TypeError, ValueError):
            return None


@dataclass
class _Follow:
    status: Status
    delivered: set[str]
    latest: ProgressEvent | None = None
    entries: list[str] = field(default_factory=list)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    seen_stream: bool = False
    closed: bool = False
    shown: str | None = None
    attempts: int = 0
    task: asyncio.Task[None] | None = None


class Delivery:
    def __init__(self, redis: Redis, store: Store, out: Messenger, tg: TelegramSettings) -> None:
        self.redis, self.store, self.out, self.tg = redis, store, out, tg
        self.consumer = EventConsumer(redis, STREAM, GROUP, CONSUMER)
        self._follows: dict[str, _Follow] = {}
        self._finished: OrderedDict[str, None] = OrderedDict()
        self._unacked: dict[str, set[str]] = {}
        self._acking: set[str] = set()
        self._acked = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # --- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        await self.consumer.ensure_group()
        self._task = asyncio.create_task(self._read_loop(), name="telegram-delivery")

    async def stop(self) -> None:
        """Stop at once; what was not acknowledged is delivered by the next run."""
        tasks = [t for t in [self._task, *(f.task for f in self._follows.values())] if t]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._task = None
        self._follows.clear()

    # --- what the handlers call --------------------------------------------------------

    async def follow(self, status: Status, event: ProgressEvent) -> None:
        """Show a request's first state (queued, or a cached result) on its status message."""
        follow = await self._follow(status.request_id, status)
        if follow is not None:
            await self._offer(follow, event, None)

    # --- reading the stream ------------------------------------------------------------

    async def _read_loop(self) -> None:
        inbox: deque[tuple[str, ProgressEvent]] = deque()  # read, not yet handed to a follow
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
            except RedisError as exc:
                log.warning("telegram delivery: Redis error (%s), retrying in 1 s", exc)
                await asyncio.sleep(1)

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
        self._unacked[entry_id] = {f.status.request_id for f in follows}
        for follow in follows:
            await self._offer(follow, event, entry_id)

    async def _follow(self, request_id: str, status: Status | None = None) -> _Follow | None:
        if request_id in self._follows:
            return self._follows[request_id]
        if request_id in self._finished:
            return None
        delivered = await self.store.delivered(request_id)
        if "complete" in delivered:
            self._remember_finished(request_id)
            return None
        if status is None:
            requests = await jobs.load_requests(self.redis, [request_id])
            status = Status.of(requests[0]) if requests else None
            if status is None:
                return None  # expired, or not one of ours
        if request_id in self._follows:  # made by the handler or the stream meanwhile
            return self._follows[request_id]
        follow = _Follow(status, delivered)
        self._follows[request_id] = follow
        follow.task = asyncio.create_task(self._drive(follow), name=f"telegram-{request_id}")
        return follow

    async def _offer(self, follow: _Follow, event: ProgressEvent, entry_id: str | None) -> None:
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

    async def _drive(self, follow: _Follow) -> None:
        status = follow.status
        while True:
            await follow.wake.wait()
            await self.out.wait_turn(status.chat_id, status.message_id)
            follow.wake.clear()
            event, entries = follow.latest, follow.entries
            follow.latest, follow.entries = None, []
            if event is None:
                await self._covered(follow, entries)
                continue
            try:
                if event.state.final:
                    follow.closed = True
                    await self._final(follow, event)
                elif "text" not in follow.delivered:
                    await self._progress(follow, event)
            except RetryAfter as exc:
                self.out.pause(status.chat_id, exc)
                self._retry(follow, event, entries)
                continue
            except (NetworkError, RedisError, OSError) as exc:  # transient: never give up
                self._backoff(follow, event, entries, exc, limit=None)
                continue
            except Exception as exc:  # a bug: retry a few times, then drop this update
                log.exception("telegram: delivering %s failed", status.request_id)
                if not self._backoff(follow, event, entries, exc, limit=MAX_ATTEMPTS):
                    continue
            follow.attempts = 0
            if follow.closed:
                entries, follow.entries = entries + follow.entries, []
            await self._covered(follow, entries)
            if follow.closed:
                self._follows.pop(status.request_id, None)
                self.out.release(status.chat_id, status.message_id)
                self._remember_finished(status.request_id)
                return

    def _retry(self, follow: _Follow, event: ProgressEvent, entries: list[str]) -> None:
        follow.closed = False
        if follow.latest is None or event.state.final:
            follow.latest = event
        follow.entries = entries + follow.entries
        follow.wake.set()

    def _backoff(
        self,
        follow: _Follow,
        event: ProgressEvent,
        entries: list[str],
        exc: Exception,
        limit: int | None,
    ) -> bool:
        """Retry later (backing off up to a minute); True once the update is given up."""
        follow.attempts += 1
        status = follow.status
        if limit is not None and follow.attempts >= limit:
            log.error("telegram: giving up on an update of %s (%r)", status.request_id, exc)
            return True
        log.warning("telegram: update of %s failed (%s), retrying", status.request_id, exc)
        delay = min(60.0, 2.0 ** min(follow.attempts, 6))
        self.out.hold(status.chat_id, status.message_id, delay)
        self._retry(follow, event, entries)
        return False

    async def _progress(self, follow: _Follow, event: ProgressEvent) -> None:
        status = follow.status
        text = progress_text(status.lang, status.title, event)
        if text != follow.shown:
            await self.out.edit(status.chat_id, status.message_id, text, cancel_markup(status.lang))
            follow.shown = text

    async def _final(self, follow: _Follow, event: ProgressEvent) -> None:
        status = follow.status
        if "text" not in follow.delivered:
            upload_limit = self.tg.upload_limit_bytes() if self._files(status) else None
            text = final_text(status.lang, status.title, event, upload_limit)
            if not await self.out.edit(status.chat_id, status.message_id, text, None):
                await self.out.send(status.chat_id, text)  # it is gone: never lose the end
            await self._mark(follow, "text")
        result = event.result
        if event.state == JobState.DONE and result is not None and self._files(status):
            for stem in result.stems:
                if f"audio:{stem.name}" not in follow.delivered:
                    await self.out.send_stem(status.chat_id, status.message_id, result, stem)
                    await self._mark(follow, f"audio:{stem.name}")
        await self._mark(follow, "complete")
        await self.store.forget(status.user_id, status.request_id)

    async def _mark(self, follow: _Follow, part: str) -> None:
        await self.store.mark_delivered(follow.status.request_id, part)
        follow.delivered.add(part)

    def _files(self, status: Status) -> bool:
        return self.tg.telegram_send_audio and status.files

    # --- acknowledgement ---------------------------------------------------------------

    async def _covered(self, follow: _Follow, entries: list[str]) -> None:
        """The follow's message shows these entries (or newer): ack those no one else needs."""
        done = []
        for entry_id in entries:
            waiting = self._unacked.get(entry_id)
            if waiting is not None:
                waiting.discard(follow.status.request_id)
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
            log.warning("telegram delivery: cannot acknowledge events (%s)", exc)
        finally:
            self._acking.difference_update(entry_ids)
        self._acked.set()

    def _remember_finished(self, request_id: str) -> None:
        self._finished[request_id] = None
        while len(self._finished) > 10_000:
            self._finished.popitem(last=False)
