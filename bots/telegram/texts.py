"""Everything the Telegram bot says, in English and German.

``text(lang, key, **values)`` looks a string up; :func:`error_text` turns a shared.errors code
into the user's language. English error wording is the core's own ``user_message`` (written
once, in shared/errors.py); the other languages translate it here, by code.
"""

from __future__ import annotations

import re

DEFAULT_LANG = "en"

EN: dict[str, str] = {
    "start": (
        "Hi! Send me a song and I'll split it into stems (vocals, drums, bass, other) "
        "with Demucs: an audio file, a voice message, a video, or a YouTube link.\n\n"
        "In a group, reply to a song with /stem, or send /stem followed by a link.\n"
        "/settings: your default model, mode and format. /help: more."
    ),
    "help": (
        "Send me an audio file, a voice message, a video or a YouTube link. I answer with one "
        "message that shows the progress and, at the end, a download link for every stem and "
        "a zip of all of them.\n\n"
        "Limits: songs up to {max_minutes} min, files up to {max_mb} MB.{cloud_note}\n\n"
        "/settings: model, mode and format\n/status: your songs in progress\n"
        "/cancel: stop them\n/stem: split a song in a group (reply to it, or add a link)"
    ),
    "cloud_note": " Telegram only lets bots fetch files up to {cloud_mb} MB: for bigger "
    "ones, send a YouTube link.",
    "nothing_to_do": "Send me an audio file, a voice message, a video or a YouTube link.",
    "stem_usage": "Reply to a message with a song with /stem, or send /stem followed by a "
    "YouTube link.",
    "choose_mode": "🎵 {title}\nHow should I split it?",
    "mode_4": "4 stems",
    "mode_2": "Vocals + instrumental",
    "mode_6": "6 stems",
    "mode_ask": "Ask each time",
    "fetching": "🎵 {title}\n📥 Getting the file from Telegram…",
    "queued_next": "⏳ In the queue: next up",
    "queued_ahead": "⏳ In the queue: {ahead} ahead of you",
    "waiting": "⏳ Waiting for a worker…",
    "eta": " · about {eta}",
    "eta_left": " · about {eta} left",
    "downloading": "⬇️ Downloading from YouTube… {percent}%",
    "decoding": "🔎 Reading the audio…",
    "separating": "🎛 Separating {bar} {percent}%",
    "encoding": "💾 Encoding the stems…",
    "done": "✅ Done: {title}\n{model} · {mode} · {format}\n\nDownload links, valid until "
    "{expires}:",
    "all_stems_zip": "all stems (zip)",
    "open_page": "▶ Listen, mix and download",
    "files_too_big": "Stems over {mb} MB are only available through the links.",
    "cancel": "Cancel",
    "cancelling": "Cancelling…",
    "not_yours": "Only the person who sent this song can do that.",
    "already_over": "This job is already over.",
    "expired": "This request has expired. Please send the song again.",
    "too_big_for_telegram": "That file is {size_mb} MB, but Telegram lets bots download files "
    "up to {limit_mb} MB only. Send me a YouTube link to the song instead, or a shorter or "
    "more compressed file (mp3, m4a).",
    "too_big_for_telegram_unknown": "That file is too big for Telegram to hand to bots (they "
    "get files up to {limit_mb} MB only). Send me a YouTube link to the song instead, or a "
    "shorter or more compressed file (mp3, m4a).",
    "no_jobs": "You have no songs in progress.",
    "your_jobs": "Your songs in progress:",
    "cancelled_n": "Cancelled: {count}.",
    "nothing_to_cancel": "Nothing to cancel.",
    "settings": "Your defaults:\nModel: {model}\nMode: {mode}\nFormat: {format}\n"
    "Send stems as files: {files}\n\nTap to change.",
    "on": "on",
    "off": "off",
    "saved": "Saved.",
    "state_queued": "queued",
    "state_downloading": "downloading",
    "state_decoding": "reading",
    "state_separating": "separating",
    "state_encoding": "encoding",
    "voice": "Voice message",
    "youtube_title": "YouTube video {video_id}",
    "minutes": "{m} min {s:02d} s",
    "seconds": "{s} s",
    "cmd_start": "What this bot does",
    "cmd_help": "How to use it, and the limits",
    "cmd_settings": "Default model, mode and format",
    "cmd_status": "Your songs in progress",
    "cmd_cancel": "Cancel your songs in progress",
    "cmd_stem": "Split a song: reply to it, or add a link",
    "cmd_forget": "Delete your data: settings, history, stems",
}

DE: dict[str, str] = {
    "start": (
        "Hallo! Schick mir einen Song und ich zerlege ihn mit Demucs in Spuren (Gesang, "
        "Schlagzeug, Bass, Rest): eine Audiodatei, eine Sprachnachricht, ein Video oder einen "
        "YouTube-Link.\n\n"
        "In einer Gruppe antworte mit /stem auf einen Song oder schick /stem mit einem Link.\n"
        "/settings: dein Standardmodell, Modus und Format. /help: mehr."
    ),
    "help": (
        "Schick mir eine Audiodatei, eine Sprachnachricht, ein Video oder einen YouTube-Link. "
        "Ich antworte mit einer Nachricht, die den Fortschritt zeigt und am Ende einen "
        "Download-Link für jede Spur und ein Zip mit allen.\n\n"
        "Grenzen: Songs bis {max_minutes} Min., Dateien bis {max_mb} MB.{cloud_note}\n\n"
        "/settings: Modell, Modus und Format\n/status: deine laufenden Songs\n"
        "/cancel: sie abbrechen\n/stem: einen Song in einer Gruppe zerlegen (als Antwort darauf "
        "oder mit Link)"
    ),
    "cloud_note": " Telegram lässt Bots nur Dateien bis {cloud_mb} MB abrufen: für größere "
    "schick einen YouTube-Link.",
    "nothing_to_do": "Schick mir eine Audiodatei, eine Sprachnachricht, ein Video oder einen "
    "YouTube-Link.",
    "stem_usage": "Antworte mit /stem auf eine Nachricht mit einem Song oder schick /stem mit "
    "einem YouTube-Link.",
    "choose_mode": "🎵 {title}\nWie soll ich ihn zerlegen?",
    "mode_4": "4 Spuren",
    "mode_2": "Gesang + Instrumental",
    "mode_6": "6 Spuren",
    "mode_ask": "Jedes Mal fragen",
    "fetching": "🎵 {title}\n📥 Hole die Datei von Telegram…",
    "queued_next": "⏳ In der Warteschlange: als Nächstes dran",
    "queued_ahead": "⏳ In der Warteschlange: {ahead} vor dir",
    "waiting": "⏳ Warte auf einen Worker…",
    "eta": " · etwa {eta}",
    "eta_left": " · noch etwa {eta}",
    "downloading": "⬇️ Lade von YouTube… {percent}%",
    "decoding": "🔎 Lese die Audiodaten…",
    "separating": "🎛 Trenne {bar} {percent}%",
    "encoding": "💾 Kodiere die Spuren…",
    "done": "✅ Fertig: {title}\n{model} · {mode} · {format}\n\nDownload-Links, gültig bis "
    "{expires}:",
    "all_stems_zip": "alle Spuren (Zip)",
    "open_page": "▶ Anhören, mischen und herunterladen",
    "files_too_big": "Spuren über {mb} MB gibt es nur über die Links.",
    "cancel": "Abbrechen",
    "cancelling": "Breche ab…",
    "not_yours": "Das kann nur die Person, die diesen Song geschickt hat.",
    "already_over": "Dieser Auftrag ist schon beendet.",
    "expired": "Diese Anfrage ist abgelaufen. Bitte schick den Song noch einmal.",
    "too_big_for_telegram": "Die Datei hat {size_mb} MB, aber Telegram lässt Bots nur Dateien "
    "bis {limit_mb} MB herunterladen. Schick mir stattdessen einen YouTube-Link zu dem Song "
    "oder eine kürzere oder stärker komprimierte Datei (mp3, m4a).",
    "too_big_for_telegram_unknown": "Die Datei ist zu groß, als dass Telegram sie an Bots "
    "weitergibt (sie bekommen nur Dateien bis {limit_mb} MB). Schick mir stattdessen einen "
    "YouTube-Link zu dem Song oder eine kürzere oder stärker komprimierte Datei (mp3, m4a).",
    "no_jobs": "Du hast keine laufenden Songs.",
    "your_jobs": "Deine laufenden Songs:",
    "cancelled_n": "Abgebrochen: {count}.",
    "nothing_to_cancel": "Nichts zum Abbrechen.",
    "settings": "Deine Standardwerte:\nModell: {model}\nModus: {mode}\nFormat: {format}\n"
    "Spuren als Dateien schicken: {files}\n\nTippe zum Ändern.",
    "on": "an",
    "off": "aus",
    "saved": "Gespeichert.",
    "state_queued": "wartet",
    "state_downloading": "lädt",
    "state_decoding": "liest",
    "state_separating": "trennt",
    "state_encoding": "kodiert",
    "voice": "Sprachnachricht",
    "youtube_title": "YouTube-Video {video_id}",
    "minutes": "{m} Min. {s:02d} s",
    "seconds": "{s} s",
    "cmd_start": "Was dieser Bot macht",
    "cmd_help": "Bedienung und Grenzen",
    "cmd_settings": "Standardmodell, Modus und Format",
    "cmd_status": "Deine laufenden Songs",
    "cmd_cancel": "Deine laufenden Songs abbrechen",
    "cmd_stem": "Einen Song zerlegen: als Antwort darauf oder mit Link",
    "cmd_forget": "Deine Daten löschen: Einstellungen, Verlauf, Stems",
}

_SEND_FILE_DE = "schick mir stattdessen die Audiodatei"

#: shared.errors codes in German. ``{name}`` values come from the error or its English text.
ERRORS_DE: dict[str, str] = {
    "invalid_option": "Diese Einstellung gibt es nicht. Wähle eine andere mit /settings.",
    "too_large": "Die Datei ist zu groß{got}. Die Grenze liegt bei {limit_mb} MB: schick eine "
    "kürzere oder stärker komprimierte Datei.",
    "empty_file": "Die Datei ist leer (0 Bytes). Bitte schick die Audiodatei noch einmal.",
    "not_audio": "Die Datei hat keine Tonspur, die ich verwenden kann. Schick eine Audio- oder "
    "Videodatei (mp3, m4a, ogg, opus, flac, wav, webm, mp4 …).",
    "unreadable": "Ich konnte die Datei nicht lesen: Sie scheint beschädigt zu sein oder hat "
    "ein Format, das ich nicht kenne. Exportiere sie am besten noch einmal als mp3 oder wav.",
    "zero_length": "Die Aufnahme ist leer (nichts zum Trennen). Bitte schick einen echten Song.",
    "too_many_channels": "Die Datei hat mehr Tonkanäle, als ich trennen kann (höchstens 8: "
    "Mono, Stereo oder Surround). Exportiere eine Stereo-Mischung und schick sie mir.",
    "archive": "Das ist ein Archiv (zip, rar, 7z, tar …), keine Audiodatei. Entpack es und "
    "schick mir den Song daraus.",
    "bad_request": "Die Anfrage ist fehlerhaft: schick multipart/form-data mit der Audiodatei "
    "im Feld 'file' oder ein JSON-Objekt mit einem YouTube-Link in 'url'.",
    "references_other_files": "Das ist eine Playlist oder ein Skript, das auf andere Dateien "
    "oder Links verweist, kein Song. Schick mir die Audiodatei selbst (mp3, m4a, ogg, flac, "
    "wav …).",
    "too_long": "Das Stück ist {duration} lang; erlaubt sind {limit}. Schick einen kürzeren "
    "Ausschnitt des Songs.",
    "source_gone": "Die Datei für diesen Auftrag ist nicht mehr da. Bitte schick sie noch einmal.",
    "cancelled": "Abgebrochen. Nichts wurde aufbewahrt.",
    "timed_out": "Dieser Auftrag hat zu lange gedauert und wurde gestoppt. Bitte versuch es "
    "später noch einmal.",
    "model_unavailable": "Das Modell {model} ist auf diesem Server gerade nicht verfügbar. "
    "Nimm das Standardmodell.",
    "out_of_memory": "Dieses Stück braucht mehr Speicher, als der Server gerade frei hat, auch "
    "in kleineren Teilen. Schick ein kürzeres Stück oder einen Ausschnitt, oder versuch es "
    "später noch einmal.",
    "internal": "Bei uns ist etwas schiefgegangen (Referenz {reference}). Bitte versuch es in "
    "ein paar Minuten noch einmal.",
    "unavailable": "Der Dienst ist ausgelastet oder startet gerade neu. Bitte versuch es in "
    "einer Minute noch einmal.",
    "not_a_url": "Das sieht nicht nach einem Link aus. Schick einen YouTube-Videolink "
    "(youtube.com/watch?v=… oder youtu.be/…) oder eine Audiodatei.",
    "unsupported_site": "Ich kann Songs nur über YouTube-Links holen. Von anderen Seiten lade "
    "die Audiodatei selbst herunter und schick sie mir.",
    "unsafe_url": "Diesen Link kann ich nicht öffnen. Schick einen einfachen "
    "https://www.youtube.com/…- oder https://youtu.be/…-Link, ohne Passwort, Port oder "
    "IP-Adresse.",
    "not_a_video": "Dieser YouTube-Link führt nicht zu einem Video oder ist abgeschnitten. "
    "Öffne das Video, tippe auf Teilen, dann auf Link kopieren, und schick mir diesen Link.",
    "playlist_link": "Das ist ein Link zu einer Playlist oder einem Kanal, nicht zu einem "
    "Video. Öffne den Song, den du willst, und schick mir den Link zu diesem einen Video.",
    "live_stream": "Das ist ein Livestream oder eine Premiere, die noch nicht vorbei ist, "
    "daher ist die Länge unbekannt. Schick den Link noch einmal, wenn das ganze Video online "
    "ist.",
    "private_video": "Das Video ist privat oder nur für manche Zuschauer (Kanalmitglieder, "
    f"Premium), deshalb komme ich nicht daran. Frag nach einem öffentlichen Link oder "
    f"{_SEND_FILE_DE}.",
    "video_unavailable": "Das Video ist auf YouTube nicht verfügbar: Es wurde entfernt oder "
    f"der Link ist falsch. Prüf den Link oder {_SEND_FILE_DE}.",
    "age_restricted": "Das Video ist altersbeschränkt: YouTube zeigt es nur angemeldeten "
    f"Erwachsenen, deshalb komme ich nicht daran. Bitte {_SEND_FILE_DE}.",
    "region_blocked": "Das Video ist in dem Land gesperrt, in dem dieser Server steht, deshalb "
    f"komme ich nicht daran. Bitte {_SEND_FILE_DE}.",
    "youtube_blocked": "YouTube blockiert diesen Server gerade (es will einen Nachweis, dass "
    f"wir kein Bot sind), deshalb komme ich an keine Videos. Bitte {_SEND_FILE_DE} oder "
    "versuch den Link später noch einmal.",
    "download_failed": "Ich konnte das Video nicht von YouTube laden (Netzwerkprobleme, oder "
    "YouTube bremst uns). Bitte versuch es in ein paar Minuten noch einmal oder "
    f"{_SEND_FILE_DE}.",
    "youtube_failed": "YouTube hat mir die Tonspur dieses Videos nicht gegeben (dort hat sich "
    f"etwas geändert). Bitte {_SEND_FILE_DE} oder versuch den Link später noch einmal.",
}

#: The admin commands and /forget (English only; HTML). ``{where}``: "in this group"...
ADMIN: dict[str, str] = {
    "not_admin_group": "❌ Only this group's admins and the bot's admins can use this command.",
    "not_admin_private": "❌ Only the bot's admins can use this command.",
    "in_group": "in this group",
    "globally": "globally",
    "everywhere": "everywhere",
    "limits": "Limits {where}:\n<pre>{table}</pre>\nChange one: /setlimit KEY VALUE\n"
    "Back to the default: /resetlimit KEY",
    "set": "✅ {key} is now {value} {where} (was {old}). It applies to new requests at once.",
    "reset": "✅ {key} is back to {value} {where} ({source}).",
    "source_default": "the default",
    "source_global": "the global value",
    "setlimit_usage": "Usage: /setlimit KEY VALUE, e.g. /setlimit jobs_per_hour 10\nKeys: {keys}",
    "resetlimit_usage": "Usage: /resetlimit KEY\nKeys: {keys}",
    "ban_usage": "Usage: /ban USER_ID [reason], or reply to their message with /ban [reason]",
    "unban_usage": "Usage: /unban USER_ID, or reply to their message with /unban",
    "banned": "🚫 User {user} is banned {where}.",
    "unbanned": "✅ User {user} is no longer banned {where}.",
    "not_banned": "User {user} was not banned {where}.",
    "queue": "Songs waiting or in progress: {count}\n<pre>{lines}</pre>",
    "queue_empty": "Nothing is waiting or in progress.",
    "hidden": "(another chat)",
    "stats": "Stats for {period} {where} (UTC):\n<pre>{table}</pre>",
    "today": "today",
    "last_days": "the last {days} days",
    "audit": "Latest changes {where}:\n<pre>{lines}</pre>",
    "audit_empty": "No changes {where} yet.",
    "invalid": "❌ {reason}",
    "forget_confirm": "This deletes what I keep about you: your settings, your history and the "
    "stems of the songs only you asked for. Songs someone else asked for too are kept until "
    "they expire. Bans and the admins' change log are kept.",
    "forget_yes": "Delete my data",
    "forget_no": "Keep it",
    "forget_done": "🗑 Done: I deleted your settings, your history ({requests}) and the stems "
    "of {deleted} only you asked for. Kept: {kept} someone else asked for too (until they "
    "expire).",
    "forget_kept": "Nothing was deleted.",
    "forget_in_progress": "❌ You have songs in progress: /cancel them or wait until they are "
    "done, then send /forget again.",
    "forget_not_yours": "Only the person who sent /forget can do that.",
    "cmd_limits": "Limits here (admins)",
    "cmd_setlimit": "Set a limit: KEY VALUE (admins)",
    "cmd_resetlimit": "Back to the default: KEY (admins)",
    "cmd_ban": "Ban a user: id or reply (admins)",
    "cmd_unban": "Lift a ban: id or reply (admins)",
    "cmd_queue": "Songs waiting or in progress (admins)",
    "cmd_stats": "Jobs, minutes, failures by day (admins)",
    "cmd_audit": "Latest admin changes (admins)",
    "cmd_forget": "Delete your data",
}


def admin_text(name: str, /, **values: object) -> str:
    """One of the admin texts (English)."""
    return ADMIN[name].format(**values) if values else ADMIN[name]


TEXTS: dict[str, dict[str, str]] = {"en": EN, "de": DE}
ERRORS: dict[str, dict[str, str]] = {"de": ERRORS_DE}

#: Values some error texts need, read back from the core's English wording when the error
#: arrives as an event (a code and the English text) rather than as an exception object.
_VALUES: dict[str, re.Pattern[str]] = {
    "too_long": re.compile(r"is (?P<duration>\d+:\d\d) long; the limit is (?P<limit>\d+:\d\d)"),
    "too_large": re.compile(
        r"too large(?: \((?P<got_mb>[\d.]+) MB\))?\. The limit is (?P<limit_mb>[\d.]+) MB"
    ),
    "internal": re.compile(r"reference (?P<reference>[0-9A-Za-z]+)"),
    "model_unavailable": re.compile(r"model '(?P<model>[\w-]+)'"),
}


def lang_of(language_code: str | None) -> str:
    """Our language for Telegram's ``language_code`` ("de", "de-AT", "pt-br"...)."""
    base = (language_code or "").split("-")[0].lower()
    return base if base in TEXTS else DEFAULT_LANG


def text(lang: str, key: str, **values: object) -> str:
    table = TEXTS.get(lang, EN)
    template = table.get(key) or EN[key]
    return template.format(**values) if values else template


def error_text(lang: str, code: str | None, english: str) -> str:
    """The user's-language text of a shared.errors failure (English: the core's own text)."""
    template = ERRORS.get(lang, {}).get(code or "")
    if template is None:
        return english
    values: dict[str, str] = {}
    if code in _VALUES:
        found = _VALUES[code].search(english)
        if found is None:
            return english  # wording we cannot read: better English than a wrong number
        values = {k: v or "" for k, v in found.groupdict().items()}
    if code == "too_large":
        values["got"] = f" ({values.pop('got_mb')} MB)" if values.get("got_mb") else ""
    try:
        return template.format(**values)
    except (KeyError, IndexError):
        return english


def duration(lang: str, seconds: float | None) -> str:
    total = max(0, round(seconds or 0))
    if total >= 60:
        return text(lang, "minutes", m=total // 60, s=total % 60)
    return text(lang, "seconds", s=total)
