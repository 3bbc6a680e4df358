"""Admin controls from the chat, the same on every platform.

An adapter says who asks and with which rights (an :class:`Actor`: a Discord member with
Manage Server, a Telegram group admin, a bot owner/admin from the settings) and calls one
function here; every rule about who may do what lives in this module:

- in a server or group (a scope), its admins and the bot admins act on that scope;
- the global limits, bans and stats (and anything asked in a private chat) are for bot
  admins only;
- every change is validated by shared.limits (a clear message with the allowed range), takes
  effect for the next request (the gate reads the limits at each request) and is written to
  the audit log (shared.limits.audit_log: who, what, when).

The tables (:func:`limits_table`, :func:`stats_table`, ...) are plain monospace text that both
platforms show in a code block; the sentences around them are each platform's own.
A user's /forget is in shared.forget.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

from redis.asyncio import Redis

from shared import gate, jobs, keys, limits, stats
from shared.config import Settings
from shared.errors import InvalidOption, Params, StembotError
from shared.i18n import ENGLISH, N_, Texts
from shared.schemas import JobRequest

Source = Literal["default", "global", "scope"]
Reason = Literal["not_admin", "global", "in_progress"]

#: What each refusal says (a platform may word its own, by ``reason``).
REASONS: dict[Reason, str] = {
    "not_admin": N_("Only admins can do that."),
    "global": N_("Only the bot's admins can act on the global limits, bans and stats."),
    "in_progress": N_(
        "You have songs in progress: cancel them or wait until they are done, then try again."
    ),
}
#: How far back an admin can look.
MAX_DAYS = stats.KEEP_DAYS
AUDIT_SCAN = 500


class NotAllowed(StembotError):
    """The actor may not do this here; ``reason`` says why (each platform words it)."""

    code = "not_allowed"

    def __init__(self, reason: Reason) -> None:
        self.reason: Reason = reason
        super().__init__(reason=reason)

    @classmethod
    def render(cls, t: Texts, params: Params) -> str:
        return t._(REASONS.get(params.get("reason"), REASONS["not_admin"]))  # type: ignore[call-overload]


@dataclass(frozen=True)
class Actor:
    """Who asks, where, and with which rights (as the platform told the adapter)."""

    #: "discord:<id>", "telegram:<id>"
    user_id: str
    #: The server or group the command was used in ("discord:guild:<id>",
    #: "telegram:chat:<id>"); None in a private chat.
    scope: str | None = None
    #: An admin of that scope (Manage Server; a group's creator or administrator).
    scope_admin: bool = False
    #: A bot owner/admin from the settings: the global limits, and every scope.
    bot_admin: bool = False

    @property
    def admin(self) -> bool:
        """May use admin commands here at all."""
        return self.bot_admin or (self.scope is not None and self.scope_admin)


def target(actor: Actor, *, global_: bool = False) -> str | None:
    """The scope an admin command acts on (None: global), or NotAllowed."""
    if global_ or actor.scope is None:
        if not actor.bot_admin:
            raise NotAllowed("global" if actor.admin else "not_admin")
        return None
    if not actor.admin:
        raise NotAllowed("not_admin")
    return actor.scope


# --- limits ------------------------------------------------------------------------------


@dataclass(frozen=True)
class LimitRow:
    key: str
    value: int
    #: Where the value comes from: the settings, the global override, this scope's override.
    source: Source
    help: str

    @property
    def shown(self) -> str:
        unlimited = self.value == 0 and limits.KEYS[self.key].zero_unlimited
        return N_("no limit") if unlimited else str(self.value)  # shown with t._(...)


@dataclass(frozen=True)
class LimitsView:
    scope: str | None
    rows: list[LimitRow]

    def row(self, key: str) -> LimitRow:
        return next(r for r in self.rows if r.key == key)


@dataclass(frozen=True)
class Changed:
    """A limit after set/reset: the value in force before and now, and where it comes from."""

    key: str
    scope: str | None
    old: LimitRow
    new: LimitRow


async def view_limits(redis: Redis, settings: Settings, scope: str | None) -> LimitsView:
    """The limits in force in a scope (None: globally), each with where it comes from."""
    defaults = gate.defaults(settings).model_dump()
    global_ = await limits.overrides(redis, None)
    here = await limits.overrides(redis, scope) if scope else {}
    rows = []
    for key, spec in limits.KEYS.items():
        source: Source = "scope" if key in here else "global" if key in global_ else "default"
        value = here.get(key, global_.get(key, defaults[key]))
        rows.append(LimitRow(key, value, source, spec.help))
    return LimitsView(scope, rows)


async def show_limits(
    redis: Redis, settings: Settings, actor: Actor, *, global_: bool = False
) -> LimitsView:
    return await view_limits(redis, settings, target(actor, global_=global_))


async def set_limit(
    redis: Redis, settings: Settings, actor: Actor, key: str, raw: str, *, global_: bool = False
) -> Changed:
    """Validate and set one limit here (or globally); logged in the audit log."""
    scope = target(actor, global_=global_)
    limits.parse_value(key, raw)  # the message names the key and its range
    before = await view_limits(redis, settings, scope)
    await limits.set_limit(redis, scope, key, raw, actor.user_id)
    after = await view_limits(redis, settings, scope)
    return Changed(key, scope, before.row(key), after.row(key))


async def reset_limit(
    redis: Redis, settings: Settings, actor: Actor, key: str, *, global_: bool = False
) -> Changed:
    """Drop this scope's (or the global) value: the next layer down applies again."""
    scope = target(actor, global_=global_)
    limits.known(key)  # InvalidOption naming the known limits
    before = await view_limits(redis, settings, scope)
    await limits.reset_limit(redis, scope, key, actor.user_id)
    after = await view_limits(redis, settings, scope)
    return Changed(key, scope, before.row(key), after.row(key))


# --- bans --------------------------------------------------------------------------------


async def ban(
    redis: Redis, actor: Actor, user_id: str, reason: str = "", *, global_: bool = False
) -> str | None:
    """Ban a user here (or everywhere); returns the scope (None: everywhere)."""
    scope = target(actor, global_=global_)
    await limits.ban(redis, user_id, actor.user_id, reason, scope=scope)
    return scope


async def unban(
    redis: Redis, actor: Actor, user_id: str, *, global_: bool = False
) -> tuple[str | None, bool]:
    """Lift a ban here (or the global one); (scope, False when there was none)."""
    scope = target(actor, global_=global_)
    return scope, await limits.unban(redis, user_id, actor.user_id, scope=scope)


# --- the queue ---------------------------------------------------------------------------


@dataclass(frozen=True)
class QueueEntry:
    """A run waiting or in progress, as an admin sees it."""

    #: 0 = next in its queue; None = a worker has it.
    position: int | None
    #: "download" (YouTube, before separating) or "separate"
    stage: str
    state: str
    percent: float | None
    model: str
    #: None: a song of another server or chat, not shown here.
    title: str | None
    #: Requests waiting for this run (several users may share one).
    waiting: int


async def queue(redis: Redis, settings: Settings, actor: Actor) -> list[QueueEntry]:
    """Every run waiting or in progress: running ones first, then in queue order.

    Titles are shown to bot admins, and to a scope's admins for the songs asked for in
    that scope; nobody's user id or chat is shown.
    """
    scope = target(actor)
    entries: list[QueueEntry] = []
    for stage, name in (
        ("download", settings.redis.download_queue_name),
        ("separate", settings.redis.queue_name),
    ):
        ids = [i.decode() for i in await redis.zrange(name, 0, -1)]
        waiting = await jobs.waiting_arq_ids(redis, name)
        running = [i for i in ids if i not in waiting]
        for position, arq_id in [(None, i) for i in running] + list(enumerate(waiting)):
            entry = await _entry(redis, arq_id, stage, position, scope, actor.bot_admin)
            if entry is not None:
                entries.append(entry)
    return sorted(entries, key=lambda e: (e.position is not None, e.stage == "separate"))


async def _entry(
    redis: Redis, arq_id: str, stage: str, position: int | None, scope: str | None, all_: bool
) -> QueueEntry | None:
    key = arq_id.removesuffix(jobs.DOWNLOAD_SUFFIX).split(".", 1)[0]
    fields = ["state", "percent", "spec", "title"]
    state, percent, spec_raw, title = await redis.hmget(keys.job(key), fields)  # type: ignore[misc]
    if spec_raw is None:
        return None  # cancelled or superseded: the worker skips it
    spec = JobRequest.model_validate_json(spec_raw)
    requests = await jobs.waiting_requests(redis, key)
    visible = all_ or any(r.ticket is not None and r.ticket.scope == scope for r in requests)
    shown = title.decode() if title else spec.source.title
    return QueueEntry(
        position=position,
        stage=stage,
        state=state.decode() if state else "queued",
        percent=float(percent) if percent else None,
        model=spec.options.model,
        title=shown if visible else None,
        waiting=len(requests),
    )


#: A run's state as the admins' queue list shows it.
STATES: dict[str, str] = {
    "queued": N_("queued"),
    "downloading": N_("downloading"),
    "decoding": N_("reading"),
    "separating": N_("separating"),
    "encoding": N_("encoding"),
}


def queue_line(entry: QueueEntry, hidden: str, t: Texts = ENGLISH) -> str:
    """ "#1 · queued · htdemucs · Song (2 waiting)"; ``hidden`` stands for another's title.

    Positions count within a queue: YouTube links wait for a download first.
    """
    where = t._("running") if entry.position is None else f"#{entry.position + 1}"
    if entry.stage == "download" and entry.state == "queued":
        state = t._("queued for download")
    else:
        state = t._(STATES[entry.state]) if entry.state in STATES else entry.state
    if entry.percent is not None and entry.state in ("downloading", "separating"):
        state += f" {t.number(entry.percent)}%"
    waiting = t.n_(" ({n} waiting)", " ({n} waiting)", entry.waiting) if entry.waiting > 1 else ""
    return f"{where} · {state} · {entry.model} · {entry.title or hidden}{waiting}"


# --- stats and the audit log ---------------------------------------------------------------


def parse_days(raw: str | int | None, default: int = 7) -> int:
    """A number of days from 1 to MAX_DAYS (InvalidOption with the range otherwise)."""
    if raw is None or raw == "":
        return default
    text = str(raw).strip()
    if text.isdigit() and 1 <= int(text) <= MAX_DAYS:
        return int(text)
    raise InvalidOption(
        N_("days must be a whole number from 1 to {maximum}; got {raw}."),
        maximum=MAX_DAYS,
        raw=repr(str(raw)),
    )


async def day_stats(
    redis: Redis, actor: Actor, days: int, *, global_: bool = False
) -> tuple[str | None, list[stats.Day]]:
    """(scope, the last ``days`` days, today first) for this scope or globally."""
    scope = target(actor, global_=global_)
    return scope, await stats.recent(redis, days, scope)


def stats_table(days: list[stats.Day], t: Texts = ENGLISH) -> str:
    """Jobs by outcome and audio minutes per day, a total line, failures by reason."""
    heads = [
        t.p_("stats column", "day"),
        t.p_("stats column", "done"),
        t.p_("stats column", "failed"),
        t.p_("stats column", "cancel"),
        t.p_("stats column", "minutes"),
    ]
    total = stats.total(days)
    total_label = t.p_("stats row", "total")
    rows = [
        [d.day, str(d.done), str(d.failed), str(d.cancelled), t.fixed(d.minutes, 1)]
        for d in [*days, total]
    ]
    rows[-1][0] = total_label
    widths = [
        max(least, *(len(row[i]) for row in [heads, *rows]))
        for i, least in enumerate((10, 5, 6, 6, 8))
    ]
    lines = [
        " ".join(
            cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i]) for i, cell in enumerate(row)
        )
        for row in [heads, *rows]
    ]
    if total.failures:
        failures = ", ".join(f"{k} {n}" for k, n in total.failures.items())
        lines.append(t._("failures: {failures}", failures=failures))
    return "\n".join(lines)


async def audit(
    redis: Redis, actor: Actor, count: int = 10, *, global_: bool = False
) -> tuple[str | None, list[limits.AuditEntry]]:
    """The latest changes: this scope's, or every one (global, bot admins)."""
    scope = target(actor, global_=global_)
    entries = await limits.audit_log(redis, AUDIT_SCAN if scope else count)
    if scope:
        entries = [e for e in entries if e.scope == scope][:count]
    return scope, entries


def audit_line(entry: limits.AuditEntry, *, with_scope: bool) -> str:
    """ "2026-05-01 12:00 telegram:1 set jobs_per_hour 5 → 3" (UTC)."""
    at = time.strftime("%Y-%m-%d %H:%M", time.gmtime(entry.at))
    user = entry.key.split(" ")[-1]  # a ban's field is "<user>" or "<scope> <user>"
    if entry.action in ("set", "reset"):
        what = f"{entry.action} {entry.key} {entry.old or '-'} → {entry.new or '-'}"
    elif entry.action == "ban":
        what = f"ban {user}" + (f" ({entry.new})" if entry.new not in ("", "-") else "")
    else:
        what = f"{entry.action} {user}"
    where = f" [{entry.scope}]" if with_scope else ""
    return f"{at} {entry.actor} {what}{where}"


def limits_table(view: LimitsView, here: str, t: Texts = ENGLISH) -> str:
    """One line per limit: key, value, where it comes from (``here`` names the scope)."""
    labels = {
        "default": t.p_("limit source", "default"),
        "global": t.p_("limit source", "global"),
        "scope": here,
    }
    width = max(len(k) for k in limits.KEYS)
    values = {r.key: t._(r.shown) for r in view.rows}
    shown = max(8, *(len(v) for v in values.values()))
    return "\n".join(
        f"{r.key:<{width}} {values[r.key]:>{shown}}  {labels[r.source]}" for r in view.rows
    )
