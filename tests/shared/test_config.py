"""Settings: env prefix, validation, documentation, the link signing key."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from pydantic import ValidationError

from bots.discord.settings import DiscordSettings
from bots.telegram.settings import TelegramSettings
from shared.config import Settings, env_names

ROOT = Path(__file__).resolve().parents[2]


def all_env_names() -> list[str]:
    """The core's settings and the bots' own sections."""
    fields = [*TelegramSettings.model_fields, *DiscordSettings.model_fields]
    bots = [f"STEMBOT_{n.upper()}" for n in fields]
    return [*env_names(), *bots]


def test_every_setting_is_documented() -> None:
    example = (ROOT / ".env.example").read_text()
    readme = (ROOT / "README.md").read_text()
    for name in all_env_names():
        assert f"#{name}=" in example, f"{name} missing from .env.example"
        assert f"`{name}`" in readme, f"{name} missing from the README's settings table"


def test_defaults_match_the_product_promises(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in env_names():
        monkeypatch.delenv(name, raising=False)
    s = Settings()
    assert s.separation.default_model == "htdemucs"
    assert (s.separation.shifts, s.separation.overlap) == (1, 0.25)
    assert s.limits.max_duration_s == 600
    assert s.limits.max_upload_bytes == 50 * 1024 * 1024
    assert s.storage.link_ttl_s == 24 * 3600
    assert s.redis.redis_url is None


def test_environment_is_read_with_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STEMBOT_DEVICE", "cpu")
    monkeypatch.setenv("STEMBOT_MAX_UPLOAD_MB", "8")
    monkeypatch.setenv("STEMBOT_PUBLIC_URL", "https://stems.example/")
    s = Settings()
    assert s.separation.device == "cpu"
    assert s.limits.max_upload_bytes == 8 * 1024 * 1024
    assert s.storage.public_url == "https://stems.example"


@pytest.mark.parametrize(
    ("name", "value"),
    [("STEMBOT_DEVICE", "tpu"), ("STEMBOT_DEFAULT_MODEL", "spleeter"), ("STEMBOT_OVERLAP", "1.5")],
)
def test_bad_values_are_rejected(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError):
        Settings()


def test_unknown_override_is_an_error() -> None:
    with pytest.raises(TypeError, match="unknown settings: nope"):
        Settings(nope=1)


def test_signing_key_is_created_once_and_private(tmp_path: Path) -> None:
    a = Settings(storage_dir=tmp_path, signing_key=None).storage.signing_key_bytes()
    b = Settings(storage_dir=tmp_path, signing_key=None).storage.signing_key_bytes()
    assert a == b
    assert len(a) >= 32
    mode = stat.S_IMODE((tmp_path / ".signing-key").stat().st_mode)
    assert mode == 0o600
    assert Settings(storage_dir=tmp_path, signing_key="explicit").storage.signing_key_bytes() == (
        b"explicit"
    )
