"""Discord's 429s reach delivery's pacing: real 429 responses from the fake Discord.

Two HTTP paths in discord.py: the bot's REST client (channel edits, after the interaction
token's 15 minutes or a restart) sleeps through a 429 itself unless the wait is longer than
the client's ``max_ratelimit_timeout`` (RATE_LIMIT_WAIT_S; discord.py accepts no less than
30 s), when it raises RateLimited. Its webhook adapter (interaction-token edits) sleeps through
Discord's 429s, per token, i.e. per message, without a limit. A 429 without Discord's body
(Cloudflare's) raises HTTPException on both paths. Delivery sees the last two and holds the
channel back for the wait Discord asked for. The REST test lowers the client's threshold to
0.5 s so that a 1 s wait takes the RateLimited path without a 30 s test.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from bots.discord.app import RATE_LIMIT_WAIT_S
from tests.bots.discord.conftest import BotRunner
from tests.bots.discord.fake_discord import CHANNEL_ID, Call, FakeDiscord
from tests.bots.discord.test_flows import press, queued_youtube
from tests.bots.discord.test_stem import description, is_over, wav
from tests.support.service import Service

WAIT_S = 1.0
PAUSED = f"rate limited: waiting {WAIT_S:.1f} s before writing to a chat"


def shows(call: Call, prefix: str) -> bool:
    embeds = call.json.get("embeds") or [{}]
    return str(embeds[0].get("description", "")).startswith(prefix)


def retry_of(api: FakeDiscord, limited: Call) -> Call:
    """The next edit of the rate-limited message."""
    return next(c for c in api.calls if c.path == limited.path and c.at > limited.at)


def delivery_log(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "bots.delivery"]


async def song(api: FakeDiscord, bot: BotRunner, tmp_path: Path) -> dict[str, Any]:
    file = api.attachment("Paced.wav", wav(tmp_path), "audio/wav")
    payload = bot.feed(api.interaction(2, api.stem_command(file=file)))
    token = payload["token"]
    status = await api.wait_for(lambda a: is_over(a.original(token)) and a.original(token))
    assert description(status).startswith("✅ Done! Download your stems:")
    return payload


async def test_a_long_rate_limit_on_a_channel_edit_holds_the_channel_back(
    bot: BotRunner, api: FakeDiscord, service: Service, caplog: pytest.LogCaptureFixture
) -> None:
    payload = await queued_youtube(bot, api, service)
    assert bot.bot.http.max_ratelimit_timeout == RATE_LIMIT_WAIT_S  # long waits surface
    bot.bot.http.max_ratelimit_timeout = 0.5  # a 1 s wait is "long" here
    status = api.original(payload["token"])
    assert status is not None
    api.expired_tokens.add(payload["token"])  # edits go through the channel
    api.rate_limits, api.rate_limit_s = 1, WAIT_S
    api.rate_limit_when = lambda call: call.path.startswith(f"/channels/{CHANNEL_ID}/")
    caplog.set_level(logging.INFO, logger="bots.delivery")
    bot.feed(press(api, status))  # the requester cancels: an edit is due
    message_id = int(status["id"])
    await api.wait_for(lambda a: is_over(a.messages[message_id]))
    [limited] = api.limited
    assert limited.path == f"/channels/{CHANNEL_ID}/messages/{message_id}"
    retry = retry_of(api, limited)
    assert retry.at - limited.at >= WAIT_S
    assert shows(retry, "🚫 Cancelled. Nothing was kept.")
    assert delivery_log(caplog) == [PAUSED]  # held back: no error, no backoff


async def test_a_cloudflare_429_on_an_interaction_edit_holds_the_channel_back(
    bot: BotRunner,
    api: FakeDiscord,
    service: Service,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await bot.start()
    api.rate_limits, api.rate_limit_s, api.rate_limit_by_cloudflare = 1, WAIT_S, True
    api.rate_limit_when = lambda call: shows(call, "⏳ Queued")  # delivery's first edit
    caplog.set_level(logging.INFO, logger="bots.delivery")
    payload = await song(api, bot, tmp_path)
    [limited] = api.limited
    assert (
        limited.path
        == f"/webhooks/{payload['application_id']}/{payload['token']}/messages/@original"
    )
    retry = retry_of(api, limited)
    assert retry.at - limited.at >= WAIT_S
    assert delivery_log(caplog) == [PAUSED]  # held back: no error, no backoff


async def test_a_rate_limited_fetching_edit_does_not_fail_the_request(
    bot: BotRunner, api: FakeDiscord, service: Service, tmp_path: Path
) -> None:
    await bot.start()
    api.rate_limits, api.rate_limit_s, api.rate_limit_by_cloudflare = 1, WAIT_S, True
    api.rate_limit_when = lambda call: shows(call, "📥 Fetching")
    payload = await song(api, bot, tmp_path)
    [limited] = api.limited
    assert limited.path.endswith(f"/{payload['token']}/messages/@original")
    assert api.followups(payload["token"]) == []  # no "something went wrong"
