"""One request's status message, followed by a bot process: the newest state not shown
yet, and the task that shows it (bots.delivery reads the stream and hands states over).

Showing waits for the message's turn (bots.pacing), takes a progress edit from the bot's send
budget (a final's sends take theirs as they go out), then edits under the request's lease in
Redis (bots.records) unless what the message shows is newer. A platform's rate limit holds
the chat back, for every process of the bot; network errors back off and are retried for
ever; any other error a few times, then the update is dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

from redis.exceptions import RedisError

from bots.pacing import Pacer
from bots.records import Kind, Parts, Record, Turn
from shared.backoff import full_jitter
from shared.schemas import JobRequest, ProgressEvent
from shared.sendbudget import SendBudget

log = logging.getLogger("bots.delivery")

MAX_ATTEMPTS = 6
#: How soon to look again at a message another process is editing (its lease says how long
#: at most; an edit takes far less).
BUSY_RETRY_S = 0.25


class Target(Protocol):
    """A request's status message."""

    @property
    def request_id(self) -> str: ...

    @property
    def chat(self) -> Hashable: ...

    @property
    def message(self) -> Hashable: ...


T = TypeVar("T", bound=Target)


class Presenter(Protocol[T]):
    """The platform's side of delivery."""

    platform: str

    def target_of(self, request: JobRequest) -> T | None:
        """The status message a stored request points at; None when it is not ours."""

    async def progress(self, target: T, event: ProgressEvent, shown: object) -> object:
        """Show a non-final state unless ``shown`` (what the last call returned) is the same.
        The engine took this edit from the send budget already (when it has one)."""

    async def final(self, target: T, event: ProgressEvent, parts: Parts) -> None:
        """Show the end; send each part not in ``parts`` yet and mark it once sent."""

    async def finished(self, target: T) -> None:
        """The request is over and its message complete (forget per-request state)."""

    def retry_after(self, exc: Exception) -> float | None:
        """Seconds the platform asks us to wait, when ``exc`` is its rate limit."""

    def transient(self, exc: Exception) -> bool:
        """True for a network error worth retrying for ever."""


@dataclass
class Follow(Generic[T]):
    """A request's status message as this process follows it."""

    target: T
    parts: Parts
    record: Record
    job_key: str = ""
    #: the newest event not shown yet, the stream entry it came in (None: a place read
    #: here) and the Redis time of the queue read behind its place
    latest: ProgressEvent | None = None
    latest_entry: str | None = None
    latest_read: int = 0
    #: the newest stream entry of this request seen here
    newest_entry: str = "0-0"
    entries: list[str] = field(default_factory=list)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    seen_stream: bool = False
    closed: bool = False
    shown: object = None
    attempts: int = 0
    #: waiting in the queue, its place kept shown by this process
    waiting: bool = False
    registered: bool = False
    place: int | None = None
    busy: bool = False
    ticket: asyncio.Future[None] | None = None
    task: asyncio.Task[None] | None = None
    #: when it was last given something to show (time.monotonic())
    active: float = field(default_factory=time.monotonic)

    @property
    def idle(self) -> bool:
        return self.latest is None and not self.entries and not self.busy and not self.closed


def newer(a: str, b: str) -> bool:
    """Stream entry id ``a`` comes after ``b``."""
    am, _, aseq = a.partition("-")
    bm, _, bseq = b.partition("-")
    return (int(am), int(aseq or 0)) > (int(bm), int(bseq or 0))


class Driver(Generic[T]):
    """Shows each follow's states on its message, one task per follow."""

    def __init__(
        self,
        presenter: Presenter[T],
        pacer: Pacer,
        budget: SendBudget | None,
        covered: Callable[[Follow[T], list[str]], Awaitable[None]],
        closed: Callable[[Follow[T]], None],
    ) -> None:
        """``covered``: the message shows these stream entries (or newer); ``closed``: the
        final message is out."""
        self.presenter, self.pacer, self.budget = presenter, pacer, budget
        self.platform = presenter.platform
        self.covered, self.closed = covered, closed

    async def drive(self, follow: Follow[T]) -> None:
        """Show what the follow gets, until its final message is out."""
        target = follow.target
        while True:
            await follow.wake.wait()
            await self.pacer.wait_turn(target.chat, target.message)
            if not await self._budgeted(follow):
                continue  # withdrawn: the end arrived meanwhile
            follow.wake.clear()
            event, entries = follow.latest, follow.entries
            entry, read = follow.latest_entry, follow.latest_read
            follow.latest, follow.entries = None, []
            if event is None:
                await self.covered(follow, entries)
                continue
            follow.busy = True
            try:
                turn = await self._show(follow, event, entry, read)
            except Exception as exc:
                wait = self.presenter.retry_after(exc)
                if wait is not None:
                    self.pacer.pause(target.chat, wait)
                    if self.budget is not None:
                        await self.budget.hold(target.chat, wait)
                    self._retry(follow, event, entries, entry, read)
                    continue
                if isinstance(exc, RedisError | OSError) or self.presenter.transient(exc):
                    self._backoff(follow, (event, entries, entry, read), exc, limit=None)
                    continue
                # a bug: retry a few times, then drop this update
                log.exception("%s: delivering %s failed", self.platform, target.request_id)
                if not self._backoff(follow, (event, entries, entry, read), exc, MAX_ATTEMPTS):
                    continue
                turn = Turn("ok")
            finally:
                follow.busy = False
            if turn.verdict == "busy":  # another process is editing this message: soon done
                self.pacer.hold(target.chat, target.message, min(turn.wait_s, BUSY_RETRY_S))
                self._retry(follow, event, entries, entry, read)
                continue
            follow.attempts = 0
            if follow.closed:
                entries, follow.entries = entries + follow.entries, []
            await self.covered(follow, entries)
            if follow.closed:
                self.pacer.release(target.chat, target.message)
                self.closed(follow)
                return

    async def _budgeted(self, follow: Follow[T]) -> bool:
        """Take a progress edit from the send budget; False when withdrawn for the final."""
        latest = follow.latest
        if self.budget is None or latest is None or latest.state.final or "text" in follow.parts:
            return True
        ticket = self.budget.request(follow.target.chat, urgent=False)
        follow.ticket = ticket
        try:
            await asyncio.wait({ticket})
        finally:
            follow.ticket = None
            ticket.cancel()  # (done: nothing; this task cancelled: withdrawn)
        return not ticket.cancelled()

    async def _show(
        self, follow: Follow[T], event: ProgressEvent, entry: str | None, read: int
    ) -> Turn:
        """Edit the message under the request's lease, unless what it shows is newer."""
        target, record = follow.target, follow.record
        kind: Kind
        if event.state.final:
            kind = "final"
        elif "text" in follow.parts:
            return Turn("stale")
        else:
            kind = "progress" if entry is not None else "place"
        turn = await record.begin(kind, entry or follow.newest_entry, read)
        if turn.verdict != "ok":
            return turn
        shown = False
        try:
            if kind == "final":
                follow.closed = True
                async with record.renewed():
                    await follow.parts.reload()
                    if "complete" not in follow.parts:
                        await self.presenter.final(target, event, follow.parts)
                        await follow.parts.mark("complete")
                await self.presenter.finished(target)
            else:
                now_shown = await self.presenter.progress(target, event, follow.shown)
                if now_shown != follow.shown:  # edited: the next edit waits its turn
                    self.pacer.hold(target.chat, target.message)
                follow.shown = now_shown
            shown = True
        finally:
            with contextlib.suppress(RedisError):  # (else the lease runs out by itself)
                await record.end(entry, read if kind == "place" else None, shown=shown)
        return turn

    def _retry(
        self,
        follow: Follow[T],
        event: ProgressEvent,
        entries: list[str],
        entry: str | None,
        read: int,
    ) -> None:
        follow.closed = False
        if follow.latest is None or event.state.final:
            follow.latest, follow.latest_entry, follow.latest_read = event, entry, read
        follow.entries = entries + follow.entries
        follow.wake.set()

    def _backoff(
        self,
        follow: Follow[T],
        update: tuple[ProgressEvent, list[str], str | None, int],
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
        self._retry(follow, *update)
        return False
