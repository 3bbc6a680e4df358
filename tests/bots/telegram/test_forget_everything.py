"""/forget sees every key that names a user: a whole life on the bot, then a scan of Redis."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bots.telegram.store import Store
from shared import keys, limits
from tests.bots.telegram.conftest import BotRunner
from tests.bots.telegram.fake_bot_api import (
    FakeBotApi,
    Shown,
    audio,
    is_final,
    private_chat,
    user,
)
from tests.bots.telegram.users import GINA, GROUP, SCOPE
from tests.support import redis_scan
from tests.support.audio import make_audio
from tests.support.service import Service

UID = 7310925846  # a realistic Telegram id: it cannot occur by chance in a timestamp or a hash
ZELDA = user(UID, "Zelmira")


async def answer(api: FakeBotApi, chat: dict[str, Any], sender: dict[str, Any], **kw: Any) -> Shown:
    sent = api.send(chat, sender, **kw)
    return await api.wait_for(lambda: api.reply_to(sent), what=f"the answer to {kw}")


async def test_after_forget_no_key_names_the_user_but_their_ban(
    bot: BotRunner, api: FakeBotApi, service: Service, tmp_path: Path
) -> None:
    await bot.start()
    api.chat_admins[GROUP["id"]] = {GINA["id"]: "creator"}
    redis, chat = service.redis, private_chat(ZELDA)
    # settings, through the panel
    panel = await answer(api, chat, ZELDA, text="/settings")
    api.press(ZELDA, panel, "4 stems")
    await api.wait_for(lambda: "Mode: 4 stems" in (panel.text or ""), what="mode saved")
    # a song run by the worker, then the same one answered from the cache
    song = make_audio(tmp_path / "Zelda Theme.mp3", seconds=2.0)
    for _ in range(2):
        status = await answer(api, chat, ZELDA, audio=audio(api, song))
        await api.wait_for(lambda s=status: is_final(s), within=60, what="the links")
        assert (status.text or "").startswith("✅ Done"), status.text
    # a song waiting for its mode button
    await Store(redis).set_pref(UID, "mode", "ask")
    question = await answer(api, chat, ZELDA, audio=audio(api, make_audio(tmp_path / "B.mp3")))
    assert question.buttons == ["4 stems", "Vocals + instrumental", "6 stems"]
    # banned from a group by its admin
    await answer(api, GROUP, GINA, text=f"/ban {UID} spam")
    assert await limits.is_banned(redis, f"telegram:{UID}", SCOPE)

    needles = (str(UID), "Zelmira")
    before = await redis_scan.naming(redis, *needles)
    assert keys.limit_window(f"telegram:{UID}") in before  # the scan sees what there is
    assert keys.telegram("prefs", UID) in before
    assert any(k.startswith(keys.telegram("pending")) for k in before), sorted(before)
    assert any(k.startswith(keys.request("")) for k in before), sorted(before)
    assert await redis_scan.undocumented(redis, service.settings) == []

    ask = await answer(api, chat, ZELDA, text="/forget")
    api.press(ZELDA, ask, "Delete my data")
    await api.wait_for(lambda: ask.markup is None, what="the answer")
    assert (ask.text or "").startswith("🗑 Done"), ask.text

    left = await redis_scan.naming(redis, *needles)
    assert sorted(left) == sorted(keys.KEPT_BY_FORGET), left
    assert await limits.is_banned(redis, f"telegram:{UID}", SCOPE)  # kept on purpose
