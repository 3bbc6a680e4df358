"""A local stand-in for the Telegram Bot API, for python-telegram-bot's real Application.

It serves updates through ``getUpdates`` (long polling), files through the file URL (or as
local paths, like a ``--local`` Bot API server), answers the methods the bot calls, keeps each
chat as its user sees it (messages, their current text and buttons, every edit), records every
call, and answers 429 with ``retry_after`` when told to. Tests wait on its recorded calls.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import BodyPartReader, web

from shared.redis_server import free_port
from tests.support.waiting import until

TOKEN = "123456:TEST-token-that-must-never-be-logged"
BOT_USER = {"id": 123456, "is_bot": True, "first_name": "Stems", "username": "stems_test_bot"}
#: Parameters python-telegram-bot sends JSON-encoded inside form fields.
_JSON_PARAMS = {
    "reply_markup",
    "reply_parameters",
    "link_preview_options",
    "allowed_updates",
    "commands",
    "scope",
    "media",
}
T = TypeVar("T")


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    at: float
    status: int = 200
    #: multipart files: field name -> (filename, bytes)
    files: dict[str, tuple[str, bytes]] = field(default_factory=dict)


@dataclass
class Shown:
    """One message the bot sent, as the user sees it now, and how it got there."""

    chat_id: int
    message_id: int
    text: str | None
    markup: dict[str, Any] | None
    reply_to: int | None
    audio: tuple[str, bytes, str | None] | None = None  # filename, data, title
    #: the album it is part of (sendMediaGroup)
    media_group_id: str | None = None
    #: (time, text, markup) of the message as sent and after each successful edit
    versions: list[tuple[float, str | None, dict[str, Any] | None]] = field(default_factory=list)

    @property
    def buttons(self) -> list[str]:
        return [b["text"] for row in (self.markup or {}).get("inline_keyboard", []) for b in row]

    @property
    def texts(self) -> list[str]:
        return [t for _, t, _ in self.versions if t is not None]

    def button_data(self, label: str) -> str:
        for row in (self.markup or {}).get("inline_keyboard", []):
            for button in row:
                if button["text"] == label:
                    return str(button["callback_data"])
        raise AssertionError(f"no button {label!r} in {self.buttons}")


def user(uid: int, name: str = "Ana", lang: str | None = "en") -> dict[str, Any]:
    found: dict[str, Any] = {"id": uid, "is_bot": False, "first_name": name}
    if lang:
        found["language_code"] = lang
    return found


def private_chat(of: dict[str, Any]) -> dict[str, Any]:
    return {"id": of["id"], "type": "private", "first_name": of["first_name"]}


def group_chat(chat_id: int = -100200300) -> dict[str, Any]:
    return {"id": chat_id, "type": "supergroup", "title": "Band"}


class FakeBotApi:
    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.calls: list[Call] = []
        self.file_downloads: list[str] = []
        self.chats: dict[int, dict[str, Any]] = {}
        self.shown: dict[tuple[int, int], Shown] = {}
        self.local_files = False
        #: chat id -> {user id: "creator" | "administrator"}; everyone else is a "member"
        self.chat_admins: dict[int, dict[int, str]] = {}
        self.users: dict[int, dict[str, Any]] = {}
        self._updates: list[dict[str, Any]] = []
        self._files: dict[str, tuple[bytes | Path, int | None]] = {}
        self._floods: dict[str, list[int]] = {}
        self._refusals: dict[str, list[tuple[int, str]]] = {}
        #: Button URLs to refuse as Telegram refuses one it does not take ("Wrong HTTP URL");
        #: a Mini App's must be HTTPS and a link's http(s) or tg whatever this says.
        self.bad_url: Callable[[str], bool] = lambda url: False
        self._ids = itertools.count(1)
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self._closing = False

    # --- server ----------------------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application(client_max_size=200 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._api)
        app.router.add_get("/file/bot{token}/{path:.+}", self._file)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        self._closing = True  # let held long polls answer now
        await self._notify()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _api(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != TOKEN:
            return _error(401, "Unauthorized")
        method = request.match_info["method"]
        params: dict[str, Any] = {}
        files: dict[str, tuple[str, bytes]] = {}
        for name, value in (await _form(request)).items():
            if isinstance(value, tuple):
                files[name] = value
            elif name in _JSON_PARAMS:
                params[name] = json.loads(value)
            else:
                params[name] = value
        call = Call(method, params, time.monotonic(), files=files)
        flood = self._floods.get(method)
        if flood:
            retry_after = flood.pop(0)
            call.status = 429
            await self._record(call)
            return _error(429, f"Too Many Requests: retry after {retry_after}", retry_after)
        refusal = self._refusals.get(method)
        if refusal:
            call.status, description = refusal.pop(0)
            await self._record(call)
            return _error(call.status, description)
        if method == "getUpdates":
            return await self._get_updates(call)
        handler = getattr(self, f"_m_{method}", None)
        if handler is None:
            call.status = 404
            await self._record(call)
            return _error(404, "Not Found: method not found")
        status, result = handler(call)
        call.status = status
        await self._record(call)
        if status != 200:
            return _error(status, str(result))
        return web.json_response({"ok": True, "result": result})

    async def _get_updates(self, call: Call) -> web.Response:
        offset = int(call.params.get("offset") or 0)
        timeout = float(call.params.get("timeout") or 0)
        self._updates = [u for u in self._updates if u["update_id"] >= offset]
        await self._record(call)
        if not self._updates and timeout > 0:
            async with self._changed:
                try:
                    async with asyncio.timeout(timeout):
                        await self._changed.wait_for(lambda: bool(self._updates) or self._closing)
                except TimeoutError:
                    pass
        return web.json_response({"ok": True, "result": self._updates[:100]})

    async def _file(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != TOKEN:
            return web.Response(status=401)
        file_id = request.match_info["path"].rsplit("/", 1)[-1]
        self.file_downloads.append(file_id)
        data, _ = self._files[file_id]
        return web.Response(body=data if isinstance(data, bytes) else data.read_bytes())

    async def _record(self, call: Call) -> None:
        async with self._changed:
            self.calls.append(call)
            self._changed.notify_all()

    # --- Bot API methods ----------------------------------------------------------------------

    def _m_getMe(self, call: Call) -> tuple[int, Any]:
        return 200, BOT_USER

    def _m_deleteWebhook(self, call: Call) -> tuple[int, Any]:
        return 200, True

    _m_setWebhook = _m_setMyCommands = _m_answerCallbackQuery = _m_deleteWebhook

    def _m_sendMessage(self, call: Call) -> tuple[int, Any]:
        chat_id = int(call.params["chat_id"])
        wrong = self._wrong_buttons(call.params.get("reply_markup"), chat_id)
        if wrong:
            return 400, wrong
        shown = self._new_shown(chat_id, call, text=call.params["text"])
        return 200, self._as_message(shown)

    def _m_editMessageText(self, call: Call) -> tuple[int, Any]:
        key = (int(call.params["chat_id"]), int(call.params["message_id"]))
        shown = self.shown.get(key)
        if shown is None:
            return 400, "Bad Request: message to edit not found"
        text, markup = call.params["text"], call.params.get("reply_markup")
        wrong = self._wrong_buttons(markup, shown.chat_id)
        if wrong:
            return 400, wrong
        if (text, markup) == (shown.text, shown.markup):
            return 400, "Bad Request: message is not modified: specified new message content "
        shown.text, shown.markup = text, markup
        shown.versions.append((call.at, text, markup))
        return 200, self._as_message(shown)

    def _m_editMessageReplyMarkup(self, call: Call) -> tuple[int, Any]:
        key = (int(call.params["chat_id"]), int(call.params["message_id"]))
        shown = self.shown.get(key)
        if shown is None:
            return 400, "Bad Request: message to edit not found"
        markup = call.params.get("reply_markup")
        wrong = self._wrong_buttons(markup, shown.chat_id)
        if wrong:
            return 400, wrong
        if markup == shown.markup:
            return 400, "Bad Request: message is not modified: specified new message content "
        shown.markup = markup
        shown.versions.append((call.at, shown.text, markup))
        return 200, self._as_message(shown)

    def _m_sendAudio(self, call: Call) -> tuple[int, Any]:
        chat_id = int(call.params["chat_id"])
        filename, data = call.files["audio"]
        shown = self._new_shown(chat_id, call, text=None)
        shown.audio = (filename, data, call.params.get("title"))
        message = self._as_message(shown)
        message["audio"] = {"file_id": f"a{shown.message_id}", "file_unique_id": "u", "duration": 1}
        return 200, message

    def _m_sendMediaGroup(self, call: Call) -> tuple[int, Any]:
        """An album: 2-10 files of one kind (audio here), each a message of the same group."""
        chat_id = int(call.params["chat_id"])
        media: list[dict[str, Any]] = call.params["media"]
        if not 2 <= len(media) <= 10:
            return 400, "Bad Request: wrong number of media in the album"
        if any(item["type"] != "audio" for item in media):
            return 400, "Bad Request: audio can be grouped only with audio"
        group = str(next(self._ids))
        messages = []
        for item in media:
            filename, data = call.files[item["media"].removeprefix("attach://")]
            shown = self._new_shown(chat_id, call, text=None)
            shown.audio = (filename, data, item.get("title"))
            shown.media_group_id = group
            message = self._as_message(shown)
            message["media_group_id"] = group
            message["audio"] = {
                "file_id": f"a{shown.message_id}",
                "file_unique_id": "u",
                "duration": 1,
            }
            messages.append(message)
        return 200, messages

    def _m_getFile(self, call: Call) -> tuple[int, Any]:
        file_id = str(call.params["file_id"])
        if file_id not in self._files:
            return 400, "Bad Request: invalid file_id"
        data, size = self._files[file_id]
        if isinstance(data, Path) and self.local_files:
            path = str(data.resolve())
        else:
            path = f"music/{file_id}"
        found = {"file_id": file_id, "file_unique_id": f"u{file_id}", "file_path": path}
        return 200, found | ({"file_size": size} if size is not None else {})

    def _m_getChatMember(self, call: Call) -> tuple[int, Any]:
        chat_id, user_id = int(call.params["chat_id"]), int(call.params["user_id"])
        if chat_id not in self.chats:
            return 400, "Bad Request: chat not found"
        found = self.users.get(user_id, {"id": user_id, "is_bot": False, "first_name": "?"})
        status = self.chat_admins.get(chat_id, {}).get(user_id, "member")
        member: dict[str, Any] = {"status": status, "user": found}
        if status == "creator":
            member["is_anonymous"] = False
        elif status == "administrator":
            rights = (
                "can_be_edited can_manage_chat can_delete_messages can_manage_video_chats "
                "can_restrict_members can_promote_members can_change_info can_invite_users "
                "can_post_stories can_edit_stories can_delete_stories"
            )
            member |= dict.fromkeys(rights.split(), False) | {"is_anonymous": False}
        return 200, member

    def _wrong_buttons(self, markup: dict[str, Any] | None, chat_id: int) -> str | None:
        """What Telegram says of buttons it does not take: a Mini App button (``web_app``)
        needs an HTTPS URL and a private chat; a link button an http(s) or tg URL."""
        for row in (markup or {}).get("inline_keyboard", []):
            for button in row:
                web_app = button.get("web_app")
                if web_app is not None:
                    if not str(web_app.get("url", "")).startswith("https://"):
                        return "Bad Request: BUTTON_URL_INVALID"
                    if chat_id < 0:
                        return "Bad Request: BUTTON_TYPE_INVALID"
                data = button.get("callback_data")
                if data is not None and not 1 <= len(str(data).encode()) <= 64:
                    return "Bad Request: BUTTON_DATA_INVALID"  # 1-64 bytes
                url = str(button.get("url") or (web_app or {}).get("url") or "")
                if "url" in button and not url.startswith(("http://", "https://", "tg://")):
                    return "Bad Request: BUTTON_URL_INVALID"
                if url and self.bad_url(url):
                    return f"Bad Request: inline keyboard button URL '{url}' is invalid"
        return None

    def _new_shown(self, chat_id: int, call: Call, text: str | None) -> Shown:
        reply = call.params.get("reply_parameters") or {}
        shown = Shown(
            chat_id,
            next(self._ids),
            text,
            call.params.get("reply_markup"),
            reply.get("message_id"),
        )
        shown.versions.append((call.at, text, shown.markup))
        self.shown[(chat_id, shown.message_id)] = shown
        return shown

    def _as_message(self, shown: Shown) -> dict[str, Any]:
        message: dict[str, Any] = {
            "message_id": shown.message_id,
            "date": int(time.time()),
            "chat": self.chats[shown.chat_id],
            "from": BOT_USER,
        }
        if shown.text is not None:
            message["text"] = shown.text
        if shown.markup:
            message["reply_markup"] = shown.markup
        return message

    # --- the user's side ----------------------------------------------------------------------

    def add_file(self, data: bytes | Path, size: int | None = None) -> str:
        """A file users can send; ``size`` is what Telegram declares (default: the real one)."""
        file_id = f"f{next(self._ids)}"
        real = len(data) if isinstance(data, bytes) else data.stat().st_size
        self._files[file_id] = (data, real if size is None else size)
        return file_id

    def message(
        self,
        chat: dict[str, Any],
        sender: dict[str, Any],
        text: str | None = None,
        reply_to: dict[str, Any] | None = None,
        **media: dict[str, Any],
    ) -> dict[str, Any]:
        """A user's message (text, and/or audio=/voice=/video=/document=), not sent yet."""
        self.chats[chat["id"]] = chat
        self.users[sender["id"]] = sender
        message: dict[str, Any] = {
            "message_id": next(self._ids),
            "date": int(time.time()),
            "chat": chat,
            "from": sender,
            **media,
        }
        if text is not None:
            message["text"] = text
            if text.startswith("/"):
                command = text.split()[0]
                message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(command)}]
        if reply_to is not None:
            message["reply_to_message"] = reply_to
        return message

    def send(
        self,
        chat: dict[str, Any],
        sender: dict[str, Any],
        text: str | None = None,
        reply_to: dict[str, Any] | None = None,
        **media: dict[str, Any],
    ) -> dict[str, Any]:
        """The user sends a message; the bot gets it from getUpdates."""
        message = self.message(chat, sender, text, reply_to, **media)
        self._push({"message": message})
        return message

    def press(self, sender: dict[str, Any], shown: Shown, label: str) -> str:
        """The user taps a button of a bot message; returns the callback query id."""
        query_id = str(next(self._ids))
        query = {
            "id": query_id,
            "from": sender,
            "chat_instance": "ci",
            "data": shown.button_data(label),
            "message": self._as_message(shown),
        }
        self._push({"callback_query": query})
        return query_id

    def update_json(self, **update: Any) -> dict[str, Any]:
        return {"update_id": next(self._ids), **update}

    def _push(self, update: dict[str, Any]) -> None:
        self._updates.append(self.update_json(**update))
        asyncio.get_running_loop().create_task(self._notify())

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    def refuse(self, method: str, status: int, description: str) -> None:
        """Answer the next call of ``method`` with this error (e.g. 413 Request Entity Too
        Large, which Telegram's servers answer to a request over their size limit)."""
        self._refusals.setdefault(method, []).append((status, description))

    def flood(self, method: str, retry_after: int = 1, times: int = 1) -> None:
        """Answer the next ``times`` calls of ``method`` with 429 Too Many Requests."""
        self._floods.setdefault(method, []).extend([retry_after] * times)

    # --- what tests look at -------------------------------------------------------------------

    def of(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    def messages(self, chat_id: int) -> list[Shown]:
        return [s for (c, _), s in sorted(self.shown.items()) if c == chat_id]

    def reply_to(self, message: dict[str, Any]) -> Shown | None:
        """The bot's answer to one of the user's messages: quoting it, or the next text."""
        chat_id, message_id = message["chat"]["id"], message["message_id"]
        for shown in self.messages(chat_id):
            if shown.audio is None and shown.message_id > message_id:
                if shown.reply_to in (None, message_id):
                    return shown
        return None

    def toasts(self, query_id: str) -> list[str]:
        return [
            str(c.params.get("text", ""))
            for c in self.of("answerCallbackQuery")
            if c.params.get("callback_query_id") == query_id
        ]

    async def wait_for(
        self, check: Callable[[], T | None], within: float = 30, what: str = ""
    ) -> T:
        """Wait until ``check()`` is truthy (and return it)."""
        return await until(check, timeout_s=within, what=what)


def is_final(shown: Shown) -> bool:
    """The status message shows an outcome (links, a failure, or cancelled): no Cancel
    button any more (a done one may have the player's)."""
    callbacks = [
        b.get("callback_data")
        for row in (shown.markup or {}).get("inline_keyboard", [])
        for b in row
    ]
    return "cancel" not in callbacks and any(m in (shown.text or "") for m in ("✅", "❌", "🚫"))


def audio(api: FakeBotApi, path: Path, mime: str = "audio/mpeg") -> dict[str, Any]:
    return {
        "file_id": api.add_file(path.read_bytes()),
        "file_unique_id": path.name,
        "duration": 1,
        "file_name": path.name,
        "mime_type": mime,
        "file_size": path.stat().st_size,
    }


def voice(api: FakeBotApi, path: Path) -> dict[str, Any]:
    data = path.read_bytes()
    return {
        "file_id": api.add_file(data),
        "file_unique_id": path.name,
        "duration": 1,
        "mime_type": "audio/ogg",
        "file_size": len(data),
    }


def document(
    api: FakeBotApi, data: bytes | Path, name: str, mime: str, size: int | None = None
) -> dict[str, Any]:
    """A file sent as a document; ``size`` is what Telegram declares for it."""
    file_id = api.add_file(data, size)
    return {
        "file_id": file_id,
        "file_unique_id": f"u{file_id}",
        "file_name": name,
        "mime_type": mime,
        "file_size": api._files[file_id][1],
    }


async def _form(request: web.Request) -> dict[str, str | tuple[str, bytes]]:
    """The form's fields; files as (name, bytes). Multipart is read part by part in memory:
    request.post() spools files to temporary files that leak when the bot hangs up
    mid-request (a cancelled bot at the end of a test)."""
    if not request.content_type.startswith("multipart/"):
        return {k: str(v) for k, v in (await request.post()).items()}
    fields: dict[str, str | tuple[str, bytes]] = {}
    reader = await request.multipart()
    while (part := await reader.next()) is not None:
        assert isinstance(part, BodyPartReader)
        data = await part.read()
        if part.filename is not None:
            fields[part.name or ""] = (part.filename, bytes(data))
        else:
            fields[part.name or ""] = bytes(data).decode(part.get_charset(default="utf-8"))
    return fields


def _error(status: int, description: str, retry_after: int | None = None) -> web.Response:
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if retry_after is not None:
        body["parameters"] = {"retry_after": retry_after}
    return web.json_response(body, status=status)
