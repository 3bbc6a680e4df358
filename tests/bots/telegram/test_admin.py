"""The admin commands and /forget through the real Application, against the fake Bot API."""

from __future__ import annotations

import copy
import html
import re
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bots.telegram.store import Prefs, Store
from shared import gate, limits, stats
from shared.schemas import (
    JobState,
    TelegramReply,
)
from tests.bots.telegram.conftest import BotRunner
from tests.bots.telegram.fake_bot_api import FakeBotApi, Shown, audio, is_final, private_chat
from tests.bots.telegram.users import BEN, GINA, GROUP, MEMBER, MO, ROOT, SCOPE
from tests.support.audio import make_audio
from tests.support.seeding import finished_requests
from tests.support.service import Service

NOT_ADMIN_GROUP = "❌ Only this group's admins and the bot's admins can use this command."
NOT_ADMIN_PRIVATE = "❌ Only the bot's admins can use this command."
LIMITS_FOOTER = "Change one: /setlimit KEY VALUE\nBack to the default: /resetlimit KEY"
ADMIN_COMMANDS = [
    "/limits",
    "/setlimit jobs_per_hour 1",
    "/resetlimit jobs_per_hour",
    "/ban 2005 spam",
    "/unban 2005",
    "/queue",
    "/stats",
    "/audit",
]


async def start(bot: BotRunner, api: FakeBotApi, service: Service | None = None) -> None:
    await bot.start(service.settings if service else None, telegram_admin_ids=[ROOT["id"]])
    api.chat_admins[GROUP["id"]] = {GINA["id"]: "creator", MO["id"]: "administrator"}


async def ask(
    api: FakeBotApi,
    chat: dict[str, Any],
    sender: dict[str, Any],
    text: str,
    reply_to: dict[str, Any] | None = None,
) -> str:
    """What the bot answers to one message."""
    sent = api.send(chat, sender, text, reply_to)
    shown = await api.wait_for(lambda: api.reply_to(sent), what=f"the answer to {text}")
    return str(shown.text)


@pytest.mark.parametrize("command", ADMIN_COMMANDS)
async def test_members_are_refused_every_admin_command(
    bot: BotRunner, api: FakeBotApi, service: Service, command: str
) -> None:
    await start(bot, api)
    assert await ask(api, GROUP, MEMBER, command) == NOT_ADMIN_GROUP
    assert await ask(api, private_chat(MEMBER), MEMBER, command) == NOT_ADMIN_PRIVATE
    # a group's admin has no say over the global limits, bans and stats
    assert await ask(api, private_chat(MO), MO, command) == NOT_ADMIN_PRIVATE
    asked = [(c.params["chat_id"], c.params["user_id"]) for c in api.of("getChatMember")]
    assert asked == [(str(GROUP["id"]), str(MEMBER["id"]))]
    assert await service.redis.keys("stembot:limits:*") == []
    assert await limits.audit_log(service.redis) == []


async def test_group_admins_set_and_reset_this_groups_limits(
    bot: BotRunner, api: FakeBotApi, service: Service
) -> None:
    await start(bot, api)
    redis, defaults = service.redis, gate.defaults(service.settings)
    assert await ask(api, GROUP, MO, "/setlimit jobs_per_hour 2") == (
        "✅ jobs_per_hour is now 2 in this group (was 5). It applies to new requests at once."
    )
    assert (await limits.effective(redis, defaults, SCOPE)).jobs_per_hour == 2
    assert (await limits.effective(redis, defaults, None)).jobs_per_hour == 5
    [entry] = await limits.audit_log(redis)
    assert (entry.actor, entry.action, entry.scope, entry.key, entry.new) == (
        "telegram:2003",
        "set",
        SCOPE,
        "jobs_per_hour",
        "2",
    )
    assert await ask(api, GROUP, GINA, "/setlimit daily_minutes 0") == (
        "✅ daily_minutes is now no limit in this group (was 60). It applies to new requests "
        "at once."
    )
    assert await ask(api, GROUP, GINA, "/limits") == (
        "Limits in this group:\n<pre>"
        "jobs_per_hour         2  this group\n"
        "active_jobs           1  default\n"
        "daily_minutes  no limit  this group\n"
        "queue_cap            50  default\n"
        "mixes_per_hour       30  default</pre>\n" + LIMITS_FOOTER
    )
    assert await ask(api, GROUP, MO, "/setlimit jobs_per_hour 5000") == (
        "❌ jobs_per_hour must be a whole number from 0 to 1000 (0 = unlimited); got '5000'."
    )
    assert await ask(api, GROUP, MO, "/setlimit speed 3") == (
        "❌ Unknown limit 'speed'. Known limits: jobs_per_hour, active_jobs, daily_minutes, "
        "queue_cap, mixes_per_hour."
    )
    assert await ask(api, GROUP, MO, "/setlimit jobs_per_hour") == (
        "Usage: /setlimit KEY VALUE, e.g. /setlimit jobs_per_hour 10\n"
        "Keys: jobs_per_hour, active_jobs, daily_minutes, queue_cap, mixes_per_hour"
    )
    assert await ask(api, GROUP, MO, "/resetlimit jobs_per_hour") == (
        "✅ jobs_per_hour is back to 5 in this group (the default)."
    )
    assert await ask(api, GROUP, MO, "/resetlimit") == (
        "Usage: /resetlimit KEY\nKeys: jobs_per_hour, active_jobs, daily_minutes, queue_cap, "
        "mixes_per_hour"
    )
    assert await limits.overrides(redis, SCOPE) == {"daily_minutes": 0}
    assert len(await limits.audit_log(redis)) == 3  # refused values wrote nothing


async def test_bot_admins_set_the_global_limits_in_private(
    bot: BotRunner, api: FakeBotApi, service: Service
) -> None:
    await start(bot, api)
    me = private_chat(ROOT)
    assert await ask(api, me, ROOT, "/setlimit queue_cap 20") == (
        "✅ queue_cap is now 20 globally (was 50). It applies to new requests at once."
    )
    assert await ask(api, GROUP, ROOT, "/setlimit active_jobs 2") == (
        "✅ active_jobs is now 2 in this group (was 1). It applies to new requests at once."
    )
    assert await ask(api, me, ROOT, "/limits") == (
        "Limits globally:\n<pre>"
        "jobs_per_hour         5  default\n"
        "active_jobs           1  default\n"
        "daily_minutes        60  default\n"
        "queue_cap            20  global\n"
        "mixes_per_hour       30  default</pre>\n" + LIMITS_FOOTER
    )
    assert await ask(api, me, ROOT, "/resetlimit queue_cap") == (
        "✅ queue_cap is back to 50 globally (the default)."
    )
    assert api.of("getChatMember") == []  # a bot admin's rights need no lookup
    scoped = [c for c in api.of("setMyCommands") if c.params.get("scope")]
    [menu] = [c for c in scoped if "language_code" not in c.params]  # the English one
    assert len(scoped) == 6  # and one in each other language
    assert menu.params["scope"] == {"type": "chat", "chat_id": ROOT["id"]}
    names = [c["command"] for c in menu.params["commands"]]
    assert names[-9:] == [
        "limits",
        "setlimit",
        "resetlimit",
        "ban",
        "unban",
        "queue",
        "stats",
        "audit",
        "forget",
    ]
    for public in [c for c in api.of("setMyCommands") if not c.params.get("scope")]:
        assert "setlimit" not in [c["command"] for c in public.params["commands"]]


async def test_bans_in_a_group_and_everywhere(
    bot: BotRunner, api: FakeBotApi, service: Service, tmp_path: Path
) -> None:
    await start(bot, api)
    redis = service.redis
    await Store(redis).set_pref(MEMBER["id"], "mode", "4")
    song = api.send(GROUP, MEMBER, None, audio=audio(api, make_audio(tmp_path / "Loud.mp3")))
    assert await ask(api, GROUP, MO, "/ban flooding", reply_to=song) == (
        "🚫 User 2004 is banned in this group."
    )
    assert await limits.is_banned(redis, "telegram:2004", SCOPE)
    assert not await limits.is_banned(redis, "telegram:2004", None)
    # her next song in this group is refused at once
    sent = api.send(GROUP, MEMBER, "/stem", reply_to=song)
    status = await api.wait_for(lambda: api.reply_to(sent), what="the status message")
    await api.wait_for(lambda: is_final(status), what="the refusal")
    assert status.text == "🎵 Loud\n❌ You are banned from using this bot."
    assert await ask(api, GROUP, MO, "/unban 2004") == (
        "✅ User 2004 is no longer banned in this group."
    )
    assert await ask(api, GROUP, MO, "/unban 2004") == "User 2004 was not banned in this group."
    assert await ask(api, private_chat(ROOT), ROOT, "/ban 2004 abuse") == (
        "🚫 User 2004 is banned everywhere."
    )
    assert await limits.is_banned(redis, "telegram:2004", None)
    usage_text = "Usage: /ban USER_ID [reason], or reply to their message with /ban [reason]"
    assert await ask(api, GROUP, MO, "/ban") == usage_text
    assert await ask(api, GROUP, MO, "/ban ana") == usage_text
    assert await ask(api, GROUP, MO, "/unban") == (
        "Usage: /unban USER_ID, or reply to their message with /unban"
    )
    lines = [admin_line[17:] for admin_line in await audit_lines(api, GROUP, GINA)]
    assert lines == [
        "telegram:2003 unban telegram:2004",
        "telegram:2003 unban telegram:2004",
        "telegram:2003 ban telegram:2004 (flooding)",
    ]
    lines = [line[17:] for line in await audit_lines(api, private_chat(ROOT), ROOT)]
    assert lines[0] == "telegram:2001 ban telegram:2004 (abuse) [global]"
    assert lines[-1] == f"telegram:2003 ban telegram:2004 (flooding) [{SCOPE}]"


async def audit_lines(api: FakeBotApi, chat: dict[str, Any], sender: dict[str, Any]) -> list[str]:
    """The lines of /audit, each checked to start with the UTC minute of a change."""
    answer = await ask(api, chat, sender, "/audit")
    where = "in this group" if chat["type"] != "private" else "everywhere"
    head = f"Latest changes {where}:\n<pre>"
    assert answer.startswith(head) and answer.endswith("</pre>"), answer
    lines = answer.removeprefix(head).removesuffix("</pre>").split("\n")
    for line in lines:
        time.strptime(line[:16], "%Y-%m-%d %H:%M")
    return lines


async def test_audit_with_nothing_yet(bot: BotRunner, api: FakeBotApi, service: Service) -> None:
    await start(bot, api)
    assert await ask(api, GROUP, GINA, "/audit") == "No changes in this group yet."
    await ask(api, GROUP, MO, "/setlimit queue_cap 9")
    [line] = await audit_lines(api, GROUP, GINA)
    [entry] = await limits.audit_log(service.redis)
    assert line == time.strftime("%Y-%m-%d %H:%M", time.gmtime(entry.at)) + (
        " telegram:2003 set queue_cap - → 9"
    )


async def test_queue_and_forget_while_a_song_waits(
    bot: BotRunner, api: FakeBotApi, service: Service, tmp_path: Path
) -> None:
    settings = copy.deepcopy(service.settings)
    settings.redis.queue_name = "test:queue:nobody"  # no worker takes it: songs wait
    await bot.start(settings, telegram_admin_ids=[ROOT["id"]])
    api.chat_admins[GROUP["id"]] = {MO["id"]: "administrator"}
    assert await ask(api, GROUP, MO, "/queue") == "Nothing is waiting or in progress."
    for sender, chat, name, seconds in [
        (MEMBER, GROUP, "Band Song", 2.0),
        (BEN, private_chat(BEN), "Private Song", 2.5),
    ]:
        await Store(service.redis).set_pref(sender["id"], "mode", "4")
        song = make_audio(tmp_path / f"{name}.mp3", seconds=seconds)
        sent = api.send(chat, sender, None, audio=audio(api, song))
        if chat is GROUP:  # in a group, /stem as a reply to the song
            sent = api.send(chat, sender, "/stem", reply_to=sent)
        status = await api.wait_for(lambda s=sent: api.reply_to(s), what="the status")
        await api.wait_for(lambda s=status: "In the queue" in (s.text or ""), what="queued")
    assert await ask(api, GROUP, MO, "/queue") == (
        "Songs waiting or in progress: 2\n<pre>"
        "#1 · queued · htdemucs · Band Song\n"
        "#2 · queued · htdemucs · (another chat)</pre>"
    )
    assert await ask(api, private_chat(ROOT), ROOT, "/queue") == (
        "Songs waiting or in progress: 2\n<pre>"
        "#1 · queued · htdemucs · Band Song\n"
        "#2 · queued · htdemucs · Private Song</pre>"
    )
    question = await forget_question(api, private_chat(BEN), BEN)
    api.press(BEN, question, "Delete my data")
    await api.wait_for(lambda: question.markup is None, what="the answer")
    assert question.text == (
        "❌ You have songs in progress: /cancel them or wait until they are done, then send "
        "/forget again."
    )
    assert (await Store(service.redis).prefs(BEN["id"])).mode == "4"  # nothing deleted


async def forget_question(api: FakeBotApi, chat: dict[str, Any], sender: dict[str, Any]) -> Shown:
    sent = api.send(chat, sender, "/forget")
    question = await api.wait_for(lambda: api.reply_to(sent), what="the question")
    assert question.text == (
        "This deletes what I keep about you: your settings, your history and the stems of the "
        "songs only you asked for. Songs someone else asked for too are kept until they "
        "expire. Bans and the admins' change log are kept."
    )
    assert question.buttons == ["Delete my data", "Keep it"]
    return question


async def test_stats_by_day(bot: BotRunner, api: FakeBotApi, service: Service) -> None:
    await start(bot, api)
    now = time.time()
    await finished_requests(
        service.redis,
        service.options(),
        lambda i: TelegramReply(chat_id=-1, message_id=1, user_id=i, title="x"),
        [
            (SCOPE, JobState.DONE, None),
            (SCOPE, JobState.FAILED, "too_long"),
            ("", JobState.FAILED, "x"),
        ],
    )
    today, yesterday = stats.day_of(now), stats.day_of(now - 86400)
    assert await ask(api, GROUP, MO, "/stats 2") == (
        "Stats for the last 2 days in this group (UTC):\n<pre>"
        "day         done failed cancel  minutes\n"
        f"{today}     1      1      0      0.0\n"
        f"{yesterday}     0      0      0      0.0\n"
        "total          1      1      0      0.0\n"
        "failures: too_long 1</pre>"
    )
    answer = await ask(api, private_chat(ROOT), ROOT, "/stats")
    assert answer.startswith("Stats for the last 7 days globally (UTC):\n<pre>")
    assert "total          1      2      0      0.0\nfailures: too_long 1, x 1</pre>" in answer
    assert await ask(api, GROUP, MO, "/stats 0") == (
        "❌ days must be a whole number from 1 to 90; got '0'."
    )


async def test_forget_deletes_settings_history_and_unshared_stems(
    bot: BotRunner, api: FakeBotApi, service: Service, tmp_path: Path
) -> None:
    await start(bot, api)
    redis, store = service.redis, Store(service.redis)
    await store.set_pref(MEMBER["id"], "lang", "en")  # a language chosen in /settings
    duet = make_audio(tmp_path / "Duet.mp3", seconds=2.5)
    done: dict[tuple[int, str], Shown] = {}
    for sender, path in [(MEMBER, make_audio(tmp_path / "Solo.mp3")), (MEMBER, duet), (BEN, duet)]:
        await store.set_pref(sender["id"], "mode", "4")
        sent = api.send(private_chat(sender), sender, None, audio=audio(api, path))
        status = await api.wait_for(lambda s=sent: api.reply_to(s), what="the status")
        await api.wait_for(lambda s=status: is_final(s), within=60, what="the links")
        assert (status.text or "").startswith("✅ Done"), status.text
        done[(sender["id"], path.stem)] = status
    solo_zip = zip_link(done[(MEMBER["id"], "Solo")])
    duet_zip = zip_link(done[(BEN["id"], "Duet")])
    assert await status_code(solo_zip) == await status_code(duet_zip) == 200
    links_before = await redis.keys("stembot:telegram:message:*")
    finals_before = await redis.keys("stembot:telegram:final:*")

    question = await forget_question(api, GROUP, MEMBER)
    query = api.press(BEN, question, "Delete my data")
    await api.wait_for(lambda: api.toasts(query), what="Ben's answer")
    assert api.toasts(query) == ["Only the person who sent /forget can do that."]
    api.press(MEMBER, question, "Keep it")
    await api.wait_for(lambda: question.markup is None, what="the answer")
    assert question.text == "Nothing was deleted."
    assert (await store.prefs(MEMBER["id"])).mode == "4"

    question = await forget_question(api, GROUP, MEMBER)
    api.press(MEMBER, question, "Delete my data")
    await api.wait_for(lambda: question.markup is None, what="the answer")
    assert question.text == (
        "🗑 Done: I deleted your settings, your history (2 requests) and the stems of 1 song "
        "only you asked for. Kept: 1 song someone else asked for too (until they expire)."
    )
    assert await store.prefs(MEMBER["id"]) == Prefs()
    assert await store.prefs(BEN["id"]) != Prefs()
    assert await status_code(solo_zip) == 404
    assert await status_code(duet_zip) == 200
    assert await redis.keys("stembot:telegram:*2004*") == []
    assert await redis.keys("*telegram:2004*") == []
    left = await redis.keys("stembot:telegram:message:*")
    assert len(left) == len(links_before) - 2  # Ana's two status messages no longer lead anywhere
    assert len(await redis.keys("stembot:telegram:final:*")) == len(finals_before) - 2


def zip_link(status: Shown) -> str:
    found = re.search(r'<a href="([^"]+)">all stems \(zip\)</a>', status.text or "")
    assert found, status.text
    return html.unescape(found[1])


async def status_code(url: str) -> int:
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        return response.status
