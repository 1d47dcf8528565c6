"""The one settings module: every value comes from the environment, with safe dev defaults."""

from __future__ import annotations

from pathlib import Path

import dj_database_url

from dialer.env import SettingError, env_bool, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("DIALER_VAR_DIR", str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env_bool("DEBUG", True)
SECRET_KEY = env_str("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise RuntimeError("SECRET_KEY must be set when DEBUG is off")
    SECRET_KEY = "dev-only-insecure-key"  # noqa: S105 - development default, refused when DEBUG=0
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1"])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
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
]

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
if env_str("TEST_DATABASE_NAME"):
    DATABASES["default"]["TEST"] = {"NAME": env_str("TEST_DATABASE_NAME")}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_PASSWORD_VALIDATORS: list[dict[str, str]] = []
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
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
if CELERY_BROKER_URL.startswith("filesystem://"):
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
# port 0 = any free port, which each stream's start message names. "" turns it off.
ENGINE_REST_HOST = env_str("ENGINE_REST_HOST", ENGINE_SIP_HOST)
ENGINE_REST_PORT = env_int("ENGINE_REST_PORT", 0, minimum=0)
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

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
}
