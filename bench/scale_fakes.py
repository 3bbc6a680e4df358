"""The platforms' side of the scale bench: the tests' fake Bot API and fake Discord, plus what
a separate bot process needs from them, and the users who send songs through them.

- :class:`GatewayDiscord` adds Discord's gateway to the tests' fake REST server: discord.py
  (in its own process) connects over a websocket, identifies (one connection per shard), gets
  READY, heartbeats, and receives each user's ``/stem`` as an INTERACTION_CREATE dispatch, as
  from Discord. ``GET /gateway/bot`` answers too, for a sharded client.
- :class:`Users` sends one song per user at about the same moment (half through Telegram,
  half through Discord) and reads what each user saw from the fakes' records: the bot's first
  answer, every send and edit, the final message with its links.

Everything is measured where the user is: the fakes' own clock (``time.monotonic``) at the
moment a request reached them.
"""

from __future__ import annotations

import asyncio
import io
import json
import math
import time
import wave
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from aiohttp import WSMsgType, web

from tests.bots.discord.fake_discord import APP_ID, BOT_ID, GUILD_ID, FakeDiscord, user
from tests.bots.telegram.fake_bot_api import FakeBotApi, private_chat
from tests.bots.telegram.fake_bot_api import user as tg_user
from tests.support.waiting import until

#: Telegram methods that put something in a chat (the global ~30 messages/s limit).
TG_SENDS = ("send", "edit", "copy", "forward")
DONE_TG = "✅ Done"
DONE_DISCORD = "✅ Done!"
FAILED = ("❌", "🚫")


def song(index: int, seconds: float, rate: int = 44100) -> bytes:
    """A WAV of ``seconds``, different for every ``index`` (so no two share a cached result)."""
    t = np.arange(int(seconds * rate)) / rate
    base = 110.0 * 2 ** ((index % 48) / 12)
    noise = np.random.default_rng(index).standard_normal(t.size)
    signal = 0.3 * np.sin(2 * math.pi * base * t) + 0.2 * np.sin(2 * math.pi * 1.5 * base * t)
    samples = np.clip(signal + 0.02 * noise, -1, 1)
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((samples * 32000).astype("<i2").tobytes())
    return out.getvalue()


@dataclass
class Shard:
    ws: web.WebSocketResponse
    shard_id: int
    count: int
    seq: int = 0


class GatewayDiscord(FakeDiscord):
    """The tests' fake Discord with a gateway for a bot in another process."""

    def __init__(self) -> None:
        super().__init__()
        self.shards: list[Shard] = []
        self.identified = 0
        #: what ``GET /gateway/bot`` recommends
        self.recommended_shards = 1
        self._acks: set[asyncio.Task[None]] = set()

    async def start(self) -> str:
        app = web.Application(client_max_size=200 * 1024 * 1024)
        app.router.add_get("/gateway", self._gateway)
        app.router.add_get("/api/v10/gateway/bot", self._gateway_bot)
        app.router.add_route("*", "/api/v10/{tail:.*}", self._api)
        app.router.add_get("/cdn/{name}", self._cdn)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    @property
    def gateway_url(self) -> str:
        return self.url.replace("http://", "ws://") + "/gateway"

    async def _gateway_bot(self, request: web.Request) -> web.Response:
        limit = {"total": 1000, "remaining": 1000, "reset_after": 0, "max_concurrency": 16}
        body = {
            "url": self.gateway_url,
            "shards": self.recommended_shards,
            "session_start_limit": limit,
        }
        # exactly this content type: discord.py parses no other as JSON
        return web.Response(body=json.dumps(body).encode(), content_type="application/json")

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        await ws.send_json({"op": 10, "d": {"heartbeat_interval": 41250}})
        shard: Shard | None = None
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                continue
            data = json.loads(msg.data)
            if data["op"] == 1:  # heartbeat: acknowledged a round trip later, as over a network
                # (discord.py notes its send time after sending: an instant ack reads as late)
                ack = asyncio.create_task(_ack_later(ws))
                self._acks.add(ack)
                ack.add_done_callback(self._acks.discard)
            elif data["op"] == 2:  # identify
                sid, count = data["d"].get("shard") or [0, 1]
                shard = Shard(ws, sid, count)
                self.shards.append(shard)
                ready = {
                    "v": 10,
                    "user": {**user(BOT_ID, "stembot"), "bot": True},
                    "guilds": [],
                    "session_id": f"bench-{sid}",
                    "resume_gateway_url": self.gateway_url,
                    "shard": [sid, count],
                    "application": {"id": str(APP_ID), "flags": 0},
                }
                await self._send(shard, "READY", ready)
                self.identified += 1
            elif data["op"] == 6:  # resume: not kept; the client identifies again
                await ws.send_json({"op": 9, "d": False})
        if shard is not None:
            self.shards.remove(shard)
        return ws

    async def _send(self, shard: Shard, event: str, data: dict[str, Any]) -> None:
        shard.seq += 1
        await shard.ws.send_str(json.dumps({"op": 0, "t": event, "s": shard.seq, "d": data}))

    async def dispatch(self, payload: dict[str, Any]) -> None:
        """An INTERACTION_CREATE to the shard of the payload's server."""
        guild = int(payload.get("guild_id") or 0)
        for shard in self.shards:
            if (guild >> 22) % shard.count == shard.shard_id:
                await self._send(shard, "INTERACTION_CREATE", payload)
                return
        raise RuntimeError(f"no gateway connection for server {guild}")


async def _ack_later(ws: web.WebSocketResponse, round_trip_s: float = 0.05) -> None:
    await asyncio.sleep(round_trip_s)
    if not ws.closed:
        await ws.send_json({"op": 11})


def tg_is_send(method: str) -> bool:
    return method.startswith(TG_SENDS)


@dataclass
class Seen:
    """What one user saw."""

    platform: str
    sent_at: float
    ack_s: float | None = None
    edits: int = 0
    finals: int = 0
    with_links: int = 0
    failed: int = 0
    final_at: float | None = None

    @property
    def over(self) -> bool:
        return bool(self.finals or self.failed)


@dataclass
class Users:
    """Users on both platforms: ``index`` even on Telegram, odd on Discord.

    The fakes' records are read as they grow (each call once), into what each user saw."""

    tg: FakeBotApi
    dc: GatewayDiscord
    guilds: int = 8
    #: the format every user asks for (Telegram: a saved default; Discord: the option)
    fmt: str = "mp3"
    #: Telegram chat id, or Discord interaction token -> what that user saw
    users: dict[str, Seen] = field(default_factory=dict)
    _tg_read: int = 0
    _dc_read: int = 0

    @staticmethod
    def tg_id(index: int) -> int:
        return 5_000_000 + index

    async def send(self, index: int, data: bytes) -> str:
        """User ``index`` sends a song; returns how the user is known (chat id or token)."""
        name = f"Song {index:04d}.wav"
        if index % 2 == 0:
            person = tg_user(self.tg_id(index), f"User{index}")
            file_id = self.tg.add_file(data)
            audio = {
                "file_id": file_id,
                "file_unique_id": f"u{file_id}",
                "duration": 1,
                "file_name": name,
                "mime_type": "audio/wav",
                "file_size": len(data),
            }
            who = str(person["id"])
            self.users[who] = Seen("telegram", time.monotonic())
            self.tg.send(private_chat(person), person, audio=audio)
            return who
        guild = GUILD_ID + ((index % self.guilds) << 22)
        attachment = self.dc.attachment(name, data, "audio/wav")
        payload = self.dc.interaction(
            2,
            self.dc.stem_command(file=attachment, format=self.fmt),
            user_id=800_000_000_000_000_000 + index,
        )
        payload["guild_id"] = str(guild)
        payload["channel"]["guild_id"] = str(guild)
        payload["authorizing_integration_owners"] = {"0": str(guild)}
        who = str(payload["token"])
        self.users[who] = Seen("discord", time.monotonic())
        await self.dc.dispatch(payload)
        return who

    def read(self) -> dict[str, Seen]:
        """Take in the calls the fakes received since the last read."""
        calls = self.tg.calls
        for call in calls[self._tg_read :]:
            seen = self.users.get(str(_chat(call.params)))
            if seen is None or not tg_is_send(call.method):
                continue
            if seen.ack_s is None:
                seen.ack_s = call.at - seen.sent_at
            seen.edits += call.method.startswith("edit")
            if call.status == 200:
                _final(seen, call.at, str(call.params.get("text") or ""), DONE_TG, 'href="http')
        self._tg_read = len(calls)
        dcalls = self.dc.calls
        for dcall in dcalls[self._dc_read :]:
            parts = dcall.path.strip("/").split("/")
            token = parts[2] if len(parts) > 2 and parts[0] in ("interactions", "webhooks") else ""
            seen = self.users.get(token)
            if seen is None:
                continue
            if seen.ack_s is None:
                seen.ack_s = dcall.at - seen.sent_at
            seen.edits += dcall.method == "PATCH"
            for embed in dcall.json.get("embeds") or []:
                text = embed.get("description") or ""
                _final(seen, dcall.at, text, DONE_DISCORD, "](http")
        self._dc_read = len(dcalls)
        return self.users

    def over(self, who: list[str]) -> int:
        """How many of ``who`` see an outcome (links or a failure)."""
        seen = self.read()
        return sum(seen[w].over for w in who)


def _chat(params: dict[str, Any]) -> int | None:
    raw = params.get("chat_id")
    return int(raw) if raw is not None else None


def _final(seen: Seen, when: float, text: str, done: str, link: str) -> None:
    if text.startswith(done):
        seen.finals += 1
        seen.with_links += link in text
    elif FAILED[0] in text or FAILED[1] in text:
        seen.failed += 1
    else:
        return
    seen.final_at = when if seen.final_at is None else min(seen.final_at, when)


def windows_peak(times: list[float], width: float = 1.0) -> int:
    """The most of ``times`` in any window of ``width`` seconds."""
    times = sorted(times)
    best, lo = 0, 0
    for hi, t in enumerate(times):
        while t - times[lo] >= width:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


def platform_sends(tg: FakeBotApi, dc: FakeDiscord, since: float) -> dict[str, Any]:
    """Sends and edits each fake server received after ``since``: peak per 1 s window, in all
    and (Telegram) per chat, and totals."""
    tg_calls = [c for c in tg.calls if c.at >= since and tg_is_send(c.method)]
    # an interaction's response (its /callback, within 3 s: the deferral) is outside Discord's
    # global limit, and not in the bot's budget either
    dc_calls = [
        c
        for c in dc.calls
        if c.at >= since
        and c.method in ("POST", "PATCH", "DELETE")
        and not c.path.rstrip("/").endswith("/callback")
    ]
    per_chat: dict[int | None, list[float]] = {}
    for c in tg_calls:
        per_chat.setdefault(_chat(c.params), []).append(c.at)
    return {
        "telegram": {
            "sends": sum(not c.method.startswith("edit") for c in tg_calls),
            "edits": sum(c.method.startswith("edit") for c in tg_calls),
            "peak_per_s": windows_peak([c.at for c in tg_calls]),
            "peak_per_chat_per_s": max((windows_peak(v) for v in per_chat.values()), default=0),
            "limit_per_s": 30,
        },
        "discord": {
            "sends": sum(c.method != "PATCH" for c in dc_calls),
            "edits": sum(c.method == "PATCH" for c in dc_calls),
            "peak_per_s": windows_peak([c.at for c in dc_calls]),
            "limit_per_s": 50,
        },
    }


async def wait_ready(
    tg: FakeBotApi, dc: GatewayDiscord, shards: int, within_s: float, alive: Callable[[], None]
) -> None:
    """Until the Telegram bot polls for updates and every Discord shard has identified;
    ``alive()`` raises if a process died meanwhile."""

    def ready() -> bool:
        alive()
        return bool(tg.of("getUpdates")) and dc.identified >= shards

    await until(
        ready, timeout_s=within_s, what="the bots to connect to the fake platforms", every_s=0.05
    )
