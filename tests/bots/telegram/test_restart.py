"""A bot restart mid-job: the rest of the progress and the final message arrive, once."""

from __future__ import annotations

from pathlib import Path

from redis.asyncio import Redis

from bots.telegram.delivery import GROUP, STREAM
from bots.telegram.store import Store
from shared.schemas import JobState
from tests.bots.telegram.conftest import BotRunner
from tests.bots.telegram.fake_bot_api import FakeBotApi, audio, is_final, private_chat
from tests.bots.telegram.users import ANA
from tests.support import streams
from tests.support.audio import make_audio
from tests.support.service import Service

WRITES = ("sendMessage", "editMessageText", "sendMediaGroup", "sendAudio")


async def settled(redis: Redis) -> None:
    """Wait until the bot's group has read and acknowledged every event of its stream."""
    await streams.settled(redis, STREAM)


async def pending(redis: Redis) -> int:
    [group] = await redis.xinfo_groups(STREAM)
    return int(group["pending"])


def writes(api: FakeBotApi) -> int:
    return sum(len(api.of(m)) for m in WRITES)


async def test_restart_mid_job_delivers_the_rest_and_the_final_once(
    bot: BotRunner, api: FakeBotApi, service: Service, tmp_path: Path
) -> None:
    await Store(service.redis).set_pref(ANA["id"], "mode", "4")
    await bot.start()
    song = make_audio(tmp_path / "Long take.wav", seconds=30.0)
    sent = api.send(private_chat(ANA), ANA, audio=audio(api, song, "audio/wav"))
    status = await api.wait_for(lambda: api.reply_to(sent), what="the status message")
    await api.wait_for(lambda: "🎛 Separating" in (status.text or ""), what="separating")

    # Telegram holds the bot back; it is stopped with events read but not yet shown
    api.flood("editMessageText", retry_after=30)
    await api.wait_for(lambda: any(c.status == 429 for c in api.calls), what="the 429")
    assert await pending(service.redis) > 0
    await bot.stop()
    shown_before = len(status.versions)

    # the job goes on meanwhile; its events wait in the stream
    seen = await service.events_until_final(STREAM)
    assert seen[-1].state == JobState.DONE
    assert not is_final(status)

    await bot.start()
    await api.wait_for(lambda: is_final(status), what="the final message after the restart")
    await api.wait_for(lambda: api.of("sendMediaGroup"), what="the album of four stems")
    await settled(service.redis)
    assert len(status.versions) > shown_before
    assert sum(text.startswith("✅ Done: Long take") for text in status.texts) == 1
    assert [s.audio[0] for s in api.messages(ANA["id"]) if s.audio] == [
        f"Long take - {name}.mp3" for name in ("drums", "bass", "other", "vocals")
    ]
    await bot.stop()

    # every event delivered again, as if none had been acknowledged: nothing is sent twice
    before = writes(api)
    await service.redis.xgroup_setid(STREAM, GROUP, "0")
    await bot.start()
    await settled(service.redis)
    assert writes(api) == before
    assert len(api.of("sendMediaGroup")) == 1
