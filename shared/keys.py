"""Every Redis key the product uses, built in one place.

The layout (``<...>`` is a part filled in; "user" is the platform-prefixed id,
``telegram:<id>``, ``discord:<id>``, ``api:<owner>``, unless said otherwise):

======================================  ======  =====================  ===============  ========
key                                     type    owner                  expires          per-user
======================================  ======  =====================  ===============  ========
``stembot:request:<request>``           string  shared.jobs            3 days           yes [1]
``stembot:job:<key>``                   hash    shared.jobs            1 day after end  yes [2]
``stembot:job:<key>:requests``          set     shared.jobs            3 days           no
``stembot:result:<key>``                string  shared.jobs            with its links   no
``stembot:master:<separation key>``     string  shared.masters         with its links   no
``stembot:cancel:<arq id>``             string  shared.jobs            1 day            no
``stembot:score:<queue>``               string  shared.jobs            1 day            no
``stembot:stats:job_s``                 string  shared.jobs            never            no
``stembot:stats:render_s``              string  shared.places          never            no
``stembot:user:<user>:jobs``            set     shared.usage           2 days           yes
``stembot:limits:window:<user>``        zset    shared.limits          1 h idle         yes
``stembot:limits:active:<user>``        zset    shared.limits          6 h              yes
``stembot:limits:minutes:<user>:<day>`` hash    shared.limits          2 days           yes
``stembot:limits:mixes:<user>``         zset    shared.mixes           1 h idle         yes
``stembot:limits:admitting``            zset    shared.limits          10 min           no
``stembot:limits:overrides:global``     hash    shared.limits          never            no
``stembot:limits:overrides:<scope>``    hash    shared.limits          never            no
``stembot:limits:bans``                 hash    shared.limits          never            yes [3]
``stembot:audit``                       stream  shared.limits          ~10000 entries   yes [3]
``stembot:stats:day:<scope>:<day>``     hash    shared.stats           91 days          no
``stembot:stats:seen:<request>``        string  shared.stats           4 days           no
``stembot:metrics``                     hash    shared.metrics         never            no
``stembot:events:<platform>``           stream  frontends (bots/*)     ~10000 entries   no
``stembot:events:cli:<id>``             stream  bots.split             its run          no
``stembot:<platform>:final:<request>``  hash    bots.records           3 days           yes [1]
``stembot:<platform>:waiting``          hash    bots.peers             never (emptied)  no
``stembot:<platform>:processes``        zset    bots.peers             ~an hour idle    no
``stembot:budget:<platform>:<bot>``     hash    shared.sendbudget      a minute idle    no
``stembot:budget:<platform>:<bot>:<c>`` hash    shared.sendbudget      a minute idle    no [5]
``stembot:telegram:prefs:<tg user>``    hash    bots.telegram.store    never            yes
``stembot:telegram:active:<tg user>``   set     bots.telegram.store    3 days           yes
``stembot:telegram:pending:<chat>:<m>`` string  bots.telegram.store    1 h              yes [4]
``stembot:telegram:message:<chat>:<m>`` string  bots.telegram.store    3 days           yes [4]
``stembot:discord:commands:<app>:<g>``  string  bots.discord.app       never            no
``stembot:api:job:<request>``           hash    bots.api               3 days           yes [1]
``<queue>`` (``stembot:queue:*``)       zset    arq                    -                no
``<queue>:health-check``                string  arq (worker)           a minute         no
``arq:job:<id>``, ``arq:in-progress:``  ...     arq                    arq's own        no
``arq:retry:<id>``, ``arq:result:<id>`` ...     arq                    arq's own        no
``arq:abort``                           zset    arq (shared.jobs)      arq's own        no
======================================  ======  =====================  ===============  ========

[1] one request of the user (its record names them; the request id leads to the rest).
[2] ``spec`` is the request that started the run: /forget removes it, or the whole record.
[3] kept by /forget on purpose: the operators' record of abuse and of admin changes.
[4] the chat of a private conversation is the user's Telegram id; a pending song names them.
[5] ``<c>`` is a hash of the chat's id (a private chat's is the user's), never the id itself.

``<bot>`` names a bot without its token: Telegram's numeric bot id (the token's part before
``:``), or a hash of a Discord token; ``stembot:<platform>:waiting`` maps the requests waiting
in the queue to the bot process (its stream consumer name) that keeps their place shown;
``stembot:<platform>:processes`` holds when each process of a bot was last seen alive.

Contents: ``shared.jobs`` (request/job/result records), ``shared.masters``, ``shared.limits``
(the limiter and the policy), ``shared.stats``, ``bots.telegram.store``, ``bots.api`` say what
the fields mean.
A user's /forget (``shared.forget``) deletes every per-user key above except [3];
:data:`PATTERNS` lists the layout as glob patterns (a test checks every key of a real run
against them).
"""

from __future__ import annotations

import time

from arq.constants import (
    abort_jobs_ss,
    health_check_key_suffix,
    in_progress_key_prefix,
    job_key_prefix,
    result_key_prefix,
    retry_key_prefix,
)

ROOT = "stembot:"
LIMITS = f"{ROOT}limits:"
STATS = f"{ROOT}stats:"
TELEGRAM = f"{ROOT}telegram:"

# --- the core: requests, runs, results (shared.jobs) --------------------------------------


def request(request_id: str) -> str:
    return f"{ROOT}request:{request_id}"


def job(key: str) -> str:
    return f"{ROOT}job:{key}"


def job_requests(key: str) -> str:
    return f"{ROOT}job:{key}:requests"


def result(key: str) -> str:
    return f"{ROOT}result:{key}"


def master(separation_key: str) -> str:
    """A kept master of a separation: where its stems are and until when (shared.masters)."""
    return f"{ROOT}master:{separation_key}"


def cancel(arq_id: str) -> str:
    return f"{ROOT}cancel:{arq_id}"


def queue_score(queue_name: str) -> str:
    return f"{ROOT}score:{queue_name}"


JOB_SECONDS = f"{STATS}job_s"
#: The average time of a render from a kept master (another format, a mix): its ETAs.
RENDER_SECONDS = f"{STATS}render_s"


def user_jobs(user_id: str) -> str:
    """The job keys a user asked for (shared.usage)."""
    return f"{ROOT}user:{user_id}:jobs"


# --- limits (shared.limits) ----------------------------------------------------------------

BANS = f"{LIMITS}bans"
ADMITTING = f"{LIMITS}admitting"
AUDIT = f"{ROOT}audit"


def limit_overrides(scope: str | None) -> str:
    """Admins' overrides of one scope (None: the global ones)."""
    return f"{LIMITS}overrides:{scope or 'global'}"


def limit_window(user_id: str) -> str:
    return f"{LIMITS}window:{user_id}"


def limit_active(user_id: str) -> str:
    return f"{LIMITS}active:{user_id}"


def limit_minutes(user_id: str, now: float) -> str:
    """The audio minutes of the UTC day of ``now``."""
    return f"{LIMITS}minutes:{user_id}:{time.strftime('%Y-%m-%d', time.gmtime(now))}"


def limit_mixes(user_id: str) -> str:
    """The custom mixes of the last hour (shared.mixes), counted apart from songs."""
    return f"{LIMITS}mixes:{user_id}"


# --- statistics and metrics ------------------------------------------------------------------


def stats_day(scope: str | None, day: str) -> str:
    return f"{STATS}day:{scope or 'global'}:{day}"


def stats_seen(request_id: str) -> str:
    return f"{STATS}seen:{request_id}"


METRICS = f"{ROOT}metrics"

# --- frontends -------------------------------------------------------------------------------


def events(platform: str) -> str:
    """A frontend's event stream ("telegram", "discord", "api"), or one request's own
    ("cli:<id>", "page:<id>": its follower deletes it; see :func:`own_events`)."""
    return f"{ROOT}events:{platform}"


def own_events(stream: str) -> bool:
    """Whether ``stream`` is one request's own (followed by one caller, which may give up
    before the end: it expires) rather than a frontend's (read by a consumer group for good)."""
    return stream.startswith(f"{ROOT}events:") and ":" in stream.removeprefix(f"{ROOT}events:")


def final_parts(platform: str, request_id: str) -> str:
    """A request's status message as shown: what of its final message went out, the newest
    event shown and which bot process is editing it (bots.records)."""
    return f"{ROOT}{platform}:final:{request_id}"


def waiting(platform: str) -> str:
    """Requests waiting in the queue -> the bot process that shows their place (bots.peers)."""
    return f"{ROOT}{platform}:waiting"


def processes(platform: str) -> str:
    """A bot's processes by when each was last seen alive (bots.peers)."""
    return f"{ROOT}{platform}:processes"


def send_budget(platform: str, bot: str, chat: str | None = None) -> str:
    """A bot's send budget (a token bucket) for all its processes, or for one chat's hash
    (shared.sendbudget)."""
    return f"{ROOT}budget:{platform}:{bot}" + (f":{chat}" if chat is not None else "")


def telegram(*parts: object) -> str:
    """``stembot:telegram:<part>:<part>...`` (bots.telegram.store; "*" parts for a scan)."""
    return TELEGRAM + ":".join(str(p) for p in parts)


def discord_commands(application_id: int | None, guild_id: int | None) -> str:
    return f"{ROOT}discord:commands:{application_id}:{guild_id or 'global'}"


def api_job(request_id: str) -> str:
    """An HTTP API request's record (bots.api)."""
    return f"{ROOT}api:job:{request_id}"


#: The arq queues' default names (STEMBOT_REDIS_QUEUE_NAME, STEMBOT_REDIS_DOWNLOAD_QUEUE_NAME).
SEPARATE_QUEUE = f"{ROOT}queue:separate"
DOWNLOAD_QUEUE = f"{ROOT}queue:download"

# --- arq's own keys that we touch --------------------------------------------------------------


def health_check(queue_name: str) -> str:
    """Written by an arq worker of that queue every minute or so."""
    return f"{queue_name}{health_check_key_suffix}"


def arq_in_progress(arq_id: str) -> str:
    """Present while a worker runs that job."""
    return f"{in_progress_key_prefix}{arq_id}"


def arq_retry(arq_id: str) -> str:
    """arq's count of a job's tries."""
    return f"{retry_key_prefix}{arq_id}"


#: arq's zset of jobs to abort (its abort protocol).
ARQ_ABORT = abort_jobs_ss


#: Every key above as a glob pattern (``*`` for a filled-in part), and whether it is a
#: user's: /forget deletes those but the ones in :data:`KEPT_BY_FORGET`.
PATTERNS: dict[str, bool] = {
    request("*"): True,
    job("*"): True,
    job_requests("*"): False,
    result("*"): False,
    master("*"): False,
    cancel("*"): False,
    queue_score("*"): False,
    JOB_SECONDS: False,
    RENDER_SECONDS: False,
    user_jobs("*"): True,
    limit_window("*"): True,
    limit_active("*"): True,
    f"{LIMITS}minutes:*:*": True,
    limit_mixes("*"): True,
    ADMITTING: False,
    limit_overrides("*"): False,
    BANS: True,
    AUDIT: True,
    stats_day("*", "*"): False,
    stats_seen("*"): False,
    METRICS: False,
    events("*"): False,
    final_parts("*", "*"): True,
    waiting("*"): False,
    processes("*"): False,
    send_budget("*", "*"): False,
    send_budget("*", "*", "*"): False,
    telegram("prefs", "*"): True,
    telegram("active", "*"): True,
    telegram("pending", "*", "*"): True,
    telegram("message", "*", "*"): True,
    f"{ROOT}discord:commands:*:*": False,
    api_job("*"): True,
    f"{ROOT}queue:*": False,  # the default queue names (STEMBOT_REDIS_QUEUE_NAME...)
    health_check("*"): False,
    f"{job_key_prefix}*": False,
    arq_in_progress("*"): False,
    arq_retry("*"): False,
    f"{result_key_prefix}*": False,
    ARQ_ABORT: False,
}

#: Per-user keys /forget keeps on purpose (the operators' record).
KEPT_BY_FORGET = (BANS, AUDIT)
