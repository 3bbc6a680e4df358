"""Progress delivery, for every chat platform: a bot's event stream becomes edits of one
status message per request, by any number of processes of the bot.

The stream (``stembot:events:<platform>``) is read in a consumer group, each process under
its own name, so each entry goes to one process and what one did not acknowledge comes back:
to itself after a restart under the same name, to another once it is idle (bots.peers). An
entry is acknowledged only once every status message it is for shows it, or something newer.
Edits are paced (one per message at most every ``edit_interval_s``, a chat held back while the
platform's rate limit says so) and, with a send budget (shared.sendbudget), take their turn in
the bot's budget across all its processes; a newer event replaces an older one not shown yet,
and network errors back off.

Places in the queue are read here, where they are shown: each process reads the queue once
every ``place_interval_s`` for the waiting requests it keeps shown (bots.peers) and shows a
new place when it changed. The worker does no work for waiting requests.

Two processes may hold events of one request; the request's record in Redis (bots.records)
lets one edit its message at a time, never shows an older event over a newer one, and sends
each part of the final message once: its parts are recorded before the entry is acknowledged.

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
from typing import ClassVar, Generic, Self, cast

from pydantic import BaseModel
from redis.asyncio import Redis
from redis.exceptions import RedisError

from bots.follow import MAX_ATTEMPTS as MAX_ATTEMPTS
from bots.follow import Driver, Follow, Presenter, T, newer
from bots.follow import Target as Target
from bots.pacing import Pacer as Pacer
from bots.peers import Peers, default_name
from bots.records import Parts as Parts
from bots.records import Record
from shared import jobs
from shared.backoff import Backoff
from shared.core import stream_of
from shared.events import EventConsumer
from shared.places import Place
from shared.schemas import JobRequest, JobState, ProgressEvent
from shared.sendbudget import SendBudget

log = logging.getLogger(__name__)

#: A request followed here that got nothing to show for this long is forgotten here (its
#: events go to other processes; the next one here follows it again).
IDLE_FOLLOW_S = 600.0


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


class Delivery(Generic[T]):
    def __init__(
        self,
        redis: Redis,
        presenter: Presenter[T],
        pacer: Pacer,
        *,
        budget: SendBudget | None = None,
        name: str | None = None,
        queues: tuple[str, str] | None = None,
        place_interval_s: float = 5.0,
        claim_after_s: float = 30.0,
    ) -> None:
        """``name``: this process's consumer name (default: host and pid); ``queues``: the
        separation and download queues whose places waiting requests are shown (None: none)."""
        self.redis, self.presenter, self.pacer, self.budget = redis, presenter, pacer, budget
        self.platform = presenter.platform
        self.name = name or default_name()
        stream = stream_of(self.platform)
        self.consumer = EventConsumer(redis, stream, self.platform, self.name)
        self.peers = Peers(
            redis,
            self.platform,
            stream,
            self.platform,
            self.name,
            claim_after_s=claim_after_s,
            queues=queues,
        )
        self.place_interval_s, self.claim_every_s = place_interval_s, claim_after_s / 3
        self._follows: dict[str, Follow[T]] = {}
        self._finished: OrderedDict[str, None] = OrderedDict()
        self._unacked: dict[str, set[str]] = {}
        self._acking: set[str] = set()
        self._acked = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.driver = Driver(presenter, pacer, budget, self._covered, self._closed)

    # --- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        await self.consumer.ensure_group()
        loops = {"delivery": self._read_loop, "takeover": self._takeover_loop}
        if self.peers.queues is not None:
            loops["places"] = self._places_loop
        self._tasks = [
            asyncio.create_task(loop(), name=f"{self.platform}-{what}")
            for what, loop in loops.items()
        ]

    async def stop(self) -> None:
        """Stop at once; what was not acknowledged is delivered by the next run (or another
        process)."""
        tasks = [*self._tasks, *(f.task for f in self._follows.values() if f.task)]
        editing = [f for f in self._follows.values() if f.busy]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for follow in editing:  # an edit cut short: its lease goes back now, not in 30 s
            with contextlib.suppress(RedisError):
                await follow.record.end(None, None, shown=False)
        self._tasks = []
        self._follows.clear()

    # --- what the handlers call --------------------------------------------------------

    async def follow(self, target: T, event: ProgressEvent) -> None:
        """Show a request's first state (queued, or a cached result) on its status message."""
        follow = await self._follow(target.request_id, target, event.job_id)
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

    async def _follow(
        self, request_id: str, target: T | None = None, job_key: str = ""
    ) -> Follow[T] | None:
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
            job_key = requests[0].key
        if request_id in self._follows:  # made by the handler or the stream meanwhile
            return self._follows[request_id]
        record = Record(self.redis, self.platform, request_id, self.name)
        follow = Follow(target, parts, record, job_key)
        self._follows[request_id] = follow
        follow.task = asyncio.create_task(self.driver.drive(follow), name=f"deliver-{request_id}")
        return follow

    async def _offer(self, follow: Follow[T], event: ProgressEvent, entry_id: str | None) -> None:
        if entry_id is None:
            if follow.seen_stream:
                return  # the stream is ahead of the handler's first state already
        else:
            follow.seen_stream = True
            follow.entries.append(entry_id)
            if newer(entry_id, follow.newest_entry):
                follow.newest_entry = entry_id
        follow.job_key = follow.job_key or event.job_id
        follow.active = time.monotonic()
        if follow.closed:
            entries, follow.entries = follow.entries, []
            await self._covered(follow, entries)
            return
        latest, latest_entry = follow.latest, follow.latest_entry
        if latest is None or not latest.state.final:  # a final stays
            if entry_id is None or latest_entry is None or newer(entry_id, latest_entry):
                follow.latest, follow.latest_entry = event, entry_id
                follow.latest_read = 1 if entry_id is None else 0  # (a place read at submission)
        if event.state == JobState.QUEUED:
            follow.place = event.position
            await self._keep_place(follow)
        else:
            follow.waiting = False
        if event.state.final and follow.ticket is not None:
            follow.ticket.cancel()  # a progress edit waiting for the budget yields to the end
        follow.wake.set()

    # --- places in the queue ---------------------------------------------------------------

    async def _keep_place(self, follow: Follow[T]) -> None:
        """This process keeps the place of this waiting request shown."""
        follow.waiting = True
        if not follow.registered:
            await self.peers.register(follow.target.request_id)
            follow.registered = True

    async def _places_loop(self) -> None:
        while True:
            await asyncio.sleep(self.place_interval_s)
            try:
                await self._update_places()
            except RedisError as exc:
                log.warning("%s delivery: cannot read the queue (%s)", self.platform, exc)

    async def _update_places(self) -> None:
        """One read of the queue for every waiting request kept here; a new place is shown."""
        waiting = [f for f in self._follows.values() if f.waiting and not f.closed]
        found = await self.peers.places([(f.target.request_id, f.job_key) for f in waiting])
        if found is None:
            return
        for follow in waiting:
            request_id = follow.target.request_id
            place = found.waiting.get(request_id)
            if place is not None:
                self._offer_place(follow, place, found.read_ms)
            elif request_id in found.gone or request_id in found.elsewhere:
                follow.waiting = follow.registered = False
                if follow.idle:  # its events go to whichever process reads them
                    self._drop(follow)

    def _offer_place(self, follow: Follow[T], place: Place, read_ms: int) -> None:
        position, eta = place
        pending = follow.latest
        if follow.closed or not follow.waiting:
            return
        if position == follow.place or (pending is not None and pending.state != JobState.QUEUED):
            return  # unchanged, or newer news waits to be shown
        follow.place = position
        follow.latest = ProgressEvent(
            job_id=follow.job_key,
            request_ids=[follow.target.request_id],
            state=JobState.QUEUED,
            position=position,
            eta_s=eta,
        )
        follow.latest_entry, follow.latest_read = None, read_ms
        follow.active = time.monotonic()
        follow.wake.set()

    def _drop(self, follow: Follow[T]) -> None:
        """Stop following an idle request here (a later event follows it again)."""
        if follow.task is not None:
            follow.task.cancel()
        self._follows.pop(follow.target.request_id, None)
        self.pacer.release(follow.target.chat, follow.target.message)

    # --- what other processes left --------------------------------------------------------

    async def _takeover_loop(self) -> None:
        while True:
            try:
                await self._take_over()
            except RedisError as exc:
                log.warning("%s delivery: cannot take over (%s)", self.platform, exc)
            await asyncio.sleep(self.claim_every_s)

    async def _take_over(self) -> None:
        """Say this process is alive; take the events and waiting requests of stopped ones;
        forget requests whose events have gone elsewhere for a while."""
        now = time.monotonic()
        for followed in list(self._follows.values()):
            if followed.idle and not followed.waiting and now - followed.active > IDLE_FOLLOW_S:
                self._drop(followed)
        await self.peers.keep(sorted(self._unacked))
        for entry_id, event in await self.peers.claim():
            if entry_id not in self._unacked and entry_id not in self._acking:
                await self._dispatch(entry_id, event)
        for request_id in await self.peers.adopt():
            follow = self._follows.get(request_id) or await self._follow(request_id)
            if follow is None:
                await self.peers.drop(request_id)  # over, or gone: nothing to show
            elif not follow.waiting:
                follow.waiting = follow.registered = True
                follow.place = None  # the next read shows it

    # --- acknowledgement ---------------------------------------------------------------

    async def _covered(self, follow: Follow[T], entries: list[str]) -> None:
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

    def _closed(self, follow: Follow[T]) -> None:
        """Its final message is out: it is not followed again."""
        self._follows.pop(follow.target.request_id, None)
        self._remember_finished(follow.target.request_id)

    def _remember_finished(self, request_id: str) -> None:
        self._finished[request_id] = None
        while len(self._finished) > 10_000:
            self._finished.popitem(last=False)
