"""`stembot discord` and `stembot telegram` without a token: off, not failed (exit 0, one line),
so that `docker compose up -d` does not restart them (the bots restart on failure only)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from shared.redis_server import free_port
from tests.stembot.test_cli import run_cli

BOTS = {
    "discord": ("STEMBOT_DISCORD_TOKEN", "Discord"),
    "telegram": ("STEMBOT_TELEGRAM_TOKEN", "Telegram"),
}


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("STEMBOT_")}


@pytest.mark.parametrize(
    ("command", "token"),
    [("discord", None), ("discord", "  "), ("telegram", None), ("telegram", "")],
    ids=["discord-unset", "discord-blank", "telegram-unset", "telegram-empty"],
)
def test_a_bot_without_its_token_says_so_and_exits_0(
    tmp_path: Path, command: str, token: str | None
) -> None:
    variable, platform = BOTS[command]
    env = clean_env()
    # no Redis there: a bot that is off does not need one
    env["STEMBOT_REDIS_URL"] = f"redis://127.0.0.1:{free_port()}/0"
    if token is not None:
        (tmp_path / ".env").write_text(f"{variable}={token}\n")  # as in a copied .env.example
    proc = run_cli(command, env=env, cwd=tmp_path)
    assert (proc.returncode, proc.stdout) == (0, "")
    assert proc.stderr == f"stembot: {variable} is not set: the {platform} bot is off\n"


def test_a_bot_that_cannot_start_still_fails(tmp_path: Path) -> None:
    """A token set but Redis unreachable is a failure (exit 1) that compose retries."""
    env = clean_env()
    env["STEMBOT_REDIS_URL"] = f"redis://127.0.0.1:{free_port()}/0"
    env["STEMBOT_DISCORD_TOKEN"] = "not-a-real-token"
    proc = run_cli("discord", env=env, cwd=tmp_path)
    assert proc.returncode == 1
    last = proc.stderr.splitlines()[-1]  # after arq's warnings about its retries
    assert last.startswith("stembot: cannot reach Redis at redis://127.0.0.1:")
