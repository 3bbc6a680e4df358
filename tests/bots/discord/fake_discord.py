"""A local stand-in for Discord's REST API and CDN, for the real discord.py client.

It keeps the messages the bot creates and edits, records every call, and builds the gateway
payloads (INTERACTION_CREATE) Discord would send, which the tests feed through the client's
connection state.
"""

from __future__ import annotations

import itertools
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import discord
from aiohttp import BodyPartReader, web

from tests.support.waiting import until

APP_ID = 700000000000000001
BOT_ID = 700000000000000002
GUILD_ID = 700000000000000003
CHANNEL_ID = 700000000000000004
USER_ID = 700000000000000005
OTHER_ID = 700000000000000006
STEM_COMMAND_ID = 700000000000000007
MENU_COMMAND_ID = 700000000000000008
ALL_PERMISSIONS = discord.Permissions.all().value
EPHEMERAL = 64


def user(user_id: int, name: str) -> dict[str, Any]:
    return {"id": str(user_id), "username": name, "discriminator": "0", "avatar": None}


@dataclass
class Call:
    method: str
    path: str
    json: dict[str, Any]
    files: dict[str, bytes] = field(default_factory=dict)
    at: float = field(default_factory=time.monotonic)


class FakeDiscord:
    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.messages: dict[int, dict[str, Any]] = {}
        self.originals: dict[str, int] = {}  # interaction token -> message id
        self.pressed: dict[str, int] = {}  # a component interaction's token -> its message id
        self.expired_tokens: set[str] = set()
        #: Answer this many of the next edits (PATCH) for which ``rate_limit_when`` is true
        #: with 429 Too Many Requests, asking to wait ``rate_limit_s``: Discord's own 429 (JSON
        #: body, a Via header), or with ``rate_limit_by_cloudflare`` Cloudflare's (a text body
        #: and Retry-After only).
        self.rate_limits = 0
        self.rate_limit_when: Callable[[Call], bool] = lambda call: True
        self.rate_limit_s = 0.3
        self.rate_limit_by_cloudflare = False
        self.limited: list[Call] = []
        #: Link button URLs to answer as Discord does one it does not take ("Not a well formed
        #: URL"); the scheme must be http or https whatever this says.
        self.bad_url: Callable[[str], bool] = lambda url: False
        self.cdn: dict[str, bytes] = {}
        #: Names of the attachments the bot downloaded from the CDN.
        self.cdn_fetches: list[str] = []
        self.url = ""
        self._ids = itertools.count(800000000000000000)
        self._seq = itertools.count()
        self._runner: web.AppRunner | None = None

    # --- lifecycle ---------------------------------------------------------------------

    async def start(self) -> str:
        app = web.Application(client_max_size=200 * 1024 * 1024)
        app.router.add_route("*", "/api/v10/{tail:.*}", self._api)
        app.router.add_get("/cdn/{name}", self._cdn)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    # --- what tests look at ------------------------------------------------------------

    def next_id(self) -> int:
        return next(self._ids)

    async def wait_for(self, predicate: Any, within_s: float = 30.0, what: str = "") -> Any:
        """Wait until ``predicate(self)`` is truthy; return its value."""
        return await until(lambda: predicate(self), timeout_s=within_s, what=what)

    def calls_to(self, method: str, fragment: str) -> list[Call]:
        return [c for c in self.calls if c.method == method and fragment in c.path]

    def original(self, token: str) -> dict[str, Any] | None:
        mid = self.originals.get(token)
        return self.messages.get(mid) if mid is not None else None

    def followups(self, token: str) -> list[Call]:
        return self.calls_to("POST", f"/webhooks/{APP_ID}/{token}")

    # --- gateway payloads ----------------------------------------------------------------

    def interaction(
        self,
        kind: int,
        data: dict[str, Any],
        *,
        user_id: int = USER_ID,
        guild: bool = True,
        app_permissions: int = ALL_PERMISSIONS,
        member_permissions: int = 0,
        message: dict[str, Any] | None = None,
        size_limit: int = 10 * 1024 * 1024,
        locale: str = "en-US",
    ) -> dict[str, Any]:
        """An INTERACTION_CREATE's payload; ``locale`` is the user's Discord client language."""
        # a snowflake of now (discord.py reads the token's age from it), unique even for two
        # interactions in the same millisecond (the low bits are Discord's own counter)
        iid = discord.utils.time_snowflake(discord.utils.utcnow()) + next(self._seq) % 4096
        payload: dict[str, Any] = {
            "id": str(iid),
            "application_id": str(APP_ID),
            "type": kind,
            "token": f"token-{iid}",
            "version": 1,
            "data": data,
            "locale": locale,
            "channel_id": str(CHANNEL_ID),
            "app_permissions": str(app_permissions),
            "entitlements": [],
            "attachment_size_limit": size_limit,
            "authorizing_integration_owners": {"0": str(GUILD_ID)},
        }
        who = user(user_id, f"user{user_id % 100}")
        if guild:
            payload["guild_id"] = str(GUILD_ID)
            payload["guild_locale"] = "en-US"
            payload["context"] = 0
            payload["channel"] = {
                "id": str(CHANNEL_ID),
                "type": 0,
                "guild_id": str(GUILD_ID),
                "name": "music",
                "position": 0,
                "permission_overwrites": [],
                "nsfw": False,
                "parent_id": None,
            }
            payload["member"] = {
                "user": who,
                "roles": [],
                "joined_at": "2026-01-01T00:00:00+00:00",
                "deaf": False,
                "mute": False,
                "flags": 0,
                "permissions": str(member_permissions),
            }
        else:
            payload["context"] = 1
            payload["channel"] = {"id": str(CHANNEL_ID), "type": 1, "recipients": [who]}
            payload["user"] = who
        if message is not None:
            payload["message"] = message
            self.pressed[payload["token"]] = int(message["id"])
        return payload

    def attachment(self, name: str, data: bytes, content_type: str | None) -> dict[str, Any]:
        aid = self.next_id()
        self.cdn[f"{aid}-{name}"] = data
        att: dict[str, Any] = {
            "id": str(aid),
            "filename": name,
            "size": len(data),
            "url": f"{self.url}/cdn/{aid}-{name}",
            "proxy_url": f"{self.url}/cdn/{aid}-{name}",
        }
        if content_type:
            att["content_type"] = content_type
        return att

    def stem_command(
        self,
        *,
        file: dict[str, Any] | None = None,
        url: str | None = None,
        **choices: str,
    ) -> dict[str, Any]:
        options: list[dict[str, Any]] = []
        resolved: dict[str, Any] = {}
        if file is not None:
            options.append({"name": "file", "type": 11, "value": file["id"]})
            resolved["attachments"] = {file["id"]: file}
        if url is not None:
            options.append({"name": "url", "type": 3, "value": url})
        options += [{"name": k, "type": 3, "value": v} for k, v in choices.items()]
        data: dict[str, Any] = {
            "id": str(STEM_COMMAND_ID),
            "name": "stem",
            "type": 1,
            "options": options,
        }
        if resolved:
            data["resolved"] = resolved
        return data

    def split_menu(self, message: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": str(MENU_COMMAND_ID),
            "name": "Split stems",
            "type": 3,
            "target_id": message["id"],
            "resolved": {"messages": {message["id"]: message}},
        }

    def user_message(
        self, content: str = "", attachments: list[dict[str, Any]] | None = None
    ) -> dict[str, Any]:
        return self._message(
            CHANNEL_ID, content, author=user(USER_ID, "user5"), attachments=attachments
        )

    def slash(self, name: str, sub: str | None = None, **values: Any) -> dict[str, Any]:
        """A slash command, or a subcommand of a group, with its options: a str is a string
        option, an int an integer, a :func:`user` dict a user (resolved, as Discord sends it)."""
        options: list[dict[str, Any]] = []
        resolved: dict[str, Any] = {}
        for key, value in values.items():
            if isinstance(value, dict):
                options.append({"name": key, "type": 6, "value": value["id"]})
                resolved.setdefault("users", {})[value["id"]] = value
            elif isinstance(value, int):
                options.append({"name": key, "type": 4, "value": value})
            else:
                options.append({"name": key, "type": 3, "value": str(value)})
        if sub is not None:
            options = [{"name": sub, "type": 1, "options": options}]
        data: dict[str, Any] = {
            "id": str(self.next_id()),
            "name": name,
            "type": 1,
            "options": options,
        }
        if resolved:
            data["resolved"] = resolved
        return data

    def button(self, custom_id: str) -> dict[str, Any]:
        return {"custom_id": custom_id, "component_type": 2}

    def select(self, custom_id: str, values: list[str]) -> dict[str, Any]:
        """A choice in a select menu (a string select)."""
        return {"custom_id": custom_id, "component_type": 3, "values": values}

    # --- the API -----------------------------------------------------------------------

    def _message(
        self,
        channel_id: int,
        content: str = "",
        *,
        author: dict[str, Any] | None = None,
        attachments: list[dict[str, Any]] | None = None,
        flags: int = 0,
    ) -> dict[str, Any]:
        mid = self.next_id()
        return {
            "id": str(mid),
            "channel_id": str(channel_id),
            "author": author or {**user(BOT_ID, "stembot"), "bot": True},
            "content": content,
            "timestamp": discord.utils.utcnow().isoformat(),
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "attachments": attachments or [],
            "embeds": [],
            "components": [],
            "pinned": False,
            "type": 0,
            "flags": flags,
        }

    async def _body(self, request: web.Request) -> tuple[dict[str, Any], dict[str, bytes]]:
        files: dict[str, bytes] = {}
        if request.content_type.startswith("multipart/"):
            body: dict[str, Any] = {}
            reader = await request.multipart()
            async for part in reader:
                if not isinstance(part, BodyPartReader):
                    continue
                data = await part.read()
                if part.name == "payload_json":
                    body = json.loads(data)
                else:
                    files[part.filename or part.name or "file"] = bytes(data)
            return body, files
        if request.can_read_body:
            return await request.json(), files
        return {}, files

    async def _api(self, request: web.Request) -> web.StreamResponse:
        body, files = await self._body(request)
        path = "/" + request.match_info["tail"]
        call = Call(request.method, path, body, files)
        if request.method == "PATCH" and self.rate_limits > 0 and self.rate_limit_when(call):
            self.rate_limits -= 1
            self.limited.append(call)
            retry_after = str(math.ceil(self.rate_limit_s))
            if self.rate_limit_by_cloudflare:
                headers = {"Retry-After": retry_after}
                return web.Response(status=429, text="error code: 1015", headers=headers)
            wait = self.rate_limit_s
            body = {"message": "You are being rate limited.", "retry_after": wait, "global": False}
            limited = _json(body, status=429)
            limited.headers["Via"] = "1.1 google"  # Discord's own 429s (not a Cloudflare ban)
            limited.headers["Retry-After"] = retry_after
            limited.headers["X-RateLimit-Scope"] = "user"
            return limited
        self.calls.append(call)
        wrong = self._wrong_components(body) if isinstance(body, dict) else None
        if wrong is not None:
            errors = {
                "components": {"_errors": [{"code": "URL_TYPE_INVALID_URL", "message": wrong}]}
            }
            return _json({"message": "Invalid Form Body", "code": 50035, "errors": errors}, 400)
        return self._answer(request.method, path.strip("/").split("/"), body, files)

    def _wrong_components(self, body: dict[str, Any]) -> str | None:
        """What Discord says of a button it does not take: a link button (style 5) has an
        http(s) URL and no custom id; any other has a custom id. A select menu has a custom id,
        1 to 25 options and 0 <= min_values <= max_values <= its options."""
        for row in body.get("components") or []:
            for item in row.get("components", []):
                if item.get("type") == 3:
                    options = item.get("options") or []
                    low, high = item.get("min_values", 1), item.get("max_values", 1)
                    if not item.get("custom_id") or not 1 <= len(options) <= 25:
                        return "A select menu needs a custom id and 1 to 25 options"
                    if not 0 <= low <= high <= len(options):
                        return "Invalid min_values or max_values"
                    continue
                if item.get("type") != 2:
                    continue
                if item.get("style") != 5:
                    if not item.get("custom_id"):
                        return "A custom id is required"
                    continue
                url = str(item.get("url") or "")
                if "custom_id" in item or not url.startswith(("http://", "https://")):
                    return "Scheme must be one of ('http', 'https')."
                if self.bad_url(url):
                    return "Not a well formed URL."
        return None

    def _answer(
        self, method: str, parts: list[str], body: Any, files: dict[str, bytes]
    ) -> web.StreamResponse:
        match (method, parts):
            case ("GET", ["users", "@me"]):
                return _json({**user(BOT_ID, "stembot"), "bot": True})
            case ("GET", ["oauth2", "applications", "@me"]):
                return _json(
                    {
                        "id": str(APP_ID),
                        "name": "stembot",
                        "description": "",
                        "icon": None,
                        "bot_public": True,
                        "bot_require_code_grant": False,
                        "owner": user(USER_ID, "owner"),
                        "verify_key": "00",
                        "flags": 0,
                    }
                )
            case ("PUT", ["applications", _, *rest]):
                del rest
                commands: list[dict[str, Any]] = list(body)
                extra = {"application_id": str(APP_ID), "version": "1"}
                made = [
                    {"description": "", **c, **extra, "id": str(self.next_id())} for c in commands
                ]
                return _json(made)
            case ("POST", ["interactions", iid, token, "callback"]):
                return self._callback(iid, token, body)
            case (_, ["webhooks", _, token, *rest]):
                if token in self.expired_tokens:
                    return _json({"message": "Invalid Webhook Token", "code": 50027}, status=401)
                return self._webhook(method, token, rest, body, files)
            case ("PATCH", ["channels", _, "messages", mid]):
                message = self.messages.get(int(mid))
                if message is None:
                    return _json({"message": "Unknown Message", "code": 10008}, status=404)
                self._apply(message, body, files)
                return _json(message)
            case ("POST", ["channels", cid, "messages"]):
                message = self._message(int(cid))
                self._apply(message, body, files)
                self.messages[int(message["id"])] = message
                return _json(message)
        return _json({"message": "404: Not Found", "code": 0}, status=404)

    def _callback(self, iid: str, token: str, body: dict[str, Any]) -> web.Response:
        kind = body["type"]
        data = body.get("data") or {}
        flags = int(data.get("flags") or 0)
        resource: dict[str, Any] = {"type": kind}
        if kind in (4, 5):  # a message (or "thinking…") as the response
            message = self._message(CHANNEL_ID, flags=flags | (128 if kind == 5 else 0))
            self._apply(message, data, {})
            self.messages[int(message["id"])] = message
            self.originals[token] = int(message["id"])
            resource["message"] = message
        elif kind == 7 and token in self.pressed:  # the pressed button's message is updated
            pressed = self.messages.get(self.pressed[token])
            if pressed is not None:
                self._apply(pressed, data, {})
        return _json(
            {
                "interaction": {
                    "id": iid,
                    "type": 2,
                    "response_message_loading": kind == 5,
                    "response_message_ephemeral": bool(flags & EPHEMERAL),
                },
                "resource": resource,
            }
        )

    def _webhook(
        self,
        method: str,
        token: str,
        rest: list[str],
        body: dict[str, Any],
        files: dict[str, bytes],
    ) -> web.Response:
        if not rest:  # a followup message
            message = self._message(CHANNEL_ID, flags=int(body.get("flags") or 0))
            self._apply(message, body, files)
            self.messages[int(message["id"])] = message
            return _json(message)
        mid = self.originals.get(token) if rest[-1] == "@original" else int(rest[-1])
        found = self.messages.get(mid) if mid is not None else None
        if found is None:
            return _unknown_message()
        message = found
        if message is None:
            return _unknown_message()
        if method == "DELETE":
            del self.messages[int(message["id"])]
            return web.Response(status=204)
        if method == "PATCH":
            self._apply(message, body, files)
        return _json(message)

    def _apply(
        self, message: dict[str, Any], body: dict[str, Any], files: dict[str, bytes]
    ) -> None:
        for key in ("content", "embeds", "components"):
            if key in body:
                message[key] = (
                    body[key] if body[key] is not None else ([] if key != "content" else "")
                )
        if files or "attachments" in body:
            message["attachments"] = [
                {
                    "id": str(self.next_id()),
                    "filename": a.get("filename", ""),
                    "size": len(files.get(a.get("filename", ""), b"")),
                    "url": "",
                    "proxy_url": "",
                }
                for a in body.get("attachments", [])
            ]
            message["files"] = sorted(files)
        message["flags"] = int(message.get("flags", 0)) & ~128  # no longer "thinking"
        message["edited_timestamp"] = discord.utils.utcnow().isoformat()

    async def _cdn(self, request: web.Request) -> web.Response:
        data = self.cdn.get(request.match_info["name"])
        self.cdn_fetches.append(request.match_info["name"])
        if data is None:
            return web.Response(status=404)
        return web.Response(body=data, content_type="application/octet-stream")


def _unknown_message() -> web.Response:
    return _json({"message": "Unknown Message", "code": 10008}, status=404)


def _json(data: Any, status: int = 200) -> web.Response:
    """JSON with exactly the content type discord.py parses as JSON."""
    return web.Response(
        body=json.dumps(data).encode(), status=status, content_type="application/json"
    )
