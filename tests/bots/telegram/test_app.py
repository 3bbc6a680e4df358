"""The entry point: settings from the environment, readable start-up failures."""

from __future__ import annotations

import pytest

from bots.telegram.app import TelegramStartupError, run_telegram
from bots.telegram.settings import TelegramSettings
from shared.redis_server import free_port
from tests.bots.telegram.conftest import tg_settings
from tests.bots.telegram.fake_bot_api import FakeBotApi
from tests.support.service import Service


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STEMBOT_TELEGRAM_TOKEN", "42:abc")
    monkeypatch.setenv("STEMBOT_TELEGRAM_API_URL", "http://127.0.0.1:8081/")
    monkeypatch.setenv("STEMBOT_TELEGRAM_EDIT_INTERVAL_S", "5")
    monkeypatch.setenv("STEMBOT_TELEGRAM_SEND_AUDIO", "false")
    tg = TelegramSettings(_env_file=None)  # type: ignore[call-arg]
    assert tg.telegram_token is not None and tg.telegram_token.get_secret_value() == "42:abc"
    assert "42:abc" not in repr(tg)
    assert tg.telegram_api_url == "http://127.0.0.1:8081"
    assert tg.local_server and tg.download_limit_bytes() is None
    assert tg.upload_limit_bytes() == 2000 * 1024 * 1024
    assert (tg.telegram_edit_interval_s, tg.telegram_send_audio) == (5.0, False)


def test_cloud_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in TelegramSettings.model_fields:
        monkeypatch.delenv(f"STEMBOT_{name.upper()}", raising=False)
    tg = TelegramSettings(_env_file=None)  # type: ignore[call-arg]
    assert tg.telegram_token is None and tg.telegram_webhook_url is None
    assert tg.download_limit_bytes() == 20 * 1024 * 1024
    assert tg.upload_limit_bytes() == 50 * 1024 * 1024
    assert (tg.telegram_edit_interval_s, tg.telegram_send_audio) == (3.0, True)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"telegram_token": None}, "STEMBOT_TELEGRAM_TOKEN is not set"),
        ({"telegram_token": "999:wrong"}, "Telegram rejected STEMBOT_TELEGRAM_TOKEN"),
        (
            {"telegram_api_url": f"http://127.0.0.1:{free_port()}"},
            "cannot reach the Telegram Bot API",
        ),
    ],
    ids=["no-token", "rejected-token", "unreachable"],
)
async def test_start_up_failures_are_one_readable_line(
    api: FakeBotApi, service: Service, overrides: dict[str, object], message: str
) -> None:
    tg = tg_settings(api, **overrides)
    with pytest.raises(TelegramStartupError, match=message):
        await run_telegram(service.settings, service.redis, service.storage, tg)
