"""Interaction tokens out of discord.py's logs.

An interaction token lets whoever holds it edit the bot's answer and post follow-ups in that
channel for 15 minutes: a credential. discord.py logs every request URL at DEBUG, and the
interaction callback and webhook URLs carry the token (``/interactions/<id>/<token>/...``,
``/webhooks/<application id>/<token>/...``); the filter replaces it with ``<token>`` in those
records before any handler formats them.
"""

from __future__ import annotations

import logging
import re

#: The loggers that log request URLs: REST requests, and webhook (follow-up) requests.
LOGGERS = ("discord.http", "discord.webhook.async_")
_TOKEN_IN_URL = re.compile(r"(/(?:webhooks|interactions)/\d+/)[^/?#\s'\"]+")


class RedactInteractionTokens(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = _TOKEN_IN_URL.sub(r"\1<token>", message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


_FILTER = RedactInteractionTokens()


def keep_tokens_out_of_logs() -> None:
    """Install the filter on discord.py's request loggers (once; calling again is harmless)."""
    for name in LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
