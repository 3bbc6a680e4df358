"""Every user-facing text, in the user's language: gettext catalogues managed with Babel.

The catalogues are ``shared/locales/<lang>/LC_MESSAGES/messages.po``, one per language of
:data:`LANGUAGES`; ``shared/locales/messages.pot`` is extracted from the code (``make
messages``). A message id is the English text itself, with ``str.format`` placeholders
(``{title}``); the English catalogue holds the same text, so wording can change without
touching code. They are read at start-up (no compiled ``.mo`` to keep in sync).

Code gets the texts of one language from :func:`texts` and calls, on that object::

    t._("Saved.")                                   # a text
    t._("Done: {title}", title=title)               # with values
    t.n_("{n} song", "{n} songs", n)                # plural forms of the language
    t.p_("command", "settings")                     # with a context (command names...)

(``make messages`` extracts exactly these calls; a text defined away from where it is shown
is marked with :func:`N_`.) Durations, sizes and dates are written by the same object in the
language's own way (:meth:`Texts.wait`, :meth:`Texts.size`, :meth:`Texts.datetime`...).
Who gets which language: :func:`negotiate` (a platform's language tag, a user's choice) and
:func:`from_accept_language` (the HTTP API); anything unsupported is English.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from string import Formatter

from babel import Locale
from babel.dates import format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal
from babel.support import Translations

#: The languages we answer in, English first (the fallback), as catalogue folder names.
LANGUAGES: tuple[str, ...] = ("en", "de", "es", "fr", "pt_BR", "ru")
DEFAULT = "en"
#: Each language's name in itself (language pickers).
NAMES: dict[str, str] = {
    "en": "English",
    "de": "Deutsch",
    "es": "Español",
    "fr": "Français",
    "pt_BR": "Português (Brasil)",
    "ru": "Русский",
}
LOCALES = Path(__file__).resolve().parent.parent / "locales"
DOMAIN = "messages"


def N_(message: str) -> str:
    """Mark ``message`` for the catalogues where it is defined; it is translated where shown."""
    return message


def negotiate(tag: str | None) -> str:
    """Our language for a language tag ("de", "de-AT", "pt-br", "pt_BR", "es-419", "en-US"...).

    Portuguese is answered in Brazilian Portuguese; anything else unsupported in English."""
    if not tag:
        return DEFAULT
    parts = tag.replace("_", "-").strip().split("-")
    base = parts[0].lower()
    if base == "pt":
        return "pt_BR"
    return base if base in LANGUAGES else DEFAULT


def from_accept_language(header: str | None) -> str:
    """The best of our languages for an HTTP ``Accept-Language`` header (RFC 9110 q-values)."""
    ranked: list[tuple[float, int, str]] = []
    for index, item in enumerate((header or "").split(",")):
        tag, _, params = item.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if not tag.strip() or tag.strip() == "*" or not math.isfinite(quality) or quality <= 0:
            continue
        ranked.append((-quality, index, tag.strip()))
    for _, _, tag in sorted(ranked):
        base = tag.replace("_", "-").split("-")[0].lower()
        if base in {lang.split("_")[0].lower() for lang in LANGUAGES}:
            return negotiate(tag)
    return DEFAULT


def placeholders(message: str) -> set[str]:
    """The ``{names}`` a message fills in."""
    return {name for _, name, _, _ in Formatter().parse(message) if name}


@cache
def _translations(lang: str) -> Translations:
    path = LOCALES / lang / "LC_MESSAGES" / f"{DOMAIN}.po"
    with path.open("rb") as po:
        catalog = read_po(po, locale=lang, domain=DOMAIN)
    for message in list(catalog):
        if message.fuzzy and message.id:
            catalog.delete(message.id, message.context)  # unreviewed: English until it is
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return Translations(compiled, domain=DOMAIN)


@dataclass(frozen=True)
class Texts:
    """The texts of one language (see the module's docstring for how they are used)."""

    lang: str

    @property
    def locale(self) -> Locale:
        return Locale.parse(self.lang)

    @property
    def tag(self) -> str:
        """The BCP 47 tag (HTML ``lang``, ``Content-Language``): pt-BR."""
        return self.lang.replace("_", "-")

    def _(self, message: str, /, **values: object) -> str:
        return self._fill(_translations(self.lang).gettext(message), values)

    def n_(self, singular: str, plural: str, n: int, /, **values: object) -> str:
        """A text in the plural form ``n`` needs (``{n}`` is filled in, written as a number)."""
        text = _translations(self.lang).ngettext(singular, plural, n)
        return self._fill(text, {"n": self.number(n), **values})

    def p_(self, context: str, message: str, /, **values: object) -> str:
        """A text with a context, for the same English words that translate differently."""
        text = str(_translations(self.lang).pgettext(context, message))
        return self._fill(text, values)

    def has(self, message: str, context: str | None = None) -> bool:
        """Whether this language's catalogue translates ``message`` (not the English fallback)."""
        catalog = _translations(self.lang)
        key = message if context is None else f"{context}\x04{message}"
        return key in catalog._catalog

    @staticmethod
    def _fill(text: str, values: dict[str, object]) -> str:
        return text.format(**values) if values else text

    # --- numbers, durations, sizes, dates, the language's own way -------------------------

    def number(self, value: float, digits: int = 0) -> str:
        """1,234 / 1.234 / 1 234; ``digits`` after the decimal sign, at most."""
        fmt = "#,##0" + ("." + "#" * digits if digits else "")
        return format_decimal(value, format=fmt, locale=self.locale)

    def fixed(self, value: float, digits: int = 1) -> str:
        """A number with exactly ``digits`` after the decimal sign: 7.0 / 7,0."""
        fmt = "#,##0" + ("." + "0" * digits if digits else "")
        return format_decimal(value, format=fmt, locale=self.locale)

    def _units(self, *parts: tuple[int, str]) -> str:
        shown = [(n, unit) for n, unit in parts if n] or parts[-1:]
        return " ".join(self._unit(n, unit) for n, unit in shown)

    def _unit(self, n: int, unit: str) -> str:
        value = self.number(n)
        if unit == "hour":
            # TRANSLATORS: hours in a short duration, as in "3 h 20 min"
            return self.p_("duration", "{n} h", n=value)
        if unit == "minute":
            # TRANSLATORS: minutes in a short duration, as in "3 h 20 min", "12 min"
            return self.p_("duration", "{n} min", n=value)
        # TRANSLATORS: seconds in a short duration, as in "45 s", "3 min 20 s"
        return self.p_("duration", "{n} s", n=value)

    def wait(self, seconds: float) -> str:
        """A wait, rounded up (never "0 min"): 45 s, 12 min, 3 h 20 min."""
        total = max(1, math.ceil(seconds))
        if total < 60:
            return self._units((total, "second"))
        minutes = math.ceil(total / 60)
        return self._units(*zip(divmod(minutes, 60), ("hour", "minute"), strict=True))

    def remaining(self, seconds: float) -> str:
        """A time left, rounded to the minute below: 3 h 20 min, 45 min (0 min at the end)."""
        minutes = max(0, int(seconds // 60))
        return self._units(*zip(divmod(minutes, 60), ("hour", "minute"), strict=True))

    def eta(self, seconds: float) -> str:
        """An estimate, seconds while they matter: 40 s, 3 min 20 s, 12 min, 1 h 5 min."""
        total = max(1, round(seconds))
        if total < 60:
            return self._units((total, "second"))
        minutes, sec = divmod(total, 60)
        if minutes < 10:
            return self._units((minutes, "minute"), (sec, "second"))
        return self._units(*zip(divmod(minutes, 60), ("hour", "minute"), strict=True))

    def megabytes(self, size: int) -> str:
        """A file's size in MiB as chats show it: 7.1 MB (7,1 MB)."""
        return f"{self.number(size / (1024 * 1024), 1)} MB"

    def size(self, value: int) -> str:
        """A download's size in decimal units: 950 B, 7.1 MB."""
        amount = float(value)
        for unit in ("B", "KB", "MB"):
            if amount < 1000:
                digits = 0 if unit == "B" else 1
                return f"{self.number(amount, digits)} {unit}"
            amount /= 1000
        return f"{self.number(amount, 1)} GB"

    def moment(self, timestamp: float) -> str:
        """A moment in UTC, written the language's short way: 12/2/26, 7:21 AM UTC."""
        when = datetime.fromtimestamp(timestamp, UTC)
        return f"{format_datetime(when, format='short', tzinfo=UTC, locale=self.locale)} UTC"


@cache
def texts(lang: str | None) -> Texts:
    """The texts of ``lang`` (one of :data:`LANGUAGES`; anything else is negotiated)."""
    return Texts(lang if lang in LANGUAGES else negotiate(lang))


ENGLISH = texts(DEFAULT)
