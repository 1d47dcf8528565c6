"""The one settings module: every value comes from the environment, with safe dev defaults."""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import dj_database_url

from dialer.env import SettingError, env_bool, env_int, env_list, env_secret, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("DIALER_VAR_DIR", str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env_bool("DEBUG", True)
# Secrets: env or NAME_FILE. The development defaults are refused when DEBUG is off, as are
# secrets under 32 characters and one secret reused for another job.
SECRET_KEY = env_secret("SECRET_KEY", dev_default="dev-only-insecure-key", required=not DEBUG)
# Keys the audit chain's MACs and number tokens (compliance.keys); it must never change.
AUDIT_KEY = env_secret(
    "AUDIT_KEY",
    dev_default="dev-only-audit-key",
    required=not DEBUG,
    distinct_from={"SECRET_KEY": SECRET_KEY},
)
# Derives each stream's credentials for the engines' Twilio-style hang-up endpoint; its own key,
# so rotating it (which only cuts live calls' REST hang-up) touches nothing else.
DEV_REST_SECRET = "dev-only-rest-secret"  # noqa: S105 - public on purpose, refused off loopback
ENGINE_REST_SECRET = env_secret(
    "ENGINE_REST_SECRET",
    dev_default=DEV_REST_SECRET,
    required=not DEBUG,
    distinct_from={"SECRET_KEY": SECRET_KEY, "AUDIT_KEY": AUDIT_KEY},
)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1"])
LOOPBACK_HOSTS = frozenset({"", "127.0.0.1", "::1", "localhost"})

# HTTPS only when DEBUG is off (make demo and runserver keep plain HTTP). Each has its own switch
# for the proxy in front: SECURE_SSL_REDIRECT=0 when it already redirects or health-checks over
# plain HTTP; SECURE_PROXY_SSL_HEADER=0 unless the proxy sets X-Forwarded-Proto itself (any
# client could send the header otherwise, and Django would take plain HTTP for HTTPS).
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", not DEBUG)
# Opt-in: asking browsers to preload HSTS for the domain is hard to take back.
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("SECURE_PROXY_SSL_HEADER", not DEBUG) else None
)
# W021 only says the domain could not be submitted to the preload lists: that is the choice above.
SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "axes",
    "compliance",
    "campaigns",
    "telephony",
    "access",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",  # last: it turns a lockout into its 429 page
]

# Admin logins: after AXES_FAILURE_LIMIT failures for one username from one address, that pair
# is locked for AXES_COOLOFF_TIME hours (django-axes). The address is REMOTE_ADDR: behind a
# proxy every client shares the proxy's, so the lockout is then per username.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = env_int("AXES_COOLOFF_TIME", 1, minimum=1)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
# Its admin pages offer actions (deleting lockout records) with no permission of their own, which
# any staff user given a view permission could run: lockouts are handled with its commands.
AXES_ENABLE_ADMIN = False

ROOT_URLCONF = "dialer.urls"
WSGI_APPLICATION = "dialer.wsgi.application"
ASGI_APPLICATION = "dialer.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# Default: a SQLite file, so the demo needs no server. Several processes (web, worker, engine) share
# it, hence WAL, a long busy timeout and IMMEDIATE transactions (no lock upgrade deadlocks).
DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'dialer.sqlite3'}")
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=0)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
# PostgreSQL: an unreachable server fails a connection in seconds, and a runaway statement is
# cancelled instead of holding locks and a connection (0 = no limit). Work that legitimately runs
# longer (the registry load's COPY) lifts it for its own transaction with SET LOCAL.
DB_CONNECT_TIMEOUT_S = env_int("DB_CONNECT_TIMEOUT_S", 5, minimum=1)
DB_STATEMENT_TIMEOUT_MS = env_int("DB_STATEMENT_TIMEOUT_MS", 30000, minimum=0)
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    pg_options: dict[str, object] = {"connect_timeout": DB_CONNECT_TIMEOUT_S}
    if DB_STATEMENT_TIMEOUT_MS:
        pg_options["options"] = f"-c statement_timeout={DB_STATEMENT_TIMEOUT_MS}"
    DATABASES["default"]["OPTIONS"] = {**DATABASES["default"].get("OPTIONS", {}), **pg_options}
if env_str("TEST_DATABASE_NAME"):
    DATABASES["default"]["TEST"] = {"NAME": env_str("TEST_DATABASE_NAME")}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_PASSWORD_VALIDATORS: list[dict[str, object]] = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LANGUAGE_CODE = "en-us"
# The zone the admin shows times in and reads typed times in: its users'. The database and the audit
# log stay in UTC; calling windows use each callee's zone (compliance.policy).
OPERATOR_TZ = env_str("OPERATOR_TZ", "Asia/Kolkata")
try:
    ZoneInfo(OPERATOR_TZ)
except (ValueError, ZoneInfoNotFoundError) as exc:
    raise SettingError(f"OPERATOR_TZ={OPERATOR_TZ!r}: not a time zone (Asia/Kolkata...)") from exc
TIME_ZONE = OPERATOR_TZ
# To the second, with the zone named ("2026-12-04 08:35:20 IST"): dialer/formats/en/formats.py.
FORMAT_MODULE_PATH = ["dialer.formats"]
USE_I18N = False
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"

# Celery. Default: kombu's filesystem transport (no broker server); Redis when CELERY_BROKER_URL
# or REDIS_URL is set.
REDIS_URL = env_str("REDIS_URL", "")
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", REDIS_URL or "filesystem://")
CELERY_QUEUE_DIR = VAR_DIR / "celery-queue"
CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {}
CELERY_BROKER_TRANSPORT: str | None = None
CELERY_WORKER_POOL = "prefork"
CELERY_WORKER_CONCURRENCY: int | None = None  # None: the command line's -c, else one per CPU
if CELERY_BROKER_URL.startswith("filesystem://"):
    # kombu's transport lets a consumer read a message file before its writer has filled it
    # (JSONDecodeError: the worker dies); ours makes each file appear whole (dialer/broker_fs.py).
    CELERY_BROKER_TRANSPORT = "dialer.broker_fs:Transport"
    # One solo process per worker, whatever -c says (dialer/celery.py): a fetched message lives
    # only in that process's memory until acknowledged, so fewer in flight means fewer lost to
    # a kill, and SQLite takes one writer at a time anyway.
    CELERY_WORKER_POOL = "solo"
    CELERY_WORKER_CONCURRENCY = 1
    CELERY_QUEUE_DIR.mkdir(parents=True, exist_ok=True)
    (VAR_DIR / "celery-processed").mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(CELERY_QUEUE_DIR),
        "data_folder_out": str(CELERY_QUEUE_DIR),
        "processed_folder": str(VAR_DIR / "celery-processed"),
        "control_folder": str(VAR_DIR / "celery-control"),
        "store_processed": False,
        "polling_interval": 0.1,  # the default (1 s) would add a second to every dial task
    }
else:
    # Longer than any dial task can run; dialing is idempotent per attempt regardless.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_DEFAULT_QUEUE = "dialer"
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
DIALER_TICK_SECONDS = float(env_str("DIALER_TICK_SECONDS", "1.0"))

# Telephony.
ENGINE_SIP_HOST = env_str("ENGINE_SIP_HOST", "127.0.0.1")
ENGINE_BASE_PORT = env_int("ENGINE_BASE_PORT", 5080, minimum=1)
ENGINE_HEARTBEAT_STALE_S = env_int("ENGINE_HEARTBEAT_STALE_S", 10, minimum=2)
# Each engine process serves Twilio's call-update REST call (agents hang up through it) here;
# port 0 = any free port, which each stream's start message names. "" turns it off. Loopback by
# default: it is plain HTTP with basic auth, for agents on the same host or a private network.
ENGINE_REST_HOST = env_str("ENGINE_REST_HOST", "127.0.0.1")
ENGINE_REST_PORT = env_int("ENGINE_REST_PORT", 0, minimum=0)
if ENGINE_REST_SECRET == DEV_REST_SECRET and ENGINE_REST_HOST not in LOOPBACK_HOSTS:
    # The development key is public (it is in this file): anyone who can reach the endpoint
    # could derive any stream's credentials and hang up its call.
    raise SettingError(
        f"ENGINE_REST_HOST={ENGINE_REST_HOST!r} is reachable from other hosts while "
        "ENGINE_REST_SECRET is the development default: set ENGINE_REST_SECRET"
    )
# Idle connections from one address cannot take the REST endpoint's whole connection cap.
ENGINE_REST_MAX_CONN_PER_CLIENT = env_int("ENGINE_REST_MAX_CONN_PER_CLIENT", 8, minimum=1)
# An agent that sends nothing for this long is disconnected and its call ended (agent_idle);
# a WebSocket ping this often finds agents that are gone without closing their socket.
AGENT_IDLE_TIMEOUT_S = env_int("AGENT_IDLE_TIMEOUT_S", 30, minimum=1)
AGENT_PING_INTERVAL_S = env_int("AGENT_PING_INTERVAL_S", 10, minimum=1)
# Engines answer SIP only from their trunks' addresses and these (an SBC or SIP edge in front of
# the trunks: hosts or IPs, comma-separated); everything else is dropped before pjsua sees it.
ENGINE_SIP_ALLOW = env_list("ENGINE_SIP_ALLOW", [])
# How a call with an agent carries its audio: "relay" (the bridge's own RTP relay; pjsua only
# signals) or "tap" (pjsua's media, jitter buffer and an AudioMediaPort per call: ~13 ms more
# latency to the agent for about the same CPU per call, measured with bench/bridge.py).
ENGINE_BRIDGE_MEDIA = env_str("ENGINE_BRIDGE_MEDIA", "relay")
if ENGINE_BRIDGE_MEDIA not in {"relay", "tap"}:
    raise SettingError(f"ENGINE_BRIDGE_MEDIA={ENGINE_BRIDGE_MEDIA!r}: use relay or tap")
# How often a pool's supervisor asks the database for approved attempts while an engine has room.
ENGINE_POLL_MS = env_int("ENGINE_POLL_MS", 10, minimum=1)
# An approval older than this is re-checked before dialing: the compliance check must be recent.
DIAL_APPROVAL_MAX_AGE_S = env_int("DIAL_APPROVAL_MAX_AGE_S", 30, minimum=1)
# A worker that claimed an attempt and vanished before deciding: the attempt goes back to the queue.
DIAL_CLAIM_STALE_S = env_int("DIAL_CLAIM_STALE_S", 60, minimum=5)
# A queued attempt whose Celery task seems lost (a killed worker) has its task sent again.
DIAL_REQUEUE_AFTER_S = env_int("DIAL_REQUEUE_AFTER_S", 30, minimum=1)
# Pacing rate windows are widened by this much, so that the jitter between a pacing grant and
# its INVITE on the wire never puts L + 1 calls into a carrier's 1-second window.
PACING_GUARD_MS = env_int("PACING_GUARD_MS", 25, minimum=0)
MAX_CALL_SECONDS = env_int("MAX_CALL_SECONDS", 600, minimum=1)
# Trunk credentials: TRUNK_<NAME>_PASSWORD (or _FILE), looked up by the trunk's name.

# Compliance (the India pack). Windows are half-open [start, end) in the callee's local time.
COMPLIANCE_PROMO_WINDOW = env_str("COMPLIANCE_PROMO_WINDOW", "10:00-21:00")
COMPLIANCE_SERVICE_WINDOW = env_str("COMPLIANCE_SERVICE_WINDOW", "09:00-21:00")
COMPLIANCE_JURISDICTIONS = env_list("COMPLIANCE_JURISDICTIONS", ["IN"])
# Promotional calls need a registry version whose as-of time is this recent (fail closed).
COMPLIANCE_REGISTRY_MAX_AGE_H = env_int("COMPLIANCE_REGISTRY_MAX_AGE_H", 24, minimum=1)
# A registry load that would remove protection by accident is refused unless forced (audited):
# a full file with this many percent fewer rows than the version in force, a file with more
# than this percent of rejected rows, a delta removing more than this percent of the entries.
REGISTRY_MAX_DROP_PCT = env_int("REGISTRY_MAX_DROP_PCT", 10, minimum=0)
REGISTRY_MAX_REJECTED_PCT = env_int("REGISTRY_MAX_REJECTED_PCT", 5, minimum=0)
REGISTRY_MAX_DELTA_REMOVE_PCT = env_int("REGISTRY_MAX_DELTA_REMOVE_PCT", 10, minimum=0)
# Frequency caps per number and sender per local day (no TRAI value exists: internal defaults).
COMPLIANCE_MAX_ATTEMPTS_PER_DAY = env_int("COMPLIANCE_MAX_ATTEMPTS_PER_DAY", 3, minimum=1)
COMPLIANCE_MAX_ANSWERED_PROMO_PER_DAY = env_int(
    "COMPLIANCE_MAX_ANSWERED_PROMO_PER_DAY", 1, minimum=1
)
COMPLIANCE_CAP_PURPOSES = env_list(
    "COMPLIANCE_CAP_PURPOSES", ["promotional", "service_implicit", "service_explicit"]
)
# Caller-ID number series (national number prefixes) and the sectors held to the service series.
COMPLIANCE_PROMO_SERIES = env_list("COMPLIANCE_PROMO_SERIES", ["140"])
COMPLIANCE_SERVICE_SERIES = env_list("COMPLIANCE_SERVICE_SERIES", ["1600"])
COMPLIANCE_SERIES_SECTORS = env_list("COMPLIANCE_SERIES_SECTORS", ["bfsi", "government"])
COMPLIANCE_DEFAULT_REGION = env_str("COMPLIANCE_DEFAULT_REGION", "IN")
# Zone of the campaigns' own daily windows (the regulatory windows use each callee's zone).
COMPLIANCE_DEFAULT_TZ = env_str("COMPLIANCE_DEFAULT_TZ", "Asia/Kolkata")

# Data protection: contact data of campaigns finished more than DATA_RETENTION_DAYS ago is erased
# (0: off; compliance.checks refuses 1-364, the DPDP Rules keep logs a year). The audit chain's
# head goes to AUDIT_ANCHOR_FILE (keep it off the database host) every AUDIT_ANCHOR_INTERVAL_S.
DATA_RETENTION_DAYS = env_int("DATA_RETENTION_DAYS", 0, minimum=0)
AUDIT_ANCHOR_FILE = env_str("AUDIT_ANCHOR_FILE", str(VAR_DIR / "audit-anchors.log"))
AUDIT_ANCHOR_INTERVAL_S = env_int("AUDIT_ANCHOR_INTERVAL_S", 3600, minimum=60)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    # Phone numbers keep only their last four digits in every line (dialer/log_mask.py).
    "filters": {"mask_numbers": {"()": "dialer.log_mask.MaskNumbers"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["mask_numbers"],
        }
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    # django-axes says "BEGIN" at every start of every process; its lockouts still log.
    "loggers": {"axes.apps": {"level": "WARNING"}},
}
