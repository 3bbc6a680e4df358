"""Progress events: one entry per stream, consumer groups redeliver after a restart."""

from __future__ import annotations

from redis.asyncio import Redis

from shared import events, keys
from shared.schemas import JobState, ProgressEvent


def event(state: JobState, percent: float | None = None) -> ProgressEvent:
    return ProgressEvent(job_id="k", request_ids=[], state=state, percent=percent)


async def test_publish_groups_requests_by_stream(redis: Redis) -> None:
    targets = [("s:tg", "r1"), ("s:dc", "r2"), ("s:tg", "r3")]
    await events.publish(redis, targets, event(JobState.SEPARATING, 42.0))
    tg = [events.decode_entry(f) for _, f in await redis.xrange("s:tg")]
    dc = [events.decode_entry(f) for _, f in await redis.xrange("s:dc")]
    assert [(e.request_ids, e.state, e.percent) for e in tg] == [
        (["r1", "r3"], JobState.SEPARATING, 42.0)
    ]
    assert [e.request_ids for e in dc] == [["r2"]]


async def test_unacked_events_come_back_after_restart(redis: Redis) -> None:
    consumer = events.EventConsumer(redis, "s:bot", "bot", "bot-1")
    await consumer.ensure_group()
    await consumer.ensure_group()  # idempotent
    for state in (JobState.SEPARATING, JobState.DONE):
        await events.publish(redis, [("s:bot", "r1")], event(state))

    got = await consumer.read(block_ms=10)
    assert [e.state for _, e in got] == [JobState.SEPARATING, JobState.DONE]
    await consumer.ack(got[0][0])  # the bot dies before handling the final event

    restarted = events.EventConsumer(redis, "s:bot", "bot", "bot-1")
    again = await restarted.read(block_ms=10)
    assert [e.state for _, e in again] == [JobState.DONE]
    await restarted.ack(again[0][0])
    assert await restarted.read(block_ms=10) == []  # backlog empty, then nothing new
    assert await restarted.read(block_ms=10) == []


async def test_trimmed_pending_entry_is_acknowledged(redis: Redis) -> None:
    consumer = events.EventConsumer(redis, "s:bot", "bot", "bot-1")
    await consumer.ensure_group()
    await events.publish(redis, [("s:bot", "r1")], event(JobState.QUEUED))
    [(entry_id, _)] = await consumer.read(block_ms=10)
    await redis.xdel("s:bot", entry_id)
    restarted = events.EventConsumer(redis, "s:bot", "bot", "bot-1")
    assert await restarted.read(block_ms=10) == []
    pending = await redis.xpending("s:bot", "bot")
    assert pending["pending"] == 0


async def test_a_requests_own_stream_expires_and_a_frontends_does_not(redis: Redis) -> None:
    """A follower that gave up (the page's mix after its wait, a CLI killed) leaves no stream
    behind for good; a frontend's stream, read by its consumer group, never expires."""
    own, shared = keys.events("page:0123abcd"), keys.events("telegram")
    await redis.delete(own, shared)
    await events.publish(redis, [(own, "r1"), (shared, "r2")], event(JobState.DONE))
    assert 0 < await redis.ttl(own) <= events.OWN_STREAM_TTL_S
    assert await redis.ttl(shared) == -1
    await redis.delete(own, shared)
