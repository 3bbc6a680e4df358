"""The one request flow every frontend calls: Discord, Telegram, the HTTP API, the CLI.

Built once at start-up (Redis, storage, settings) and handed to the adapters::

    core.precheck(declared_type, declared_size)        # what the platform says of a file
    async with core.admission(requester) as ticket:    # LimitReached: say why, privately
        ...                                            # the adapter's own step (Discord: defer)
        accepted = await core.submit(ticket, song, options, reply)
    # accepted.first: the first event to show (queued with its position, or done at once)

``submit`` fetches and checks an upload (or validates a link), stores it, queues it or joins
or reuses a run. Anything refused inside ``admission`` refunds the ticket, there and only
there; a cached answer gives the active slot back at once; otherwise the slot is given back
when the final event is published (shared.usage), never by an adapter. ``request`` does
both steps for frontends that have nothing to do in between.

``mix`` asks for a custom mix of a finished song (shared.mixes): checked, admitted under the
mixes' own limit and queued as a render in one call, answered like ``submit``.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterable, AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from arq.connections import ArqRedis

from shared import intake, jobs, keys, limits, mixes, usage
from shared.config import Settings
from shared.errors import NotAudio, TooLarge
from shared.gate import Gate
from shared.schemas import (
    AudioFormat,
    JobOptions,
    JobRequest,
    JobResult,
    JobState,
    LimitTicket,
    ProgressEvent,
    ReplyTarget,
)
from shared.storage import Storage

#: Declared types that may hold audio; a file declared as anything else is not a song.
MAYBE_MEDIA = ("audio/", "video/", "application/ogg", "application/octet-stream")


@dataclass(frozen=True)
class Requester:
    """Who asks, as the platform vouches for it."""

    frontend: str
    #: platform-qualified: "telegram:12345", "discord:678", "api:alice"
    user_id: str
    #: the server or group whose admin overrides apply
    scope: str | None = None
    #: a bot admin (exempt from the per-user limits while STEMBOT_ADMINS_EXEMPT is on)
    admin: bool = False


@dataclass(frozen=True)
class Upload:
    """A file the user sent, streamed from the platform (the core caps and checks it)."""

    chunks: AsyncIterable[bytes]
    filename: str


@dataclass(frozen=True)
class Link:
    """A link the user sent (only single YouTube videos are taken)."""

    url: str


Song = Upload | Link


@dataclass(frozen=True)
class Accepted:
    """A submitted request: its id, how it was answered, and the first event to show."""

    request_id: str
    outcome: Literal["queued", "joined", "cached"]
    first: ProgressEvent

    @property
    def job_id(self) -> str:
        return self.first.job_id

    @property
    def position(self) -> int | None:
        return self.first.position

    @property
    def eta_s(self) -> float | None:
        return self.first.eta_s

    @property
    def result(self) -> JobResult | None:
        """The result, when it came from the cache at once."""
        return self.first.result


class Core:
    def __init__(
        self,
        redis: ArqRedis,
        storage: Storage,
        settings: Settings,
        *,
        limits_base: limits.Limits | None = None,
    ) -> None:
        self.redis, self.storage, self.settings = redis, storage, settings
        self._limits_base = limits_base
        self._gates: dict[str, Gate] = {}

    def gate(self, frontend: str) -> Gate:
        """The limits gate, counting its refusals under ``frontend``."""
        if frontend not in self._gates:
            self._gates[frontend] = Gate(
                self.redis, self.settings, frontend, base=self._limits_base
            )
        return self._gates[frontend]

    def precheck(self, declared_type: str | None, declared_size: int | None) -> None:
        """Refuse a file by what its platform declares, before anything is fetched."""
        if declared_type and not declared_type.startswith(MAYBE_MEDIA):
            raise NotAudio(detail=f"declared type {declared_type}")
        limit = self.settings.limits.max_upload_bytes
        if declared_size is not None and declared_size > limit:
            raise TooLarge(limit, declared_size)

    async def admit(self, requester: Requester) -> LimitTicket:
        """Count a new request of this user, or raise LimitReached (nothing else happened)."""
        return await self.gate(requester.frontend).admit(
            requester.user_id, scope=requester.scope, admin=requester.admin
        )

    @contextlib.asynccontextmanager
    async def admission(self, requester: Requester) -> AsyncIterator[LimitTicket]:
        """Admit the request for the block: anything raised in it (a refused file, a
        platform error, the user gone) refunds it, here and only here. LimitReached comes
        from entering, before anything happened."""
        ticket = await self.admit(requester)
        try:
            yield ticket
        except BaseException:
            await limits.refund(self.redis, ticket.user_id, ticket.id)
            raise
        finally:
            await limits.admitted(self.redis, ticket.id)  # no longer on its way to the queue

    async def submit(
        self,
        ticket: LimitTicket | None,
        song: Song,
        options: JobOptions,
        reply: ReplyTarget,
        *,
        frontend: str | None = None,
        user_id: str | None = None,
        reply_to: str | None = None,
    ) -> Accepted:
        """Fetch and check the song, store it, queue it (or join or reuse a run).

        Raises the shared.errors rejection for anything refused (inside ``admission``, which
        refunds the ticket). ``ticket`` None is for frontends outside the limits (the CLI,
        tests); then ``user_id`` says who asks. ``reply_to`` is the stream the events go to
        (default: the frontend's own).
        """
        frontend = frontend or reply.frontend
        user = ticket.user_id if ticket is not None else user_id
        if user is None:
            raise ValueError("a request outside the limits needs a user_id")
        common = {
            "redis": self.redis,
            "settings": self.settings,
            "frontend": frontend,
            "user_id": user,
            "reply_to": reply_to or stream_of(frontend),
            "options": options,
            "reply": reply,
            "ticket": ticket,
        }
        if isinstance(song, Upload):
            submitted = await intake.submit_upload(
                storage=self.storage,
                chunks=song.chunks,
                filename=song.filename,
                check=None if ticket is None else self._charger(ticket),
                **common,  # type: ignore[arg-type]
            )
        else:
            submitted = await intake.submit_youtube(url=song.url, **common)  # type: ignore[arg-type]
        if ticket is not None:
            await usage.remember_job(self.redis, ticket.user_id, submitted.job_id)
            if submitted.result is not None:  # no final event will follow
                await limits.release(self.redis, ticket.user_id, ticket.id)
        return Accepted(submitted.request_id, submitted.outcome, first_event(submitted))

    async def request(
        self,
        requester: Requester,
        song: Song,
        options: JobOptions,
        reply: ReplyTarget,
        *,
        reply_to: str | None = None,
    ) -> Accepted:
        """Admit, then submit: for frontends with nothing to show in between."""
        async with self.admission(requester) as ticket:
            return await self.submit(ticket, song, options, reply, reply_to=reply_to)

    async def mix(
        self,
        requester: Requester | None,
        song: JobRequest,
        stems: Sequence[str],
        fmt: AudioFormat | str | None,
        reply: ReplyTarget,
        *,
        volumes: Mapping[str, float] | None = None,
        user_id: str | None = None,
        reply_to: str | None = None,
    ) -> Accepted:
        """A custom mix of a finished ``song`` (shared.mixes): ``stems`` summed into one file
        in ``fmt`` (default: the song's), each at its ``volumes`` (percent, default 100; 0
        leaves it out), rendered from its kept master in seconds.

        Raises InvalidOption (the stems or format), MixNotReady, NoStemsToMix, MixExpired
        (the song), LimitReached (shared.mixes.admit: bans, the hour's mixes), all before
        anything is counted or queued. ``requester`` None is for frontends outside the
        limits (the CLI, tests); then ``user_id`` says who asks.
        """
        options = mixes.options(song.options, stems, fmt, volumes)
        await mixes.check_song(self.redis, song)
        user = requester.user_id if requester is not None else user_id
        if user is None:
            raise ValueError("a mix outside the limits needs a user_id")
        request = JobRequest(
            frontend=reply.frontend,
            user_id=user,
            reply_to=reply_to or stream_of(reply.frontend),
            # the song's bytes are not needed (nor, after its run, kept): the master is
            source=song.source.model_copy(update={"storage_key": None}),
            options=options,
            reply=reply,
        )
        if requester is not None:
            await mixes.admit(
                self.redis,
                self.settings,
                frontend=requester.frontend,
                user_id=user,
                request_id=request.request_id,
                scope=requester.scope,
                admin=requester.admin,
            )
        try:
            # a mix is always a render (shared.jobs): queued, cached or joined like any request
            submitted = await intake.submit_request(self.redis, self.settings, request)
        except BaseException:
            if requester is not None:
                await mixes.refund(self.redis, user, request.request_id)
            raise
        await usage.remember_job(self.redis, user, submitted.job_id)  # /forget finds its file
        return Accepted(submitted.request_id, submitted.outcome, first_event(submitted))

    def _charger(self, ticket: LimitTicket) -> intake.Check:
        """The check an upload passes once probed: its minutes fit what is left today."""
        return self.gate(_frontend_of(ticket)).charger(ticket)


def stream_of(frontend: str) -> str:
    """The Redis stream a frontend's events go to (bots.delivery reads one per platform)."""
    return keys.events(frontend)


def first_event(submitted: jobs.Submitted) -> ProgressEvent:
    """What a request shows first: queued with its position, or done from the cache."""
    if submitted.result is not None:
        return ProgressEvent(
            job_id=submitted.job_id,
            request_ids=[submitted.request_id],
            state=JobState.DONE,
            result=submitted.result,
        )
    return ProgressEvent(
        job_id=submitted.job_id,
        request_ids=[submitted.request_id],
        state=JobState.QUEUED,
        position=submitted.position,
        eta_s=submitted.eta_s,
    )


def _frontend_of(ticket: LimitTicket) -> str:
    return ticket.user_id.split(":", 1)[0]
