"""The Telegram bot at scale: places read where they are shown, two bot processes sharing one
send budget, measured at the fake Bot API."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from arq.connections import ArqRedis, RedisSettings, create_pool
from arq.constants import in_progress_key_prefix
from telegram import Bot

from bots.telegram.app import run_telegram
from bots.telegram.delivery import STREAM
from bots.telegram.store import Store
from shared import keys
from shared.schemas import JobOptions, JobRequest, JobState, ProgressEvent, Source, TelegramReply
from tests.bots.telegram.conftest import BotRunner, tg_settings
from tests.bots.telegram.fake_bot_api import (
    TOKEN,
    FakeBotApi,
    Shown,
    audio,
    is_final,
    private_chat,
    user,
)
from tests.support.audio import make_audio
from tests.support.service import Service
from tests.support.streams import settled
from tests.support.waiting import until

PLACE = re.compile(r"⏳ In the queue: (next up|(\d+) ahead of you)")
WRITES = ("sendMessage", "editMessageText", "sendMediaGroup", "sendAudio")


def place_of(text: str | None) -> int | None:
    found = PLACE.search(text or "")
    if found is None:
        return None
    return 0 if found.group(1) == "next up" else int(found.group(2))


async def test_waiting_users_see_their_place_move_and_the_worker_publishes_nothing(
    bot: BotRunner, api: FakeBotApi, service: Service, tmp_path: Path
) -> None:
    settings = copy.deepcopy(service.settings)
    settings.redis.queue_name = "test:queue:nobody"  # no worker takes it: we move the queue
    await bot.start(settings, bot_place_interval_s=0.2)
    users = [user(3001 + i, f"User{i}") for i in range(4)]
    statuses: list[Shown] = []
    for i, who in enumerate(users):
        await Store(service.redis).set_pref(who["id"], "mode", "4")
        song = make_audio(tmp_path / f"Song {i}.wav", seconds=1.0 + i)
        sent = api.send(private_chat(who), who, audio=audio(api, song, "audio/wav"))
        status = await api.wait_for(lambda s=sent: api.reply_to(s), what="a status message")
        await api.wait_for(lambda st=status, p=i: place_of(st.text) == p, what=f"place {i}")
        statuses.append(status)

    # two workers start the first two runs: the others move up two places, in one edit
    line = [i.decode() for i in await service.redis.zrange("test:queue:nobody", 0, -1)]
    for arq_id in line[:2]:
        await service.redis.set(in_progress_key_prefix + arq_id, b"1")
    for status, now in zip(statuses[2:], (0, 1), strict=True):
        await api.wait_for(lambda st=status, p=now: place_of(st.text) == p, what=f"place {now}")

    assert [place_of(t) for t in statuses[3].texts if place_of(t) is not None] == [3, 1]
    assert [place_of(t) for t in statuses[2].texts if place_of(t) is not None] == [2, 0]
    # nothing went through the bot's stream: the places were read, not published
    assert await service.redis.xlen(STREAM) == 0
    registry = await service.redis.hgetall(keys.waiting("telegram"))
    assert len(registry) == 4 and len(set(registry.values())) == 1  # all kept by this process


@dataclass
class Processes:
    """run_telegram tasks, each on its own Redis connection, stopped at the end."""

    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    pools: list[ArqRedis] = field(default_factory=list)


@pytest.fixture
async def processes(api: FakeBotApi, service: Service) -> AsyncIterator[Processes]:
    running = Processes()
    yield running
    for task in running.tasks:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    for pool in running.pools:
        await pool.aclose()


async def start_process(
    api: FakeBotApi, service: Service, running: Processes, name: str, **tg: Any
) -> None:
    """A bot process (the real entry point) on its own Redis connection, once it delivers."""
    settings = tg_settings(api, bot_instance=name, **tg)
    url = service.settings.redis.redis_url
    assert url is not None
    own = await create_pool(RedisSettings.from_dsn(url))
    running.pools.append(own)
    task = asyncio.create_task(run_telegram(service.settings, own, service.storage, settings))
    running.tasks.append(task)

    async def delivering() -> bool:
        if task.done():
            task.result()
        return await service.redis.zscore(keys.processes("telegram"), name) is not None

    await until(delivering, what=f"bot process {name}")


async def test_two_bot_processes_share_one_send_budget_and_every_end_is_shown_once(
    api: FakeBotApi, service: Service, processes: Processes
) -> None:
    budget = {"telegram_sends_per_s": 5, "telegram_send_audio": False, "bot_claim_after_s": 60}
    await start_process(api, service, processes, "tg-b", telegram_receive_updates=False, **budget)
    assert api.of("getUpdates") == []  # a delivery-only process takes no updates
    await start_process(api, service, processes, "tg-a", **budget)
    await api.wait_for(lambda: api.of("getUpdates"), what="the other to take them")

    # 16 users, each a status message (made outside the bot) and a request in Redis
    people = [user(4001 + i, f"P{i}") for i in range(16)]
    ids = []
    async with Bot(TOKEN, base_url=f"{api.url}/bot") as plain:
        for i, who in enumerate(people):
            api.message(private_chat(who), who, "hi")  # the chat exists
            sent = await plain.send_message(who["id"], f"🎵 Song {i}\nstarting")
            request = JobRequest(
                request_id=f"r{i}",
                frontend="telegram",
                user_id=f"telegram:{who['id']}",
                reply_to=STREAM,
                source=Source(kind="upload", identity=f"{i:064d}", title=f"Song {i}"),
                options=JobOptions(),
                reply=TelegramReply(
                    chat_id=who["id"],
                    message_id=sent.message_id,
                    user_id=who["id"],
                    title=f"Song {i}",
                    files=False,
                ),
            )
            await service.redis.set(keys.request(request.request_id), request.model_dump_json())
            ids.append(request.request_id)
    started = len(api.calls)

    def event(rid: str, state: JobState, percent: float | None = None) -> ProgressEvent:
        return ProgressEvent(job_id=f"job-{rid}", request_ids=[rid], state=state, percent=percent)

    # a flood of progress for everyone, then, while it is being shown, every end
    async with service.redis.pipeline(transaction=False) as pipe:
        for percent in range(5, 100, 5):
            for rid in ids:
                data = event(rid, JobState.SEPARATING, percent).model_dump_json()
                pipe.xadd(STREAM, {"data": data})
        await pipe.execute()
    await api.wait_for(lambda: len(api.calls) - started >= 8, what="some progress shown")
    async with service.redis.pipeline(transaction=False) as pipe:
        for rid in ids:
            pipe.xadd(STREAM, {"data": event(rid, JobState.CANCELLED).model_dump_json()})
        await pipe.execute()
    statuses = [s for (c, _), s in sorted(api.shown.items()) if c >= 4001 and s.text]
    await api.wait_for(lambda: all(is_final(s) for s in statuses), within=60, what="every end")
    await settled(service.redis, STREAM)

    writes = [c.at for c in api.calls[started:] if c.method in WRITES]
    most = max(sum(1 for t in writes if start <= t < start + 0.99) for start in writes)
    assert most <= 5, f"{most} sends in one second"
    for status in statuses:
        ends = [t for t in status.texts if "🚫" in t]
        assert len(ends) == 1 and status.texts[-1] == ends[0], status.texts
    progress_edits = len(writes) - len(statuses)
    assert progress_edits < 16 * 19 / 4  # coalesced: far fewer than the events
    group = await service.redis.xinfo_consumers(STREAM, "telegram")
    assert {c["name"].decode() for c in group} == {"tg-a", "tg-b"}  # both delivered
