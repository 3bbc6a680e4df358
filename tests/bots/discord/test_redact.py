"""Interaction tokens are replaced in discord.py's request log lines."""

from __future__ import annotations

import logging

import pytest

from bots.discord.redact import RedactInteractionTokens, keep_tokens_out_of_logs


@pytest.mark.parametrize(
    ("logger", "url", "shown"),
    [
        (
            "discord.http",
            "https://discord.com/api/v10/interactions/123/aW50ZXJhY3Rpb24.x-y_z/callback",
            "https://discord.com/api/v10/interactions/123/<token>/callback",
        ),
        (
            "discord.webhook.async_",
            "https://discord.com/api/v10/webhooks/456/aW50ZXJh.Y3Rpb24/messages/@original",
            "https://discord.com/api/v10/webhooks/456/<token>/messages/@original",
        ),
        (
            "discord.http",
            "https://discord.com/api/v10/channels/789/messages",
            "https://discord.com/api/v10/channels/789/messages",
        ),
    ],
)
def test_request_urls_lose_their_token(
    caplog: pytest.LogCaptureFixture, logger: str, url: str, shown: str
) -> None:
    keep_tokens_out_of_logs()
    keep_tokens_out_of_logs()  # twice: still one filter
    filters = logging.getLogger(logger).filters
    assert sum(isinstance(f, RedactInteractionTokens) for f in filters) == 1
    caplog.set_level(logging.DEBUG, logger=logger)
    logging.getLogger(logger).debug("%s %s with %s has returned %s", "PATCH", url, None, 200)
    assert caplog.messages == [f"PATCH {shown} with None has returned 200"]
