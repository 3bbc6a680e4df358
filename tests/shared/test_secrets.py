"""Tokens and keys never leave the process: not in logs, Redis, events, messages or files.

A realistic flow with known fake secrets: the Telegram bot (against the fake Bot API) and the
Discord bot (against the fake Discord) each split a song, the HTTP API splits one with its key,
a YouTube link goes through a proxy with a password, a bad file is refused; logging is at
DEBUG through the JSON and the plain formatter. Then every Redis key and value of every type,
every log line, every event, every message body the fake servers got, every API answer, the
results page and every stored file is searched for each secret (as is, URL-encoded, base64).
Credentials that must travel where they belong (the bot token in Telegram's URL path, the
Discord token and interaction tokens in Discord's headers and webhook paths) are not searched
there: those are where they are meant to go.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import aiohttp
import discord
import pytest
from redis.asyncio import Redis

from bots.web import create_app
from shared.logs import JsonFormatter
from shared.redis_server import PrivateRedis
from shared.schemas import JobResult
from tests.bots.discord.conftest import TOKEN as DISCORD_TOKEN
from tests.bots.discord.conftest import BotRunner as DiscordRunner
from tests.bots.discord.fake_discord import FakeDiscord
from tests.bots.telegram.conftest import BotRunner as TelegramRunner
from tests.bots.telegram.fake_bot_api import TOKEN as TELEGRAM_TOKEN
from tests.bots.telegram.fake_bot_api import FakeBotApi, audio, document, is_final, private_chat
from tests.bots.telegram.users import ANA, BOB, EVE
from tests.support.audio import make_audio
from tests.support.service import Service, running_service
from tests.support.waiting import until
from tests.support.web import serving

SIGNING_KEY = "test-signing-key-not-a-secret"  # what tests.support.service configures
API_KEY = "k3y-api-0f1e2d3c4b5a69788796a5b4c3d2e1f0"
PROXY_PASSWORD = "pr0xy-pa55word-e8d7c6b5"


def forms(secret: str) -> set[bytes]:
    """The secret as is, URL-encoded, and base64-encoded at each of the three alignments."""
    raw = secret.encode()
    found = {raw, quote(secret, safe="").encode(), quote_plus(secret).encode()}
    for pad, skip in ((0, 0), (1, 2), (2, 3)):
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            text = encode(b"\0" * pad + raw).rstrip(b"=")
            found.add(text[skip:-4])  # the characters that depend on the secret alone
    assert all(len(form) >= 8 for form in found), "too short a secret to search for"
    return found


class Haystack:
    """Everything the flow left outside the process, by where it was found."""

    def __init__(self) -> None:
        self.places: list[tuple[str, bytes]] = []

    def add(self, where: str, data: bytes | str | Any) -> None:
        if isinstance(data, str):
            data = data.encode()
        elif not isinstance(data, bytes):
            data = json.dumps(data, default=str).encode()
        self.places.append((where, data))

    def leaks(self, secrets: dict[str, str]) -> list[str]:
        found = []
        for name, secret in secrets.items():
            for form in forms(secret):
                for where, data in self.places:
                    at = data.find(form)
                    if at >= 0:
                        context = data[max(0, at - 60) : at + len(form) + 20]
                        found.append(f"{name} in {where}: ...{context!r}...")
        return found


async def redis_contents(redis: Redis, hay: Haystack) -> int:
    """Every key and every value, whatever its type."""
    count = 0
    async for key in redis.scan_iter(count=500):
        count += 1
        kind = (await redis.type(key)).decode()
        name = f"redis {kind} {key.decode(errors='replace')}"
        hay.add(f"redis key {key!r}", key)
        if kind == "string":
            hay.add(name, await redis.get(key))
        elif kind == "hash":
            hay.add(name, b"\n".join(k + b"=" + v for k, v in (await redis.hgetall(key)).items()))
        elif kind == "list":
            hay.add(name, b"\n".join(await redis.lrange(key, 0, -1)))
        elif kind == "set":
            hay.add(name, b"\n".join(await redis.smembers(key)))
        elif kind == "zset":
            hay.add(name, b"\n".join(m for m, _ in await redis.zrange(key, 0, -1, withscores=True)))
        elif kind == "stream":
            for entry_id, fields in await redis.xrange(key):
                hay.add(f"{name} {entry_id!r}", b"\n".join(k + b"=" + v for k, v in fields.items()))
        else:
            raise AssertionError(f"unexpected key type {kind} for {key!r}")
    return count


@contextlib.contextmanager
def debug_logs() -> Iterator[tuple[io.StringIO, io.StringIO]]:
    """Root logging at DEBUG into a JSON and a plain handler, as setup_logging makes them."""
    root = logging.getLogger()
    json_out, plain_out = io.StringIO(), io.StringIO()
    handlers = [logging.StreamHandler(json_out), logging.StreamHandler(plain_out)]
    handlers[0].setFormatter(JsonFormatter())
    handlers[1].setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    level = root.level
    root.setLevel(logging.DEBUG)
    for handler in handlers:
        handler.setLevel(logging.DEBUG)
        # the fake servers' access lines: they stand for Discord and Telegram, where the
        # tokens belong (our own web server runs without an access log)
        handler.addFilter(lambda record: record.name != "aiohttp.access")
        root.addHandler(handler)
    try:
        yield json_out, plain_out
    finally:
        for handler in handlers:
            root.removeHandler(handler)
        root.setLevel(level)


@pytest.fixture
async def svc(
    redis_server: PrivateRedis, storage_dir: Path, model_repo: Path
) -> AsyncIterator[Service]:
    async with running_service(
        redis_server.url,
        storage_dir,
        model_repo,
        api_keys={API_KEY: "alice"},
        ytdlp_proxy=f"http://stembot:{PROXY_PASSWORD}@127.0.0.1:9",
        download_tries=1,
        download_socket_timeout_s=2,
        download_retry_backoff_s=0.2,  # yt-dlp's retries through the dead proxy: not 12 s
    ) as service:
        await service.redis.flushall()
        yield service


@contextlib.asynccontextmanager
async def api_server(svc: Service) -> AsyncIterator[str]:
    """The web app with the HTTP API (its key in the settings), on a free port."""
    async with serving(
        create_app(svc.settings, svc.storage, run_cleanup=False, redis=svc.redis)
    ) as base:
        yield base


async def telegram_flow(svc: Service, tmp_path: Path) -> FakeBotApi:
    api = FakeBotApi()
    await api.start()
    runner = TelegramRunner(api, svc)
    await runner.start()
    try:
        song = make_audio(tmp_path / "Tg Song.mp3", seconds=2.0)
        sent = api.send(private_chat(ANA), ANA, audio=audio(api, song))
        status = await api.wait_for(lambda: api.reply_to(sent), what="the status message")
        api.press(ANA, status, "4 stems")
        await api.wait_for(lambda: is_final(status), what="the links")
        assert status.text is not None and status.text.startswith("✅ Done: Tg Song")
        # a link (through the proxy, which is down) and a file that is not audio
        link = api.send(private_chat(BOB), BOB, "https://youtu.be/dQw4w9WgXcQ")
        failed = await api.wait_for(lambda: api.reply_to(link), what="the link's status")
        if "4 stems" in failed.buttons:
            api.press(BOB, failed, "4 stems")
        await api.wait_for(lambda: is_final(failed), what="the download failure")
        assert "download that video from YouTube" in (failed.text or "")
        junk = document(api, b"just words\n" * 100, "words.mp3", "audio/mpeg")
        refused = api.send(private_chat(EVE), EVE, document=junk)
        answer = await api.wait_for(lambda: api.reply_to(refused), what="the refusal")
        if "4 stems" in answer.buttons:
            api.press(EVE, answer, "4 stems")
        await api.wait_for(lambda: "❌" in (answer.text or ""), what="the refusal text")
    finally:
        await runner.stop()
        await api.stop()
    return api


def discord_over(message: dict[str, Any] | None) -> bool:
    embeds = (message or {}).get("embeds") or [{}]
    return str(embeds[0].get("description", "")).startswith(("✅", "❌"))


async def discord_flow(
    svc: Service, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[FakeDiscord, list[str]]:
    api = FakeDiscord()
    url = await api.start()
    monkeypatch.setattr(discord.http.Route, "BASE", f"{url}/api/v10")
    runner = DiscordRunner(api, svc)
    await runner.start()
    try:
        data = make_audio(tmp_path / "dc.wav", seconds=2.0).read_bytes()
        file = api.attachment("Dc Song.wav", data, "audio/wav")
        payload = runner.feed(api.interaction(2, api.stem_command(file=file)))
        token = payload["token"]
        done = await api.wait_for(lambda a: discord_over(a.original(token)) and a.original(token))
        assert done["embeds"][0]["description"].startswith("✅ Done!")
    finally:
        await runner.stop()
        await api.stop()
    return api, [token]


async def api_flow(svc: Service, tmp_path: Path, hay: Haystack) -> None:
    wav = make_audio(tmp_path / "Api Song.wav", seconds=2.5)
    async with api_server(svc) as base, aiohttp.ClientSession() as http:
        body = aiohttp.FormData()
        body.add_field("file", io.BytesIO(wav.read_bytes()), filename=wav.name)
        auth = {"Authorization": f"Bearer {API_KEY}"}
        async with http.post(f"{base}/api/stemify", data=body, headers=auth) as resp:
            assert resp.status == 202
            job = await resp.json()
        hay.add("API answer", job)
        status_url = f"{base}/api/jobs/{job['job_id']}"

        async def over() -> dict[str, Any] | None:
            async with http.get(status_url, headers={"X-API-Key": API_KEY}) as resp:
                polled: dict[str, Any] = await resp.json()
            return polled if polled.get("state") in ("done", "failed") else None

        # an API client polls: a look every tenth of a second
        job = await until(over, timeout_s=60, what="the API job to end", every_s=0.1)
        hay.add("API answer", job)
        assert job["state"] == "done", job
        async with http.get(job["result"]["zip"]["url"]) as resp:
            assert resp.status == 200


async def results_pages(svc: Service, hay: Haystack) -> int:
    """Every finished job's results page, as a browser gets it."""
    pages = 0
    async with aiohttp.ClientSession() as http:
        async for key in svc.redis.scan_iter(match="stembot:result:*"):
            result = JobResult.model_validate_json(await svc.redis.get(key))
            assert result.page_url is not None
            async with http.get(result.page_url) as resp:
                assert resp.status == 200
                hay.add(f"results page of {result.title}", await resp.text())
                pages += 1
    return pages


async def test_no_secret_leaves_the_process(
    svc: Service, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hay = Haystack()
    with debug_logs() as (json_logs, plain_logs):
        telegram = await telegram_flow(svc, tmp_path)
        dc, interaction_tokens = await discord_flow(svc, tmp_path, monkeypatch)
        await api_flow(svc, tmp_path, hay)
        assert await results_pages(svc, hay) == 3
        logging.getLogger("stembot.test").debug("flow over %s", uuid.uuid4().hex)

    assert json_logs.getvalue() and plain_logs.getvalue()
    for n, line in enumerate(json_logs.getvalue().splitlines()):
        hay.add(f"JSON log line {n}", line)
    for n, line in enumerate(plain_logs.getvalue().splitlines()):
        hay.add(f"log line {n}", line)
    keys = await redis_contents(svc.redis, hay)
    assert keys > 20  # the flow really left state there
    for tg in telegram.calls:  # the token belongs in the URL path, which is not kept here
        hay.add(f"Telegram {tg.method} params", tg.params)
        for field_name, (filename, data) in tg.files.items():
            hay.add(f"Telegram {tg.method} file {field_name}", filename.encode() + b"\n" + data)
    for call in dc.calls:  # interaction tokens belong in webhook paths; bodies are checked
        hay.add(f"Discord {call.method} body", call.json)
        for name, content in call.files.items():
            hay.add(f"Discord {call.method} file {name}", content)
    for path in svc.settings.storage.storage_dir.rglob("*"):
        if path.is_file():
            hay.add(f"stored file {path.name}", path.read_bytes())

    secrets = {
        "Telegram token": TELEGRAM_TOKEN,
        "Telegram token secret part": TELEGRAM_TOKEN.split(":", 1)[1],
        "Discord token": DISCORD_TOKEN,
        "link signing key": SIGNING_KEY,
        "API key": API_KEY,
        "proxy password": PROXY_PASSWORD,
    }
    secrets |= {f"Discord interaction token {t}": t for t in interaction_tokens}
    leaks = hay.leaks(secrets)
    assert not leaks, "\n".join(leaks)


def test_the_search_finds_each_form() -> None:
    """The search itself: a secret hidden in any of its forms is found."""
    secret = "s3cret:with/odd+chars"
    for hidden in [
        secret,
        quote(secret, safe=""),
        quote_plus(secret),
        base64.b64encode(secret.encode()).decode(),
        base64.urlsafe_b64encode(b"x" + secret.encode()).decode(),
        base64.b64encode(b"xy" + secret.encode()).decode(),
    ]:
        hay = Haystack()
        hay.add("somewhere", f"before {hidden} after")
        assert hay.leaks({"it": secret}), hidden
    hay = Haystack()
    hay.add("elsewhere", "nothing to see " + secret[:-1])
    assert hay.leaks({"it": secret}) == []
