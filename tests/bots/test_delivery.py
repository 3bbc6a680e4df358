"""bots.delivery against a real Redis, with a presenter that records what it is asked to show.

The engine reads the platform's event stream in a consumer group; the recording presenter
stands in for Telegram or Discord: it records each edit, each part of the final message and
each "finished", and raises a rate limit or a network error where a test tells it to.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from redis.asyncio import Redis

from bots.delivery import MAX_ATTEMPTS, Delivery, Pacer, Parts
from shared import backoff, keys
from shared.schemas import JobOptions, JobRequest, JobState, ProgressEvent, Source, TelegramReply
from tests.support.streams import settled
from tests.support.waiting import until

PLATFORM = "telegram"  # the engine is platform-neutral; the stored requests are Telegram's
STREAM = keys.events(PLATFORM)
EDIT_INTERVAL_S = 0.4
FINAL_PARTS = ("text", "file:vocals", "file:drums")

Call = tuple[str, str, str]  # (what, request id, detail)


@dataclass(frozen=True)
class Msg:
    """A status message: the engine's Target."""

    request_id: str
    chat: int
    message: int


class RateLimited(Exception):
    def __init__(self, retry_after: float) -> None:
        super().__init__(f"retry after {retry_after} s")
        self.retry_after = retry_after


class Flaky(Exception):
    """A network error: worth retrying."""


@dataclass
class Gate:
    """Holds a call back until the test opens it."""

    reached: asyncio.Event = field(default_factory=asyncio.Event)
    opened: asyncio.Event = field(default_factory=asyncio.Event)


class RecordingPresenter:
    """Records what a user would see: ("progress", id, "separating 40%"), ("final", id, "done"),
    ("send", id, part) for each part of the final message, ("finished", id, ""). A call made
    to fail is recorded as "<what> failed"."""

    platform = PLATFORM

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.at: list[float] = []  # time.monotonic() of each call
        self._errors: list[tuple[tuple[str, ...], deque[Exception]]] = []
        self._gates: list[tuple[tuple[str, ...], Gate]] = []

    def fail(self, *when: str, errors: list[Exception]) -> None:
        """The next calls matching ``when`` (a prefix of the Call) raise these, one each."""
        self._errors.append((when, deque(errors)))

    def block(self, *when: str) -> Gate:
        """Calls matching ``when`` wait until the gate is opened."""
        gate = Gate()
        self._gates.append((when, gate))
        return gate

    def of(self, request_id: str) -> list[Call]:
        return [c for c in self.calls if c[1] == request_id]

    def time_of(self, call: Call) -> float:
        return self.at[self.calls.index(call)]

    async def _call(self, what: str, target: Msg, detail: str = "") -> None:
        call = (what, target.request_id, detail)
        for when, gate in self._gates:
            if call[: len(when)] == when:
                gate.reached.set()
                await gate.opened.wait()
        for when, errors in self._errors:
            if call[: len(when)] == when and errors:
                self._record((f"{what} failed", target.request_id, detail))
                raise errors.popleft()
        self._record(call)

    def _record(self, call: Call) -> None:
        self.calls.append(call)
        self.at.append(time.monotonic())

    # --- the Presenter protocol ---------------------------------------------------------

    def target_of(self, request: JobRequest) -> Msg | None:
        reply = request.reply
        if not isinstance(reply, TelegramReply):
            return None
        return Msg(request.request_id, reply.chat_id, reply.message_id)

    async def progress(self, target: Msg, event: ProgressEvent, shown: object) -> object:
        text = event.state.value + (f" {event.percent:.0f}%" if event.percent is not None else "")
        if text != shown:
            await self._call("progress", target, text)
        return text

    async def final(self, target: Msg, event: ProgressEvent, parts: Parts) -> None:
        await self._call("final", target, event.state.value)
        for part in FINAL_PARTS:
            if part not in parts:
                await self._call("send", target, part)
                await parts.mark(part)

    async def finished(self, target: Msg) -> None:
        await self._call("finished", target)

    def retry_after(self, exc: Exception) -> float | None:
        return exc.retry_after if isinstance(exc, RateLimited) else None

    def transient(self, exc: Exception) -> bool:
        return isinstance(exc, Flaky)


# --- the parts ---------------------------------------------------------------------------


@pytest.fixture
async def deliveries(redis: Redis) -> AsyncIterator[list[Delivery[Msg]]]:
    """Started deliveries are stopped at the end of the test."""
    started: list[Delivery[Msg]] = []
    yield started
    for delivery in started:
        await delivery.stop()


async def start(
    redis: Redis, deliveries: list[Delivery[Msg]], presenter: RecordingPresenter
) -> Delivery[Msg]:
    delivery = Delivery(redis, presenter, Pacer(EDIT_INTERVAL_S))
    await delivery.start()
    deliveries.append(delivery)
    return delivery


async def store_request(redis: Redis, request_id: str, chat: int, message: int) -> Msg:
    """A request as the core stores it, its status message in ``chat``."""
    request = JobRequest(
        request_id=request_id,
        frontend=PLATFORM,
        user_id=f"telegram:{chat}",
        reply_to=STREAM,
        source=Source(kind="upload", identity="ab" * 32, title="Song"),
        options=JobOptions(),
        reply=TelegramReply(chat_id=chat, message_id=message, user_id=chat, title="Song"),
    )
    await redis.set(keys.request(request_id), request.model_dump_json())
    return Msg(request_id, chat, message)


def event(request_ids: list[str], state: JobState, percent: float | None = None) -> ProgressEvent:
    return ProgressEvent(job_id="job1", request_ids=request_ids, state=state, percent=percent)


async def publish(redis: Redis, *events: ProgressEvent) -> None:
    """Add the events to the stream at once (one round trip), in this order."""
    async with redis.pipeline(transaction=False) as pipe:
        for ev in events:
            pipe.xadd(STREAM, {"data": ev.model_dump_json()})
        await pipe.execute()


async def pending(redis: Redis) -> int:
    return int((await redis.xpending(STREAM, PLATFORM))["pending"])


def fraction_of_ceiling(monkeypatch: pytest.MonkeyPatch, fraction: float) -> None:
    """Backoff waits drawn at ``fraction`` of their ceiling (2 s doubling), not at random."""

    class Draw:
        def uniform(self, low: float, high: float) -> float:
            return low + (high - low) * fraction

    monkeypatch.setattr(backoff, "_RNG", Draw())


SEP = JobState.SEPARATING
DL = JobState.DOWNLOADING


# --- pacing --------------------------------------------------------------------------------


async def test_edits_of_one_message_are_paced_and_a_burst_shows_its_latest(
    redis: Redis, deliveries: list[Delivery[Msg]]
) -> None:
    a = await store_request(redis, "a", chat=1, message=10)
    b = await store_request(redis, "b", chat=1, message=11)
    presenter = RecordingPresenter()
    delivery = await start(redis, deliveries, presenter)

    await delivery.follow(a, event(["a"], JobState.QUEUED))
    await until(lambda: presenter.calls, what="the first state")
    # a burst of five events while the message waits its turn: only the latest is shown
    await publish(
        redis,
        event(["a"], DL, 10),
        event(["a"], DL, 60),
        event(["a"], JobState.DECODING),
        event(["a"], SEP, 5),
        event(["a"], SEP, 30),
    )
    # another message in the same chat has its own pace
    await delivery.follow(b, event(["b"], JobState.QUEUED))
    await until(lambda: len(presenter.of("a")) == 2, what="the burst's latest")
    await settled(redis, STREAM)
    await publish(redis, event(["a"], SEP, 30), event(["a"], SEP, 80))  # the same, then newer
    await until(lambda: len(presenter.of("a")) == 3, what="80%")
    await settled(redis, STREAM)

    assert presenter.of("a") == [
        ("progress", "a", "queued"),
        ("progress", "a", "separating 30%"),
        ("progress", "a", "separating 80%"),
    ]
    assert presenter.of("b") == [("progress", "b", "queued")]
    times = [presenter.time_of(c) for c in presenter.of("a")]
    assert times[1] - times[0] >= EDIT_INTERVAL_S
    assert times[2] - times[1] >= EDIT_INTERVAL_S
    assert presenter.time_of(("progress", "b", "queued")) - times[0] < EDIT_INTERVAL_S


# --- the final message ---------------------------------------------------------------------


async def test_the_final_message_goes_out_once(
    redis: Redis, deliveries: list[Delivery[Msg]]
) -> None:
    await store_request(redis, "a", chat=1, message=10)
    done = event(["a"], JobState.DONE)
    # read in one batch: the final replaces the progress before it; the same final, twice
    await publish(redis, event(["a"], SEP, 50), done, done)
    presenter = RecordingPresenter()
    delivery = await start(redis, deliveries, presenter)
    await until(lambda: ("finished", "a", "") in presenter.calls, what="the end")
    await settled(redis, STREAM)
    once = [
        ("final", "a", "done"),
        ("send", "a", "text"),
        ("send", "a", "file:vocals"),
        ("send", "a", "file:drums"),
        ("finished", "a", ""),
    ]
    assert presenter.calls == once

    await publish(redis, done)  # read again later by the same run
    await settled(redis, STREAM)
    await delivery.stop()
    again = RecordingPresenter()  # and by the next run
    await publish(redis, done, event(["a"], SEP, 90))
    await start(redis, deliveries, again)
    await settled(redis, STREAM)

    assert presenter.calls == once
    assert again.calls == []
    parts = await Parts.load(redis, PLATFORM, "a")
    assert parts.done == {*FINAL_PARTS, "complete"}
    assert await pending(redis) == 0


async def test_a_final_message_cut_short_by_a_restart_sends_only_what_is_missing(
    redis: Redis, deliveries: list[Delivery[Msg]]
) -> None:
    await store_request(redis, "a", chat=1, message=10)
    first = RecordingPresenter()
    gate = first.block("send", "a", "file:vocals")
    delivery = await start(redis, deliveries, first)
    await publish(redis, event(["a"], JobState.DONE))
    await until(gate.reached.is_set, what="the first file")
    await delivery.stop()  # the bot stops while the first file is being sent
    assert first.calls == [("final", "a", "done"), ("send", "a", "text")]
    assert await pending(redis) == 1

    second = RecordingPresenter()
    await start(redis, deliveries, second)
    await until(lambda: ("finished", "a", "") in second.calls, what="the end")
    await settled(redis, STREAM)

    assert second.calls == [
        ("final", "a", "done"),
        ("send", "a", "file:vocals"),
        ("send", "a", "file:drums"),
        ("finished", "a", ""),
    ]
    assert first.calls == [("final", "a", "done"), ("send", "a", "text")]


# --- acknowledgement -----------------------------------------------------------------------


async def test_an_entry_is_acknowledged_once_every_message_shows_it(
    redis: Redis, deliveries: list[Delivery[Msg]]
) -> None:
    await store_request(redis, "a", chat=1, message=10)
    await store_request(redis, "b", chat=2, message=20)
    presenter = RecordingPresenter()
    gate = presenter.block("progress", "b")
    await start(redis, deliveries, presenter)
    # one entry for two requests (a joined job), and one for a request that is not ours
    await publish(redis, event(["a", "b"], SEP, 50), event(["gone"], SEP, 50))
    await until(lambda: presenter.calls and gate.reached.is_set(), what="a shown, b started")

    async def only_the_joint_entry_pending() -> bool:
        return await pending(redis) == 1

    await until(only_the_joint_entry_pending, what="the other entry to be acknowledged")
    assert presenter.calls == [("progress", "a", "separating 50%")]

    gate.opened.set()
    await settled(redis, STREAM)
    assert presenter.calls == [
        ("progress", "a", "separating 50%"),
        ("progress", "b", "separating 50%"),
    ]
    assert await pending(redis) == 0


async def test_unacknowledged_entries_come_back_after_a_restart(
    redis: Redis, deliveries: list[Delivery[Msg]]
) -> None:
    await store_request(redis, "a", chat=1, message=10)
    first = RecordingPresenter()
    gate = first.block("progress", "a")
    delivery = await start(redis, deliveries, first)
    await publish(redis, event(["a"], SEP, 40))
    await until(gate.reached.is_set, what="the edit")
    await delivery.stop()
    assert (first.calls, await pending(redis)) == ([], 1)

    second = RecordingPresenter()
    await start(redis, deliveries, second)
    await settled(redis, STREAM)
    assert second.calls == [("progress", "a", "separating 40%")]
    assert first.calls == []


# --- backoff -------------------------------------------------------------------------------


async def test_a_rate_limit_holds_the_chat_back_for_as_long_as_it_says(
    redis: Redis, deliveries: list[Delivery[Msg]]
) -> None:
    retry_after = 0.6
    await store_request(redis, "a", chat=1, message=10)
    await store_request(redis, "b", chat=1, message=11)  # the same chat
    await store_request(redis, "c", chat=2, message=20)  # another chat
    presenter = RecordingPresenter()
    presenter.fail("progress", "a", errors=[RateLimited(retry_after)])
    await start(redis, deliveries, presenter)
    await publish(redis, event(["a"], SEP, 10))
    await until(lambda: presenter.calls, what="the rate limit")
    await publish(redis, event(["b", "c"], SEP, 10))
    await until(lambda: len(presenter.calls) == 4, what="every message shown")
    await settled(redis, STREAM)

    assert presenter.calls[0] == ("progress failed", "a", "separating 10%")
    assert sorted(presenter.calls[1:]) == [
        ("progress", "a", "separating 10%"),
        ("progress", "b", "separating 10%"),
        ("progress", "c", "separating 10%"),
    ]
    assert presenter.calls[1] == ("progress", "c", "separating 10%")  # not held back
    t0 = presenter.at[0]
    assert presenter.time_of(("progress", "c", "separating 10%")) - t0 < retry_after
    assert presenter.time_of(("progress", "a", "separating 10%")) - t0 >= retry_after
    assert presenter.time_of(("progress", "b", "separating 10%")) - t0 >= retry_after


async def test_a_network_error_is_retried_with_growing_waits(
    redis: Redis, deliveries: list[Delivery[Msg]], monkeypatch: pytest.MonkeyPatch
) -> None:
    fraction_of_ceiling(monkeypatch, 0.05)  # waits of 0.1, 0.2, 0.4 s
    await store_request(redis, "a", chat=1, message=10)
    presenter = RecordingPresenter()
    presenter.fail("final", "a", errors=[Flaky(), Flaky(), Flaky()])
    presenter.fail("send", "a", "file:drums", errors=[OSError("connection reset")])
    await start(redis, deliveries, presenter)
    await publish(redis, event(["a"], JobState.DONE))
    await until(lambda: ("finished", "a", "") in presenter.calls, what="the end")
    await settled(redis, STREAM)

    assert presenter.calls == [
        ("final failed", "a", "done"),
        ("final failed", "a", "done"),
        ("final failed", "a", "done"),
        ("final", "a", "done"),
        ("send", "a", "text"),
        ("send", "a", "file:vocals"),
        ("send failed", "a", "file:drums"),
        ("final", "a", "done"),  # the text and the first file are not sent again
        ("send", "a", "file:drums"),
        ("finished", "a", ""),
    ]
    gaps = [later - earlier for earlier, later in itertools.pairwise(presenter.at)]
    # the waits grow with each failure in a row (the fourth: 0.8 s)
    assert [gaps[0] >= 0.1, gaps[1] >= 0.2, gaps[2] >= 0.4, gaps[6] >= 0.8] == [True] * 4


async def test_an_update_that_keeps_failing_for_another_reason_is_given_up(
    redis: Redis, deliveries: list[Delivery[Msg]], monkeypatch: pytest.MonkeyPatch
) -> None:
    fraction_of_ceiling(monkeypatch, 0.02)  # waits of 0.04, 0.08, ... 0.64 s
    await store_request(redis, "a", chat=1, message=10)
    presenter = RecordingPresenter()
    presenter.fail("progress", "a", errors=[ValueError("a bug")] * (MAX_ATTEMPTS + 1))
    await start(redis, deliveries, presenter)
    await publish(redis, event(["a"], SEP, 10))
    await until(lambda: len(presenter.calls) == MAX_ATTEMPTS, what="the last attempt")
    await settled(redis, STREAM)  # given up: acknowledged
    await publish(redis, event(["a"], SEP, 20))  # the next update is tried afresh
    await until(lambda: len(presenter.calls) == MAX_ATTEMPTS + 2, what="the next update")
    await settled(redis, STREAM)

    assert presenter.calls == [("progress failed", "a", "separating 10%")] * MAX_ATTEMPTS + [
        ("progress failed", "a", "separating 20%"),
        ("progress", "a", "separating 20%"),
    ]
