"""The Telegram bot's own state in Redis: user defaults, pending choices, message links.

Keys (all prefixed ``stembot:telegram:``, built by shared.keys.telegram):

``prefs:<user>``              hash: model, mode (ask|4|2|6), format, files (1|0), lang (one of
                              shared.i18n.LANGUAGES; absent: Telegram's language_code)
``pending:<chat>:<message>``  a song waiting for its mode button (JSON, 1 h)
``message:<chat>:<message>``  the request id a status message follows (for Cancel)
``active:<user>``             set of the user's request ids not finished yet
``final:<request id>``        what of the final message went out (bots.delivery.Parts)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel
from redis.asyncio import Redis

from shared import keys
from shared.i18n import LANGUAGES
from shared.jobs import REQUEST_TTL_S
from shared.models import MODELS, SIX_STEM_MODEL
from shared.schemas import AudioFormat

PREFIX = keys.TELEGRAM
PENDING_TTL_S = 3600

Mode = Literal["ask", "4", "2", "6"]
MODES: tuple[Mode, ...] = ("ask", "4", "2", "6")
#: The 6-stem mode has its own model; the model setting picks among the 4-stem ones.
FOUR_STEM_MODELS = tuple(m for m in MODELS if m != SIX_STEM_MODEL)
FORMATS = tuple(f.value for f in AudioFormat)
#: The language setting's values besides the languages: back to Telegram's language_code.
AUTO = "auto"


@dataclass(frozen=True)
class Prefs:
    model: str | None = None
    mode: Mode = "ask"
    format: str = "mp3"
    files: bool = True
    #: the language the user chose in /settings; None: their Telegram app's language
    lang: str | None = None


class Pending(BaseModel):
    """A song the bot has answered for but not submitted yet (waiting for a mode)."""

    user_id: int
    chat_id: int
    lang: str
    title: str
    file_id: str | None = None
    file_size: int | None = None
    filename: str | None = None
    url: str | None = None


_key = keys.telegram


class Store:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    async def prefs(self, user_id: int) -> Prefs:
        raw = await self.redis.hgetall(_key("prefs", user_id))  # type: ignore[misc]
        values = {k.decode(): v.decode() for k, v in raw.items()}
        mode = values.get("mode", "ask")
        model = values.get("model")
        fmt = values.get("format", "mp3")
        lang = values.get("lang")
        return Prefs(
            model=model if model in FOUR_STEM_MODELS else None,
            mode=mode if mode in MODES else "ask",
            format=fmt if fmt in FORMATS else "mp3",
            files=values.get("files", "1") == "1",
            lang=lang if lang in LANGUAGES else None,
        )

    async def lang(self, user_id: int) -> str | None:
        """The language the user chose in /settings (None: Telegram's language_code)."""
        raw = await self.redis.hget(_key("prefs", user_id), "lang")  # type: ignore[misc]
        return raw.decode() if raw and raw.decode() in LANGUAGES else None

    async def set_pref(self, user_id: int, name: str, value: str) -> bool:
        """Store one default; False for a name or value we do not offer."""
        allowed: dict[str, tuple[str, ...]] = {
            "model": FOUR_STEM_MODELS,
            "mode": MODES,
            "format": FORMATS,
            "files": ("1", "0"),
            "lang": (*LANGUAGES, AUTO),
        }
        if value not in allowed.get(name, ()):
            return False
        if name == "lang" and value == AUTO:
            await self.redis.hdel(_key("prefs", user_id), name)  # type: ignore[misc]
            return True
        await self.redis.hset(_key("prefs", user_id), name, value)  # type: ignore[misc]
        return True

    async def save_pending(self, chat_id: int, message_id: int, pending: Pending) -> None:
        await self.redis.set(
            _key("pending", chat_id, message_id), pending.model_dump_json(), ex=PENDING_TTL_S
        )

    async def peek_pending(self, chat_id: int, message_id: int) -> Pending | None:
        raw = await self.redis.get(_key("pending", chat_id, message_id))
        return Pending.model_validate_json(raw) if raw else None

    async def take_pending(self, chat_id: int, message_id: int) -> Pending | None:
        """The pending song, removed atomically: a double tap starts one job."""
        raw = await self.redis.getdel(_key("pending", chat_id, message_id))
        return Pending.model_validate_json(raw) if raw else None

    async def link(self, user_id: int, chat_id: int, message_id: int, request_id: str) -> None:
        """Remember which request a status message follows, and that the user waits for it."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(_key("message", chat_id, message_id), request_id, ex=REQUEST_TTL_S)
            pipe.sadd(_key("active", user_id), request_id)
            pipe.expire(_key("active", user_id), REQUEST_TTL_S)
            await pipe.execute()

    async def request_of(self, chat_id: int, message_id: int) -> str | None:
        raw = await self.redis.get(_key("message", chat_id, message_id))
        return raw.decode() if raw else None

    async def active(self, user_id: int) -> list[str]:
        members = await self.redis.smembers(_key("active", user_id))  # type: ignore[misc]
        return sorted(m.decode() for m in members)

    async def forget(self, user_id: int, *request_ids: str) -> None:
        if request_ids:
            await self.redis.srem(_key("active", user_id), *request_ids)  # type: ignore[misc]

    async def erase_user(self, user_id: int, request_ids: Iterable[str]) -> int:
        """/forget: the user's defaults (their language too), songs waiting for a mode, the
        links from status messages to their requests and what of those went out. Returns the
        keys deleted."""
        rids = set(request_ids)
        doomed = [_key("prefs", user_id), _key("active", user_id)]
        doomed += [_key("final", rid) for rid in sorted(rids)]
        async for name in self.redis.scan_iter(match=_key("message", "*"), count=1000):
            if (await self.redis.get(name) or b"").decode() in rids:
                doomed.append(name.decode())
        async for name in self.redis.scan_iter(match=_key("pending", "*"), count=1000):
            raw = await self.redis.get(name)
            if raw and Pending.model_validate_json(raw).user_id == user_id:
                doomed.append(name.decode())
        return int(await self.redis.delete(*doomed))
