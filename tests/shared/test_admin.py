"""The platform-neutral admin core against a real Redis: rights, limits, bans, queue, audit."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from arq.connections import ArqRedis, RedisSettings, create_pool
from redis.asyncio import Redis

from shared import admin, jobs, limits, stats
from shared.admin import Actor, NotAllowed
from shared.config import Settings
from shared.errors import InvalidOption
from shared.gate import Gate, LimitReached
from shared.redis_server import PrivateRedis
from shared.schemas import DiscordReply, JobOptions, JobRequest, LimitTicket, Source

GUILD = "discord:guild:1"
OTHER_GUILD = "discord:guild:2"
MEMBER = Actor("discord:10", GUILD)
MANAGER = Actor("discord:11", GUILD, scope_admin=True)
OTHER_MANAGER = Actor("discord:12", OTHER_GUILD, scope_admin=True)
OWNER = Actor("discord:13", GUILD, bot_admin=True)
OWNER_IN_PRIVATE = Actor("telegram:14", None, bot_admin=True)
STRANGER_IN_PRIVATE = Actor("telegram:15", None)


@pytest.fixture
def settings(redis_server: PrivateRedis) -> Settings:
    return Settings(
        redis_url=redis_server.url,
        queue_name="test:admin:separate",
        download_queue_name="test:admin:download",
        jobs_per_hour=5,
    )


@pytest.mark.parametrize(
    ("actor", "global_", "expected"),
    [
        (MEMBER, False, "not_admin"),
        (MEMBER, True, "not_admin"),
        (MANAGER, True, "global"),
        (STRANGER_IN_PRIVATE, False, "not_admin"),
        (MANAGER, False, GUILD),
        (OWNER, False, GUILD),
        (OWNER, True, None),
        (OWNER_IN_PRIVATE, False, None),
    ],
)
def test_who_may_act_where(actor: Actor, global_: bool, expected: str | None) -> None:
    if expected in ("not_admin", "global"):
        with pytest.raises(NotAllowed) as refused:
            admin.target(actor, global_=global_)
        assert refused.value.reason == expected
        assert refused.value.user_message == admin.REASONS[refused.value.reason]
    else:
        assert admin.target(actor, global_=global_) == expected


async def test_a_server_limit_applies_to_the_next_request_and_is_audited(
    redis: Redis, settings: Settings
) -> None:
    with pytest.raises(NotAllowed):
        await admin.set_limit(redis, settings, MEMBER, "jobs_per_hour", "1")
    changed = await admin.set_limit(redis, settings, MANAGER, "jobs_per_hour", " 1 ")
    assert (changed.scope, changed.old.value, changed.old.source) == (GUILD, 5, "default")
    assert (changed.new.value, changed.new.source) == (1, "scope")

    gate = Gate(redis, settings, "test")
    ticket = await gate.admit("discord:99", scope=GUILD)
    await limits.release(redis, "discord:99", ticket.id)  # the song ended
    with pytest.raises(LimitReached) as refused:
        await gate.admit("discord:99", scope=GUILD)
    assert refused.value.user_message == "You can start 1 song an hour. Try again in 1 h."
    await gate.admit("discord:99", scope=OTHER_GUILD)  # other servers keep the default

    [entry] = await limits.audit_log(redis)
    assert (entry.actor, entry.action, entry.scope, entry.key) == (
        "discord:11",
        "set",
        GUILD,
        "jobs_per_hour",
    )
    assert (entry.old, entry.new) == ("", "1")


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        (
            "jobs_per_hour",
            "5000",
            "jobs_per_hour must be a whole number from 0 to 1000 (0 = unlimited); got '5000'.",
        ),
        ("active_jobs", "two", "active_jobs must be a whole number from 1 to 100; got 'two'."),
        (
            "speed",
            "3",
            "Unknown limit 'speed'. Known limits: jobs_per_hour, active_jobs, daily_minutes, "
            "queue_cap, mixes_per_hour.",
        ),
    ],
)
async def test_invalid_values_are_refused_and_nothing_changes(
    redis: Redis, settings: Settings, key: str, value: str, message: str
) -> None:
    with pytest.raises(InvalidOption) as refused:
        await admin.set_limit(redis, settings, MANAGER, key, value)
    assert refused.value.user_message == message
    assert await limits.overrides(redis, GUILD) == {}
    assert await limits.audit_log(redis) == []


async def test_layers_sources_and_reset(redis: Redis, settings: Settings) -> None:
    with pytest.raises(NotAllowed) as refused:
        await admin.set_limit(redis, settings, MANAGER, "queue_cap", "20", global_=True)
    assert refused.value.reason == "global"
    await admin.set_limit(redis, settings, OWNER, "queue_cap", "20", global_=True)
    await admin.set_limit(redis, settings, MANAGER, "daily_minutes", "0")
    view = await admin.show_limits(redis, settings, MANAGER)
    assert admin.limits_table(view, "this server") == (
        "jobs_per_hour         5  default\n"
        "active_jobs           1  default\n"
        "daily_minutes  no limit  this server\n"
        "queue_cap            20  global\n"
        "mixes_per_hour       30  default"
    )
    changed = await admin.reset_limit(redis, settings, MANAGER, "daily_minutes")
    assert (changed.old.shown, changed.new.value, changed.new.source) == ("no limit", 60, "default")
    changed = await admin.reset_limit(redis, settings, OWNER_IN_PRIVATE, "queue_cap")
    assert (changed.scope, changed.new.value, changed.new.source) == (None, 50, "default")
    assert (await limits.effective(redis, limits.Limits(), GUILD)).queue_cap == 50
    with pytest.raises(InvalidOption, match="Unknown limit 'speed'"):
        await admin.reset_limit(redis, settings, MANAGER, "speed")


async def test_bans_here_or_everywhere(redis: Redis, settings: Settings) -> None:
    with pytest.raises(NotAllowed):
        await admin.ban(redis, MEMBER, "discord:50")
    assert await admin.ban(redis, MANAGER, "discord:50", "spam") == GUILD
    assert await limits.is_banned(redis, "discord:50", GUILD)
    assert not await limits.is_banned(redis, "discord:50", OTHER_GUILD)
    assert await admin.ban(redis, OWNER, "discord:51", global_=True) is None
    assert await limits.is_banned(redis, "discord:51", OTHER_GUILD)
    assert await admin.unban(redis, MANAGER, "discord:50") == (GUILD, True)
    assert await admin.unban(redis, MANAGER, "discord:50") == (GUILD, False)
    assert not await limits.is_banned(redis, "discord:50", GUILD)

    scope, entries = await admin.audit(redis, MANAGER)
    assert scope == GUILD
    lines = [admin.audit_line(e, with_scope=False)[17:] for e in entries]
    assert lines == [
        "discord:11 unban discord:50",
        "discord:11 unban discord:50",
        "discord:11 ban discord:50 (spam)",
    ]
    _, everything = await admin.audit(redis, OWNER_IN_PRIVATE)
    assert admin.audit_line(everything[2], with_scope=True)[17:] == (
        "discord:13 ban discord:51 [global]"
    )
    with pytest.raises(NotAllowed):
        await admin.audit(redis, MEMBER)


def waiting_request(title: str, scope: str, identity: str, user: str) -> JobRequest:
    return JobRequest(
        frontend="discord",
        user_id=user,
        reply_to="test:events",
        source=Source(kind="upload", identity=identity * 64, title=title, storage_key="uploads/x"),
        options=JobOptions(model="htdemucs_ft"),
        reply=DiscordReply(channel_id=1, message_id=1, user_id=1, title=title),
        ticket=LimitTicket(user_id=user, scope=scope),
    )


@pytest.fixture
async def arq(redis_server: PrivateRedis) -> AsyncIterator[ArqRedis]:
    pool = await create_pool(RedisSettings.from_dsn(redis_server.url))
    await pool.flushall()
    yield pool
    await pool.aclose()


async def test_queue_shows_titles_of_this_server_only(arq: ArqRedis, settings: Settings) -> None:
    for title, scope, identity, user in [
        ("Ours", GUILD, "a", "discord:20"),
        ("Theirs", OTHER_GUILD, "b", "discord:21"),
        ("Ours", GUILD, "a", "discord:22"),  # joins the first run
    ]:
        await jobs.submit(
            arq,
            waiting_request(title, scope, identity, user),
            queue_name=settings.redis.queue_name,
        )
    link = waiting_request("abc", GUILD, "c", "discord:23").model_copy(
        update={"source": Source(kind="youtube", identity="dQw4w9WgXcQ", title="dQw4w9WgXcQ")}
    )
    await jobs.submit(
        arq,
        link,
        queue_name=settings.redis.queue_name,
        download_queue=settings.redis.download_queue_name,
    )
    # nobody works these queues: every run waits
    mine = await admin.queue(arq, settings, MANAGER)
    assert [admin.queue_line(e, "(another server)") for e in mine] == [
        "#1 · queued for download · htdemucs_ft · dQw4w9WgXcQ",
        "#1 · queued · htdemucs_ft · Ours (2 waiting)",
        "#2 · queued · htdemucs_ft · (another server)",
    ]
    theirs = await admin.queue(arq, settings, OTHER_MANAGER)
    assert [e.title for e in theirs] == [None, None, "Theirs"]
    everything = await admin.queue(arq, settings, OWNER_IN_PRIVATE)
    assert [e.title for e in everything] == ["dQw4w9WgXcQ", "Ours", "Theirs"]
    with pytest.raises(NotAllowed):
        await admin.queue(arq, settings, MEMBER)


@pytest.mark.parametrize(("raw", "days"), [(None, 7), ("", 7), ("30", 30), (" 1 ", 1), (90, 90)])
def test_parse_days(raw: str | int | None, days: int) -> None:
    assert admin.parse_days(raw) == days


@pytest.mark.parametrize("raw", ["0", "91", "-3", "week"])
def test_parse_days_refuses(raw: str) -> None:
    with pytest.raises(InvalidOption) as refused:
        admin.parse_days(raw)
    assert refused.value.user_message == f"days must be a whole number from 1 to 90; got {raw!r}."


async def test_stats_table(redis: Redis, settings: Settings) -> None:
    days = [
        stats.Day("2025-03-11", done=2, minutes=7.5),
        stats.Day("2025-03-10", failed=1, cancelled=1, failures={"too_long": 1}),
    ]
    assert admin.stats_table(days) == (
        "day         done failed cancel  minutes\n"
        "2025-03-11     2      0      0      7.5\n"
        "2025-03-10     0      1      1      0.0\n"
        "total          2      1      1      7.5\n"
        "failures: too_long 1"
    )
    scope, recent = await admin.day_stats(redis, MANAGER, 3)
    assert scope == GUILD and len(recent) == 3
    with pytest.raises(NotAllowed):
        await admin.day_stats(redis, MANAGER, 3, global_=True)
