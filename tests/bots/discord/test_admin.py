"""/stemadmin and /forget through the real discord.py client, against the fake Discord."""

from __future__ import annotations

import copy
import re
import time
from pathlib import Path
from typing import Any, cast

import aiohttp
import discord
import pytest

from shared import gate, jobs, limits, stats
from shared.gate import Gate, LimitReached
from shared.schemas import (
    DiscordReply,
    JobRequest,
    JobState,
    LimitTicket,
    Source,
)
from tests.bots.discord.conftest import BotRunner
from tests.bots.discord.fake_discord import (
    EPHEMERAL,
    GUILD_ID,
    OTHER_ID,
    USER_ID,
    FakeDiscord,
    user,
)
from tests.bots.discord.test_flows import VIDEO
from tests.bots.discord.test_stem import buttons, description, is_over, wav
from tests.shared.test_forget import ask as ask_core
from tests.support.seeding import finished_requests
from tests.support.service import Service

MANAGE = discord.Permissions(manage_guild=True).value
ADMINISTRATOR = discord.Permissions(administrator=True).value
OWNER_ID = 700000000000000042
SCOPE = f"discord:guild:{GUILD_ID}"
NOT_MANAGER = "❌ You need the **Manage Server** permission to use /stemadmin."
OWNERS_ONLY = "❌ Only the bot's owners can act on the global limits, bans and stats."
TARGET = user(OTHER_ID, "user6")
SUBCOMMANDS: list[tuple[str, dict[str, Any]]] = [
    ("limits", {}),
    ("set", {"key": "jobs_per_hour", "value": 1}),
    ("reset", {"key": "jobs_per_hour"}),
    ("ban", {"user": TARGET, "reason": "spam"}),
    ("unban", {"user": TARGET}),
    ("queue", {}),
    ("stats", {"days": 3}),
    ("audit", {}),
]


async def reply(api: FakeDiscord, payload: dict[str, Any]) -> dict[str, Any]:
    """The private embed the bot answered an interaction with."""
    token = payload["token"]

    def answered(a: FakeDiscord) -> dict[str, Any] | None:
        for call in a.calls_to("POST", f"/interactions/{payload['id']}/{token}/callback"):
            if call.json["type"] == 4:
                return dict(call.json["data"])
        return None

    data = await api.wait_for(answered)
    assert int(data.get("flags") or 0) & EPHEMERAL, data
    return dict(data["embeds"][0])


async def admin(
    bot: BotRunner,
    api: FakeDiscord,
    sub: str,
    *,
    perms: int = MANAGE,
    uid: int = USER_ID,
    **opts: Any,
) -> str:
    """The answer (embed description) to one /stemadmin subcommand."""
    payload = bot.feed(
        api.interaction(
            2, api.slash("stemadmin", sub, **opts), user_id=uid, member_permissions=perms
        )
    )
    return str((await reply(api, payload))["description"])


async def test_the_commands_discord_gets(
    bot: BotRunner, api: FakeDiscord, service: Service
) -> None:
    await bot.start()
    [sync] = api.calls_to("PUT", "/commands")
    synced = cast(list[dict[str, Any]], sync.json)  # a PUT of the whole list
    commands = {c["name"]: c for c in synced}
    group = commands["stemadmin"]
    assert group["default_member_permissions"] == MANAGE  # shown to managers only
    assert group["contexts"] == [0]  # servers only
    assert [o["name"] for o in group["options"]] == [s for s, _ in SUBCOMMANDS]
    assert commands["forget"].get("default_member_permissions") is None  # for everyone


@pytest.mark.parametrize(("sub", "options"), SUBCOMMANDS, ids=[s for s, _ in SUBCOMMANDS])
async def test_members_without_manage_server_are_refused(
    bot: BotRunner, api: FakeDiscord, service: Service, sub: str, options: dict[str, Any]
) -> None:
    await bot.start()
    assert await admin(bot, api, sub, perms=0, **options) == NOT_MANAGER
    if sub != "queue":  # a server's managers have no say over the global ones
        global_ = await admin(bot, api, sub, perms=MANAGE, scope="global", **options)
        assert global_ == OWNERS_ONLY
    assert await service.redis.keys("stembot:limits:*") == []
    assert await limits.audit_log(service.redis) == []


async def test_managers_set_and_reset_this_servers_limits(
    bot: BotRunner, api: FakeDiscord, service: Service
) -> None:
    await bot.start()
    redis, defaults = service.redis, gate.defaults(service.settings)
    assert await admin(bot, api, "set", key="jobs_per_hour", value=2) == (
        "✅ **jobs_per_hour** is now **2** in this server (was 5). It applies to new requests "
        "at once."
    )
    assert (await limits.effective(redis, defaults, SCOPE)).jobs_per_hour == 2
    assert (await limits.effective(redis, defaults, None)).jobs_per_hour == 5
    [entry] = await limits.audit_log(redis)
    assert (entry.actor, entry.action, entry.scope, entry.key, entry.new) == (
        f"discord:{USER_ID}",
        "set",
        SCOPE,
        "jobs_per_hour",
        "2",
    )
    answer = await admin(bot, api, "set", perms=ADMINISTRATOR, key="daily_minutes", value=0)
    assert answer.startswith("✅ **daily_minutes** is now **no limit** in this server (was 60).")
    payload = bot.feed(
        api.interaction(2, api.slash("stemadmin", "limits"), member_permissions=MANAGE)
    )
    shown = await reply(api, payload)
    assert shown["title"] == "Limits in this server"
    assert shown["description"] == (
        "```\n"
        "jobs_per_hour         2  this server\n"
        "active_jobs           1  default\n"
        "daily_minutes  no limit  this server\n"
        "queue_cap            50  default\n"
        "mixes_per_hour       30  default\n"
        "```\nChange one: `/stemadmin set` · back to the default: `/stemadmin reset`"
    )
    assert await admin(bot, api, "set", key="jobs_per_hour", value=5000) == (
        "❌ jobs_per_hour must be a whole number from 0 to 1000 (0 = unlimited); got '5000'."
    )
    assert await admin(bot, api, "reset", key="jobs_per_hour") == (
        "✅ **jobs_per_hour** is back to **5** in this server (the default)."
    )
    assert await limits.overrides(redis, SCOPE) == {"daily_minutes": 0}
    assert len(await limits.audit_log(redis)) == 3


async def test_owners_set_the_global_limits_from_any_server(
    bot: BotRunner, api: FakeDiscord, service: Service
) -> None:
    await bot.start(discord_owner_ids=[OWNER_ID])
    owner = {"uid": OWNER_ID, "perms": 0}
    assert await admin(bot, api, "set", key="queue_cap", value=20, scope="global", **owner) == (
        "✅ **queue_cap** is now **20** globally (was 50). It applies to new requests at once."
    )
    assert (await limits.effective(service.redis, limits.Limits(), SCOPE)).queue_cap == 20
    assert await admin(bot, api, "set", key="active_jobs", value=2, **owner) == (
        "✅ **active_jobs** is now **2** in this server (was 1). It applies to new requests at "
        "once."
    )
    assert await admin(bot, api, "reset", key="queue_cap", scope="global", **owner) == (
        "✅ **queue_cap** is back to **50** globally (the default)."
    )


async def test_bans_here_or_everywhere(bot: BotRunner, api: FakeDiscord, service: Service) -> None:
    await bot.start(discord_owner_ids=[OWNER_ID])
    redis, target = service.redis, f"discord:{OTHER_ID}"
    assert await admin(bot, api, "ban", user=TARGET, reason="spam") == (
        f"🚫 <@{OTHER_ID}> is banned in this server."
    )
    # their next request here is refused at once, elsewhere not
    with pytest.raises(LimitReached) as refused:
        await Gate(redis, service.settings, "discord").admit(target, scope=SCOPE)
    assert refused.value.user_message == "You are banned from using this bot."
    assert not await limits.is_banned(redis, target, "discord:guild:1")
    assert await admin(bot, api, "unban", user=TARGET) == (
        f"✅ <@{OTHER_ID}> is no longer banned in this server."
    )
    assert await admin(bot, api, "unban", user=TARGET) == (
        f"<@{OTHER_ID}> was not banned in this server."
    )
    owner = {"uid": OWNER_ID, "perms": 0}
    assert await admin(bot, api, "ban", user=TARGET, scope="global", **owner) == (
        f"🚫 <@{OTHER_ID}> is banned everywhere."
    )
    assert await limits.is_banned(redis, target, "discord:guild:1")
    answer = await admin(bot, api, "audit", scope="global", **owner)
    lines = answer.removeprefix("```\n").removesuffix("\n```").split("\n")
    assert [line[17:] for line in lines] == [
        f"discord:{OWNER_ID} ban {target} [global]",
        f"discord:{USER_ID} unban {target} [{SCOPE}]",
        f"discord:{USER_ID} unban {target} [{SCOPE}]",
        f"discord:{USER_ID} ban {target} (spam) [{SCOPE}]",
    ]
    [entry] = [e for e in await limits.audit_log(redis) if e.actor == f"discord:{OWNER_ID}"]
    assert lines[0][:16] == time.strftime("%Y-%m-%d %H:%M", time.gmtime(entry.at))
    here = await admin(bot, api, "audit")
    assert len(here.split("\n")) == 3 + 2  # this server's three changes, in a code block


async def test_audit_with_nothing_yet(bot: BotRunner, api: FakeDiscord, service: Service) -> None:
    await bot.start()
    payload = bot.feed(
        api.interaction(2, api.slash("stemadmin", "audit"), member_permissions=MANAGE)
    )
    shown = await reply(api, payload)
    assert (shown["title"], shown["description"]) == (
        "Latest changes in this server",
        "No changes yet.",
    )


async def test_queue_shows_this_servers_songs(
    bot: BotRunner, api: FakeDiscord, service: Service
) -> None:
    settings = copy.deepcopy(service.settings)
    settings.redis.queue_name = "test:queue:nobody"  # no worker takes it: songs wait
    await bot.start(settings)
    assert await admin(bot, api, "queue") == "Nothing is waiting or in progress."
    for title, scope, identity in [("Ours", SCOPE, "a"), ("Elsewhere", "discord:guild:1", "b")]:
        request = JobRequest(
            frontend="discord",
            user_id="discord:1",
            reply_to="test:events",
            source=Source(kind="upload", identity=identity * 64, title=title),
            options=service.options(),
            reply=DiscordReply(channel_id=1, message_id=1, user_id=1, title=title),
            ticket=LimitTicket(user_id="discord:1", scope=scope),
        )
        await jobs.submit(service.redis, request, queue_name=settings.redis.queue_name)
    assert await admin(bot, api, "queue") == (
        "```\n#1 · queued · htdemucs · Ours\n#2 · queued · htdemucs · (another server or chat)\n```"
    )


async def test_stats_by_day(bot: BotRunner, api: FakeDiscord, service: Service) -> None:
    await bot.start()
    await finished_requests(
        service.redis,
        service.options(),
        lambda i: DiscordReply(channel_id=1, message_id=1, user_id=i, title="x"),
        [
            (SCOPE, JobState.DONE, None),
            (SCOPE, JobState.CANCELLED, None),
            ("", JobState.FAILED, "x"),
        ],
    )
    today = stats.day_of(time.time())
    payload = bot.feed(
        api.interaction(2, api.slash("stemadmin", "stats", days=1), member_permissions=MANAGE)
    )
    shown = await reply(api, payload)
    assert shown["title"] == "Stats for today in this server (UTC)"
    assert shown["description"] == (
        "```\n"
        "day         done failed cancel  minutes\n"
        f"{today}     1      0      1      0.0\n"
        "total          1      0      1      0.0\n"
        "```"
    )
    assert await admin(bot, api, "stats", days=0) == (
        "❌ days must be a whole number from 1 to 90; got '0'."
    )


def zip_url(message: dict[str, Any] | None) -> str:
    found = re.search(r"\*\*\[All stems \(zip\)\]\(([^)]+)\)\*\*", description(message))
    assert found, description(message)
    return found[1]


async def status_code(url: str) -> int:
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        return response.status


async def ask_forget(bot: BotRunner, api: FakeDiscord, **who: Any) -> dict[str, Any]:
    """/forget; returns the private question with its buttons."""
    payload = bot.feed(api.interaction(2, api.slash("forget"), **who))
    shown = await reply(api, payload)
    assert shown["description"] == (
        "This deletes what I keep about you: your history and the stems of the songs only you "
        "asked for. Songs someone else asked for too are kept until they expire. Bans and the "
        "admins' change log are kept."
    )
    question = api.original(payload["token"])
    assert question is not None
    assert buttons(question) == [f"stembot:forget:{USER_ID}:yes", f"stembot:forget:{USER_ID}:no"]
    return question


def press(api: FakeDiscord, message: dict[str, Any], choice: str, **who: Any) -> dict[str, Any]:
    custom_id = next(b for b in buttons(message) if b.endswith(choice))
    return api.interaction(3, api.button(custom_id), message=message, **who)


async def test_forget_deletes_history_and_unshared_stems(
    bot: BotRunner, api: FakeDiscord, service: Service, tmp_path: Path
) -> None:
    await bot.start()
    redis = service.redis
    results = {}
    for name, seconds in [("Solo", 2.0), ("Duet", 2.5)]:
        file = api.attachment(f"{name}.wav", wav(tmp_path, seconds), "audio/wav")
        payload = bot.feed(api.interaction(2, api.stem_command(file=file)))
        token = payload["token"]
        results[name] = await api.wait_for(
            lambda a, t=token: is_over(a.original(t)) and a.original(t)
        )
        assert description(results[name]).startswith("✅ Done"), description(results[name])
    duet = tmp_path / "duet.wav"
    duet.write_bytes(wav(tmp_path, 2.5))
    await ask_core(service, duet, f"discord:{OTHER_ID}")  # someone else gets it from the cache
    solo_zip, duet_zip = zip_url(results["Solo"]), zip_url(results["Duet"])
    mine = [k for k in await redis.keys("stembot:request:*")]
    assert len(mine) == 2 and await status_code(solo_zip) == 200

    question = await ask_forget(bot, api)
    stranger = bot.feed(press(api, question, "yes", user_id=OTHER_ID))
    assert (await reply(api, stranger))["description"] == (
        "❌ Only the person who used /forget can answer it."
    )
    kept = bot.feed(press(api, question, "no"))
    await api.wait_for(lambda a: buttons(question) == [])
    assert description(question) == "Nothing was deleted."
    assert [c.json["type"] for c in api.calls_to("POST", f"/{kept['id']}/")] == [7]

    question = await ask_forget(bot, api)
    bot.feed(press(api, question, "yes"))
    await api.wait_for(lambda a: buttons(question) == [])
    assert description(question) == (
        "🗑 Done: I deleted your history (2 requests) and the stems of 1 song only you asked "
        "for. Kept: 1 song someone else asked for too (until they expire)."
    )
    assert await status_code(solo_zip) == 404
    assert await status_code(duet_zip) == 200
    assert await redis.keys("stembot:request:*") == []
    assert await redis.keys("stembot:discord:final:*") == []
    assert await redis.keys(f"*discord:{USER_ID}*") == []


async def test_forget_waits_for_songs_in_progress(
    bot: BotRunner, api: FakeDiscord, service: Service
) -> None:
    settings = copy.deepcopy(service.settings)
    settings.redis.download_queue_name = "test:download:nobody"  # the link waits
    await bot.start(settings)
    payload = bot.feed(api.interaction(2, api.stem_command(url=VIDEO)))
    await api.wait_for(lambda a: description(a.original(payload["token"])).startswith("⏳"))
    question = await ask_forget(bot, api, guild=False)
    bot.feed(press(api, question, "yes", guild=False))
    await api.wait_for(lambda a: buttons(question) == [])
    assert description(question) == (
        "❌ You have songs in progress: cancel them or wait until they are done, then use "
        "/forget again."
    )
    assert len(await service.redis.keys("stembot:request:*")) == 1
