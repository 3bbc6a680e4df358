"""Which language a page or download answers in: the link's ``lang`` (the requester's
language, put there by the bot: shared.links.with_lang), else the browser's
``Accept-Language``; anything unsupported is English."""

from __future__ import annotations

from aiohttp import hdrs, web

from shared.i18n import DEFAULT, Texts, from_accept_language, negotiate, texts
from shared.links import LANG_PARAM


def chosen(tag: str | None) -> str | None:
    """Our language for a ``lang`` parameter; None when it names none of ours."""
    if not tag:
        return None
    lang = negotiate(tag)
    return (
        lang if lang != DEFAULT or tag.replace("_", "-").split("-")[0].lower() == DEFAULT else None
    )


def request_texts(request: web.Request) -> Texts:
    """The texts of the language ``request`` is answered in."""
    lang = chosen(request.query.get(LANG_PARAM))
    return texts(lang or from_accept_language(request.headers.get(hdrs.ACCEPT_LANGUAGE)))


def language_headers(t: Texts) -> dict[str, str]:
    """``Content-Language``, and ``Vary``: the same URL answers in the browser's language."""
    return {hdrs.CONTENT_LANGUAGE: t.tag, hdrs.VARY: hdrs.ACCEPT_LANGUAGE}
