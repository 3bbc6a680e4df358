"""Per-user limits, bans and admin overrides, the same for every frontend.

Three parts, imported together as ``from shared import limits``:

- :mod:`shared.limits.limiter`: counting requests against the limits in force, one Lua
  script per check (acquire, charge_minutes, release, refund) and the Decision it returns;
- :mod:`shared.limits.policy`: which limits are in force where (KEYS, the admins' layered
  overrides), bans, and the audit log of every change;
- :mod:`shared.limits.texts`: what a refusal or a bad admin value says to people.

The Redis keys are in shared.keys.
"""

from shared.keys import ADMITTING as ADMITTING_KEY
from shared.keys import AUDIT as AUDIT_STREAM
from shared.keys import BANS as BANS_KEY
from shared.keys import LIMITS as PREFIX
from shared.limits.limiter import (
    ACTIVE_TTL_S,
    ADMITTING_TTL_S,
    DAY_S,
    MINUTES_TTL_S,
    WINDOW_S,
    Decision,
    Reason,
    acquire,
    active_key,
    add_minutes,
    admitted,
    charge_minutes,
    forget_user,
    minutes_key,
    recent_minutes_keys,
    refund,
    release,
    window_key,
)
from shared.limits.policy import (
    AUDIT_MAXLEN,
    KEYS,
    AuditEntry,
    KeySpec,
    Limits,
    audit_log,
    ban,
    ban_field,
    check_scope,
    effective,
    is_banned,
    known,
    overrides,
    overrides_key,
    parse_value,
    reset_limit,
    set_limit,
    unban,
)
from shared.limits.texts import format_duration, message

__all__ = [
    "ACTIVE_TTL_S",
    "ADMITTING_KEY",
    "ADMITTING_TTL_S",
    "AUDIT_MAXLEN",
    "AUDIT_STREAM",
    "BANS_KEY",
    "DAY_S",
    "KEYS",
    "MINUTES_TTL_S",
    "PREFIX",
    "WINDOW_S",
    "AuditEntry",
    "Decision",
    "KeySpec",
    "Limits",
    "Reason",
    "acquire",
    "active_key",
    "add_minutes",
    "admitted",
    "audit_log",
    "ban",
    "ban_field",
    "charge_minutes",
    "check_scope",
    "effective",
    "forget_user",
    "format_duration",
    "is_banned",
    "known",
    "message",
    "minutes_key",
    "overrides",
    "overrides_key",
    "parse_value",
    "recent_minutes_keys",
    "refund",
    "release",
    "reset_limit",
    "set_limit",
    "unban",
    "window_key",
]
