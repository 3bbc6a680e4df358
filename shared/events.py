"""Progress events on Redis Streams.

Format
------
Each frontend names the stream its requests' events go to (``JobRequest.reply_to``), e.g.
``stembot:events:telegram`` for the Telegram bot or ``stembot:events:cli:<id>`` for one
``stembot split`` run. Every event is one stream entry with a single field::

    data = <ProgressEvent as JSON>

with the fields of :class:`shared.schemas.ProgressEvent`:

``job_id``
    the separation job (shared by every request that joined it);
``request_ids``
    the requests of *this stream* the event is for;
``state``
    queued | downloading | decoding | separating | encoding | done | failed | cancelled;
``percent``
    progress 0-100 within ``downloading``/``separating``, else null;
``position``, ``eta_s``
    queue position (0 = next) and estimated seconds to the end, when known;
``error_code``, ``error_params``, ``error_message``
    for ``failed``/``cancelled``: a stable code, the values its text needs (each language
    renders it: shared.errors.render) and the English text (logs, the CLI);
``result``
    for ``done``: the :class:`shared.schemas.JobResult` with the signed links.

A bot reads its stream in a consumer group (:class:`EventConsumer`), each of its processes
under its own consumer name, so entries a process has not acknowledged are delivered again
after it restarts, or to another process once they are idle (bots.peers): the final message is
posted once.
Streams are capped (approximately ``STREAM_MAXLEN`` entries) so they cannot grow forever.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from shared import keys
from shared.schemas import ProgressEvent

STREAM_MAXLEN = 10_000
#: A request's own stream (the CLI's, the page's mix) outlives its last event by this long, so
#: one whose follower gave up waiting does not stay in Redis for good.
OWN_STREAM_TTL_S = 3600


async def publish(redis: Redis, targets: Iterable[tuple[str, str]], event: ProgressEvent) -> None:
    """Publish ``event`` once per stream to the given (reply_to, request_id) targets."""
    by_stream: dict[str, list[str]] = defaultdict(list)
    for stream, request_id in targets:
        by_stream[stream].append(request_id)
    if not by_stream:
        return
    async with redis.pipeline(transaction=False) as pipe:
        for stream, request_ids in by_stream.items():
            data = event.model_copy(update={"request_ids": request_ids}).model_dump_json()
            pipe.xadd(stream, {"data": data}, maxlen=STREAM_MAXLEN, approximate=True)
            if keys.own_events(stream):  # its follower may have given up (a timeout)
                pipe.expire(stream, OWN_STREAM_TTL_S)
        await pipe.execute()


def decode_entry(fields: dict[bytes, bytes]) -> ProgressEvent:
    return ProgressEvent.model_validate_json(fields[b"data"])


class EventConsumer:
    """Read one stream in a consumer group; unacknowledged entries come back after a restart."""

    def __init__(self, redis: Redis, stream: str, group: str, consumer: str) -> None:
        self.redis = redis
        self.stream = stream
        self.group = group
        self.consumer = consumer
        self._backlog_done = False

    async def ensure_group(self) -> None:
        try:
            await self.redis.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def read(self, block_ms: int = 1000, count: int = 100) -> list[tuple[str, ProgressEvent]]:
        """Entries pending for this consumer first (after a restart), then new ones."""
        entries: list[tuple[bytes, dict[bytes, bytes]]] = []
        if not self._backlog_done:
            reply = await self.redis.xreadgroup(
                self.group, self.consumer, {self.stream: "0"}, count=count
            )
            entries = [(eid, fields) for _, items in reply for eid, fields in items]
            self._backlog_done = not entries
        if self._backlog_done and not entries:
            reply = await self.redis.xreadgroup(
                self.group, self.consumer, {self.stream: ">"}, count=count, block=block_ms
            )
            entries = [(eid, fields) for _, items in reply for eid, fields in items]
        events, gone = [], []
        for raw_id, fields in entries:
            eid = raw_id.decode() if isinstance(raw_id, bytes) else raw_id
            if fields:
                events.append((eid, decode_entry(fields)))
            else:  # trimmed from the stream while pending: nothing left to deliver
                gone.append(eid)
        await self.ack(*gone)
        return events

    async def ack(self, *entry_ids: str) -> None:
        if entry_ids:
            await self.redis.xack(self.stream, self.group, *entry_ids)
