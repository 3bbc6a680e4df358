"""Redis restarted mid-queue, with persistence on (append-only file, as deployed).

A real `stembot worker` process and the real Telegram bot (against the fake Bot API) run
through the outage: queued jobs survive it and run, the worker and the bot reconnect by
themselves, a song sent meanwhile is answered "busy", and the running song's final message
arrives once.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest

from bots.telegram.app import run_telegram
from bots.telegram.store import Store
from shared.errors import ServiceUnavailable
from shared.redis_server import PrivateRedis
from shared.schemas import JobState
from shared.storage import build_storage
from tests.bots.telegram.conftest import tg_settings
from tests.bots.telegram.fake_bot_api import FakeBotApi, audio, is_final, private_chat
from tests.bots.telegram.users import ANA, BOB
from tests.faults.conftest import open_faults
from tests.support.audio import make_audio
from tests.support.waiting import until

pytestmark = pytest.mark.faults

BUSY = "The service is busy or restarting. Please try again in a minute."


async def test_queued_jobs_survive_a_redis_restart_and_everyone_reconnects(
    aof_redis: PrivateRedis, tmp_path: Path, model_repo: Path
) -> None:
    async with open_faults(aof_redis.url, tmp_path, model_repo) as faults:
        worker = faults.start_worker("a", STEMBOT_TORCH_THREADS="2")
        api = FakeBotApi()
        await api.start()
        storage = build_storage(faults.settings)
        bot = asyncio.create_task(
            run_telegram(faults.settings, faults.redis, storage, tg_settings(api))
        )
        try:
            await worker.ready()
            await api.wait_for(lambda: api.of("getUpdates"), what="the bot to poll")
            await Store(faults.redis).set_pref(ANA["id"], "mode", "4")

            # Ana's song is separating, two more wait in the queue
            song = make_audio(tmp_path / "Through the restart.wav", seconds=60.0)
            sent = api.send(private_chat(ANA), ANA, audio=audio(api, song, "audio/wav"))
            status = await api.wait_for(lambda: api.reply_to(sent), what="the status message")
            waiting = [
                await faults.submit(
                    make_audio(tmp_path / f"q{i}.wav", seconds=2.0 + i), user=f"q{i}"
                )
                for i in range(2)
            ]
            await api.wait_for(lambda: "🎛 Separating" in (status.text or ""), what="separating")

            aof_redis.stop(keep_dir=True)
            # meanwhile a new song is answered "busy", by the core and by the bot
            late = make_audio(tmp_path / "Late.wav", seconds=2.0)
            with pytest.raises(ServiceUnavailable) as info:
                await faults.submit(late, user="late")
            assert info.value.user_message == BUSY
            sent_late = api.send(private_chat(BOB), BOB, audio=audio(api, late, "audio/wav"))
            answer = await api.wait_for(lambda: api.reply_to(sent_late), what="Bo's answer")
            assert answer.text == f"❌ {BUSY}"

            async def worker_noticed() -> bool:
                if worker.proc.poll() is not None:
                    raise AssertionError(f"the worker died with Redis:\n{worker.log()[-2000:]}")
                return "Redis unreachable" in worker.log()

            await until(worker_noticed, timeout_s=10, what="the worker to meet the outage")
            assert worker.proc.poll() is None

            aof_redis.start()  # same port, same folder: it reads its append-only file
            for submitted, stream in waiting:
                finals = await faults.final_events(stream, within=90)
                assert [e.state for e in finals] == [JobState.DONE], submitted.job_id
            await api.wait_for(lambda: is_final(status), within=60, what="Ana's final message")
            assert sum(t.startswith("✅ Done: Through the restart") for t in status.texts) == 1
            # the album follows the final text: its stems are read through storage/tmp first
            await api.wait_for(lambda: api.of("sendMediaGroup"), what="Ana's album")
            await faults.idle()
            assert worker.proc.poll() is None  # the same worker process, all along
            assert "Redis reachable again" in worker.log()
            assert faults.tmp_leftovers() == []
            assert faults.uploads() == []
        finally:
            bot.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await bot
            await api.stop()
