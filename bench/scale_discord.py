"""`stembot discord` pointed at a stand-in Discord: ``python -m bench.scale_discord URL [ARGS]``.

discord.py's REST base (``Route.BASE``) and gateway (``DiscordWebSocket.DEFAULT_GATEWAY``) are
class attributes, not settings; this sets them to the fake server at ``URL`` and then runs the
real `stembot discord` entry point with ``ARGS``, unchanged in everything else.
"""

from __future__ import annotations

import sys

import discord
import yarl
from discord.gateway import DiscordWebSocket

from stembot.cli import main as stembot_main


def main() -> int:
    base, args = sys.argv[1].rstrip("/"), sys.argv[2:]
    discord.http.Route.BASE = f"{base}/api/v10"
    DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(base.replace("http://", "ws://") + "/gateway")
    return stembot_main(["discord", *args])


if __name__ == "__main__":
    sys.exit(main())
