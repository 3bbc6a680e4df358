"""The HTTP API's errors and texts for people, in the client's language.

Every error body is ``{"error": {"code": ..., "message": ...}}``: the code is stable, the
message is for a person, in the language negotiated from ``Accept-Language`` (shared.i18n;
English without one), and every API response names that language in ``Content-Language``.
A request's final error is stored as its code and params (``error_code``, ``error_params`` as
JSON, with the English text in ``error_message`` for logs and older readers) and rendered in
the reader's language each time it is read (:func:`recorded_error`).
"""

from __future__ import annotations

import functools
import json
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import hdrs, web

from shared.errors import Cancelled, InternalError, Params, StembotError, render
from shared.i18n import N_, Texts, from_accept_language, texts

log = logging.getLogger(__name__)

HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
#: Status of a core rejection by code; any other code is a 400.
STATUS = {"too_large": 413, "internal": 500, "unavailable": 503}
STATUS |= dict.fromkeys(
    ("invalid_option", "not_a_url", "unsupported_site", "unsafe_url", "not_a_video"), 422
)
STATUS["playlist_link"] = 422
FAILED_TEXT = N_("This job failed. Please try again later.")
EXPIRED_TEXT = N_("This job has ended and its files are no longer kept. Please submit it again.")
#: aiohttp's own refusals under /api/ (no such route, a method it does not take), by status.
ROUTING_TEXT = {
    404: N_("Not Found: see /api/openapi.json."),
    405: N_("Method Not Allowed: see /api/openapi.json."),
}


class ApiError(Exception):
    """A refusal of the API itself (keys, records, the body's media type...): ``text`` is a
    catalogue message (marked with ``N_`` where it is raised), filled in with ``params``; or,
    with ``cause``, that domain error's text."""

    def __init__(
        self,
        status: int,
        code: str,
        text: str = "",
        headers: dict[str, str] | None = None,
        *,
        cause: StembotError | None = None,
        **params: str | int | float,
    ) -> None:
        super().__init__(text or code)
        self.status, self.code, self.headers = status, code, headers or {}
        self.text, self.params, self.cause = text, params, cause

    def message(self, t: Texts) -> str:
        return self.cause.message(t) if self.cause else t._(self.text, **self.params)


def request_texts(request: web.Request) -> Texts:
    """The texts of the language the client asked for (``Accept-Language``)."""
    return texts(from_accept_language(request.headers.get(hdrs.ACCEPT_LANGUAGE)))


def json_response(
    body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.json_response(body, status=status, headers={**HEADERS, **(headers or {})})


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> web.Response:
    return json_response({"error": {"code": code, "message": message}}, status, headers)


def _in_language(response: web.StreamResponse, t: Texts) -> web.StreamResponse:
    response.headers[hdrs.CONTENT_LANGUAGE] = t.tag
    response.headers[hdrs.VARY] = hdrs.ACCEPT_LANGUAGE
    return response


def _code(exc: web.HTTPException) -> str:
    return re.sub(r"\W+", "_", exc.reason.lower()).strip("_")


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def guard(handler: Handler) -> Handler:
    """Every outcome is JSON in the client's language: ApiError, core rejections, aiohttp's
    own errors, crashes."""

    @functools.wraps(handler)
    async def wrapped(request: web.Request) -> web.StreamResponse:
        t = request_texts(request)
        try:
            response = await handler(request)
        except ApiError as exc:
            response = error_response(exc.status, exc.code, exc.message(t), exc.headers)
        except StembotError as exc:
            response = error_response(STATUS.get(exc.code, 400), exc.code, exc.message(t))
        except web.HTTPException as exc:
            if exc.status == 413:  # a JSON body over aiohttp's client_max_size
                text = t._("The request body is too large.")
            else:
                text = t._("The request could not be handled ({reason}).", reason=exc.reason)
            response = error_response(exc.status, _code(exc), text)
        except Exception:
            error = InternalError()
            log.exception(
                "API %s %s failed (reference %s)", request.method, request.path, error.reference
            )
            response = error_response(500, error.code, error.message(t))
        return _in_language(response, t)

    return wrapped


@web.middleware
async def json_routing_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """No route under /api/ (an unknown path, a method it does not take): an Error body too."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400 or not request.path.startswith("/api/"):
            raise
        t = request_texts(request)
        allow = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else {}
        if exc.status in ROUTING_TEXT:
            text = t._(ROUTING_TEXT[exc.status])
        else:
            text = t._("{reason}: see /api/openapi.json.", reason=exc.reason)
        return _in_language(error_response(exc.status, _code(exc), text, allow), t)


# --- the errors of jobs ------------------------------------------------------------------


def final_record(state: str, code: str, params: Params, message: str) -> dict[str, str]:
    """What a request's record keeps of its end: code and params, and the English text."""
    return {
        "final_state": state,
        "error_code": code,
        "error_params": json.dumps(params),
        "error_message": message,
    }


def _params(raw: str | None) -> Params:
    try:
        params = json.loads(raw) if raw else {}
    except ValueError:
        return {}
    return params if isinstance(params, dict) else {}


def recorded_error(t: Texts, rec: dict[str, str]) -> dict[str, str]:
    """The error of a request whose end was recorded (failed or cancelled), in ``t``'s
    language; the stored English text where its code and params do not render (a record
    written before they were kept)."""
    code = rec.get("error_code") or rec["final_state"]
    fallback = rec.get("error_message") or t._(FAILED_TEXT)
    return {"code": code, "message": render(t, code, _params(rec.get("error_params")), fallback)}


def run_error(t: Texts, state: str, code: str | None) -> dict[str, str]:
    """The error of a request whose run ended (or that left it) before its end was recorded."""
    text = Cancelled().message(t) if state == "cancelled" else t._(FAILED_TEXT)
    return {"code": code or state, "message": text}


def expired_error(t: Texts) -> dict[str, str]:
    return {"code": "expired", "message": t._(EXPIRED_TEXT)}
