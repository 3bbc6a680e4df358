"""The people and chats of the Telegram tests (as the Bot API describes them)."""

from __future__ import annotations

from tests.bots.telegram.fake_bot_api import group_chat, user

# --- people who send songs, in their private chats with the bot -----------------------------

ANA = user(1001, "Ana", "en")
BOB = user(1002, "Bob", "en")
#: German, written with a region as Telegram sends it: the bot answers in German
LENA = user(1003, "Lena", "de-AT")
EVE = user(1004, "Eve", "en")
#: Spanish, as Telegram sends it: the bot answers in Spanish
SOFIA = user(1005, "Sofía", "es")
PABLO = user(1006, "Pablo", "es")
#: Japanese, which the bot does not speak: it answers in English
YUKI = user(1007, "Yuki", "ja")

# --- a group, and who is who there ------------------------------------------------------------

ROOT = user(2001, "Root")  # a bot admin (STEMBOT_TELEGRAM_ADMIN_IDS)
GINA = user(2002, "Gina")  # the group's creator
MO = user(2003, "Mo")  # one of the group's administrators
MEMBER = user(2004, "Ana")  # a member
BEN = user(2005, "Ben")
GROUP = group_chat(-100200300)
#: the limits scope of GROUP (its admins' overrides and bans)
SCOPE = "telegram:chat:-100200300"
