"""A Discord bot restarted while a song is separating: progress resumes, the end shows once.

(tests/bots/discord/test_flows.py restarts the bot while a job waits in the queue, and
tests/bots/telegram/test_restart.py restarts the Telegram bot mid-job; this one restarts the
Discord bot while Demucs is running, so the new process must pick up live progress.)
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bots.discord.presenter import STREAM
from tests.bots.discord.conftest import BotRunner, api, bot  # noqa: F401 (fixtures)
from tests.bots.discord.fake_discord import CHANNEL_ID, FakeDiscord
from tests.bots.discord.test_stem import description, is_over
from tests.support.audio import make_audio
from tests.support.service import Service
from tests.support.streams import settled

pytestmark = pytest.mark.faults


async def test_a_discord_bot_restarted_mid_separation_resumes_and_ends_once(
    bot: BotRunner,  # noqa: F811
    api: FakeDiscord,  # noqa: F811
    service: Service,
    tmp_path: Path,
) -> None:
    await bot.start()
    song = make_audio(tmp_path / "Restarted.wav", seconds=60.0).read_bytes()
    file = api.attachment("Restarted.wav", song, "audio/wav")
    token = bot.feed(api.interaction(2, api.stem_command(file=file)))["token"]
    await api.wait_for(lambda a: description(a.original(token)).startswith("🎛️ Separating"))
    status = api.original(token)
    assert status is not None
    message_id = int(status["id"])
    await bot.stop()

    # a new process: no interaction token, it edits through the channel
    await bot.start()
    await api.wait_for(lambda a: is_over(a.messages[message_id]), within_s=60)
    edits = [
        c.json["embeds"][0]["description"]
        for c in api.calls_to("PATCH", f"/channels/{CHANNEL_ID}/messages/{message_id}")
        if c.json.get("embeds")
    ]
    assert any(e.startswith(("🎛️ Separating", "📦 Encoding")) for e in edits), edits  # live
    assert sum(e.startswith("✅ Done!") for e in edits) == 1
    assert edits[-1].startswith("✅ Done!")
    await settled(service.redis, STREAM)
