"""shared.sendbudget against a real Redis: one bot's budget taken by two processes."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import AsyncIterator, Callable, Hashable

import pytest
from redis.asyncio import Redis

from shared import keys
from shared.redis_server import PrivateRedis, free_port
from shared.sendbudget import Limit, SendBudget, bot_name


@pytest.fixture
async def clients(redis: Redis, redis_server: PrivateRedis) -> AsyncIterator[list[Redis]]:
    """Two processes' own connections (``redis`` flushed the database first)."""
    made = [Redis.from_url(redis_server.url) for _ in range(2)]
    yield made
    for client in made:
        await client.aclose()


def budgets(
    clients: list[Redis], bot: Limit, chat: Callable[[Hashable], Limit] | None = None
) -> list[SendBudget]:
    def per_chat(_: Hashable) -> Limit:
        return Limit(1000, 1.0)

    return [
        SendBudget(c, "telegram", "42", bot_limit=bot, chat_limit=chat or per_chat) for c in clients
    ]


def most_in_a_window(times: list[float], window_s: float) -> int:
    times = sorted(times)
    return max(sum(1 for t in times if start <= t < start + window_s) for start in times)


async def close(*made: SendBudget) -> None:
    for budget in made:
        await budget.close()


async def test_two_processes_together_stay_within_the_bot_limit(clients: list[Redis]) -> None:
    a, b = budgets(clients, Limit(20, 1.0))
    granted: list[float] = []

    async def send(budget: SendBudget, chat: int) -> None:
        await budget.take(chat)
        granted.append(time.monotonic())

    started = time.monotonic()
    await asyncio.gather(*(send(a if i % 2 else b, i % 7) for i in range(50)))
    await close(a, b)

    assert len(granted) == 50
    assert most_in_a_window(granted, 0.99) <= 20
    # burst 2, then 18 a second: the 50 took about (50 - 2) / 18 s, not much longer
    assert 2.3 < time.monotonic() - started < 4.0


async def test_a_chat_has_its_own_limit_across_processes(clients: list[Redis]) -> None:
    def per_chat(chat: Hashable) -> Limit:
        return Limit(1, 1.0, bursts=2) if chat == "slow" else Limit(1000, 1.0)

    a, b = budgets(clients, Limit(1000, 1.0), per_chat)
    slow: list[float] = []
    fast: list[float] = []

    async def send(budget: SendBudget, chat: str, into: list[float]) -> None:
        await budget.take(chat)
        into.append(time.monotonic())

    started = time.monotonic()
    await asyncio.gather(
        *(send(a if i % 2 else b, "slow", slow) for i in range(4)),
        *(send(a if i % 2 else b, "fast", fast) for i in range(20)),
    )
    await close(a, b)

    assert max(fast) - started < 0.5  # not held up by the slow chat
    # two at once, then one a second
    assert [round(t - started) for t in sorted(slow)] == [0, 0, 1, 2]


async def test_urgent_sends_go_first_and_keep_a_reserve_from_progress(
    clients: list[Redis],
) -> None:
    # a burst of 3 (one kept for urgent sends), then 6 a second
    a, b = budgets(clients, Limit(6, 1.0, bursts=3))
    progress_done: list[float] = []

    async def progress(i: int) -> None:
        await a.take(i, urgent=False)
        progress_done.append(time.monotonic())

    flood = [asyncio.create_task(progress(i)) for i in range(20)]
    waits = []
    for chat in range(4):  # meanwhile the other process sends finals: they never wait for
        await asyncio.sleep(0.4)  # the flood (a token comes every 1/6 s: it would)
        started = time.monotonic()
        await b.take(f"final-{chat}", urgent=True)
        waits.append(time.monotonic() - started)
    assert len(progress_done) < 20  # the progress edits still wait for the budget
    await asyncio.gather(*flood)
    await close(a, b)

    assert max(waits) < 0.12, waits
    assert most_in_a_window(progress_done, 0.99) <= 9


async def test_a_waiting_progress_edit_can_be_withdrawn(clients: list[Redis]) -> None:
    [a] = budgets(clients[:1], Limit(2, 1.0))  # one now, then one a second
    await a.take("x")
    waiting = a.request("y", urgent=False)
    urgent = asyncio.create_task(a.take("z", urgent=True))
    waiting.cancel()  # the final arrived: the progress edit is not sent
    started = time.monotonic()
    await urgent
    assert 0.5 < time.monotonic() - started < 1.2  # the next token went to the final
    await close(a)


async def test_a_platform_rate_limit_holds_the_chat_back_for_every_process(
    clients: list[Redis],
) -> None:
    a, b = budgets(clients, Limit(1000, 1.0))
    await a.hold(7, 0.5)  # Telegram said "retry after" to the first process
    started = time.monotonic()
    await b.take(8)
    assert time.monotonic() - started < 0.2  # another chat goes on
    await b.take(7)
    assert time.monotonic() - started >= 0.45
    await close(a, b)


async def test_without_redis_sends_go_ahead() -> None:
    gone = Redis.from_url(f"redis://127.0.0.1:{free_port()}", socket_connect_timeout=0.2)
    [budget] = budgets([gone], Limit(1, 60.0))
    async with asyncio.timeout(5):
        for chat in range(3):
            await budget.take(chat)
    await close(budget)
    await gone.aclose()


def test_a_bot_is_named_in_redis_without_its_token() -> None:
    assert bot_name("telegram", "123456:AAE-secret-part") == "123456"
    user_id = base64.b64encode(b"700000000000000002").decode().rstrip("=")
    assert bot_name("discord", f"{user_id}.GhIjKl.secret-part") == "700000000000000002"
    hashed = bot_name("discord", "not-a-discord-token")
    assert len(hashed) == 16 and "token" not in hashed
    assert keys.send_budget("telegram", "123456", "ab12") == "stembot:budget:telegram:123456:ab12"
