"""Settings for RefundChat, configured from the environment (12-factor).

With no environment variables the project runs on embedded defaults that need
no server: SQLite, a SQLite-backed channel layer that crosses processes (so the
Celery worker can push to sockets served by Daphne), kombu's filesystem broker
and the console email backend. `DATABASE_URL` and `REDIS_URL` switch to
PostgreSQL and Redis.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import dj_database_url
from django.utils.translation import gettext_lazy as _
from kombu import Queue

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("REFUNDCHAT_VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DJANGO_DEBUG", True)
# The development key is only acceptable with DEBUG on; production must set its own.
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise RuntimeError("DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is off")
    SECRET_KEY = "refundchat-insecure-development-key-do-not-use-in-production"

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", "")

# Demo accounts (password "refundchat") may only be created outside production.
DEMO_DATA_ALLOWED = env_bool("REFUNDCHAT_DEMO_DATA_ALLOWED", DEBUG)

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.humanize",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "channels",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    # Optional TOTP two-factor for staff (issue #9; refundchat/two_factor.py).
    "django_otp",
    "django_otp.plugins.otp_totp",
    "refundchat",
    "tickets",
    "messaging",
    "media",
]

MIDDLEWARE = [
    # First, so every later line of the request carries its id and its time is measured (refundchat/logging.py).
    "refundchat.logging.request_context",
    "refundchat.metrics.http_metrics",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # request.user.is_verified(): staff with a TOTP device passed the code step (refundchat/two_factor.py).
    "django_otp.middleware.OTPMiddleware",
    "refundchat.two_factor.require_staff_two_factor",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Camera and microphone (calls, voice notes) for this origin only, never for embedded frames.
    "refundchat.middleware.permissions_policy",
    # Content-Security-Policy (CONTENT_SECURITY_POLICY below).
    "csp.middleware.CSPMiddleware",
]

ROOT_URLCONF = "refundchat.urls"
ASGI_APPLICATION = "refundchat.asgi.application"
WSGI_APPLICATION = "refundchat.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "refundchat.context_processors.navigation",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------
DATABASE_URL = os.environ.get("DATABASE_URL", "")
if DATABASE_URL:
    DATABASES: dict[str, dict[str, Any]] = {
        # Persistent connections: Daphne runs every database call of a process on one thread, and opening a
        # PostgreSQL connection per call cost more than the queries themselves (docs/benchmarks.md).
        "default": dict(
            dj_database_url.parse(
                DATABASE_URL,
                conn_max_age=int(os.environ.get("REFUNDCHAT_DB_CONN_MAX_AGE", "600")),
                conn_health_checks=True,
            )
        )
    }
else:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": VAR_DIR / "db.sqlite3",
            "OPTIONS": {
                # Daphne and the Celery worker write the same file: WAL plus
                # immediate transactions avoid "database is locked" errors.
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
            },
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Threads per Daphne process for the chat's hot writes (messaging.realtime.call_chat_write), each with its
# own connection: PostgreSQL works on them side by side; SQLite takes one writer at a time.
REFUNDCHAT_CHAT_WRITE_THREADS = int(os.environ.get("REFUNDCHAT_CHAT_WRITE_THREADS", "4" if DATABASE_URL else "1"))

# --- Channels -------------------------------------------------------------
REDIS_URL = os.environ.get("REDIS_URL", "")
# With Redis: "redis-pubsub" (the default: channels-redis' pub/sub layer with its publishes pipelined and each
# group message decoded once per process, refundchat/channel_layer.py; one subscription per group and process)
# or "redis" (channels-redis' list per channel, with capacity and expiry; about twice the work per frame in
# Daphne's event loop, docs/benchmarks.md). Both deliver at most once; clients recover from the database.
# "memory" is for single-process tests; "sqlite" for `make run` without Redis.
CHANNEL_LAYER_BACKEND = os.environ.get("REFUNDCHAT_CHANNEL_LAYER", "redis-pubsub" if REDIS_URL else "sqlite")
if CHANNEL_LAYER_BACKEND == "redis":
    CHANNEL_LAYERS: dict[str, dict[str, Any]] = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                "hosts": [REDIS_URL],
                "capacity": 1000,
                "expiry": 60,
                # Separate stacks sharing one Redis (test runs, staging beside production) keep apart.
                "prefix": os.environ.get("REFUNDCHAT_CHANNEL_PREFIX", "asgi"),
            },
        }
    }
elif CHANNEL_LAYER_BACKEND == "redis-pubsub":
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "refundchat.channel_layer.PipelinedPubSubChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL], "prefix": os.environ.get("REFUNDCHAT_CHANNEL_PREFIX", "asgi")},
        }
    }
elif CHANNEL_LAYER_BACKEND == "sqlite":
    INSTALLED_APPS.append("channels_lite")
    DATABASES["channels"] = {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": VAR_DIR / "channels.sqlite3",
        "OPTIONS": {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "timeout": 20,
        },
    }
    DATABASE_ROUTERS = ["channels_lite.router.ChannelsRouter"]
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_lite.layers.core.SQLiteChannelLayer",
            "CONFIG": {"database": "channels", "polling_interval": 0.05},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# --- Celery ---------------------------------------------------------------
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", REDIS_URL or "filesystem://")
if CELERY_BROKER_URL == "filesystem://":
    _broker_dir = VAR_DIR / "broker"
    for _sub in ("in", "processed", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, Any] = {
        "data_folder_in": str(_broker_dir / "in"),
        "data_folder_out": str(_broker_dir / "in"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
else:
    # Longer than the longest task, so an unacknowledged task is not redelivered while it runs.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
# The queue this stack's tasks go to and its workers read (`celery worker -Q`), for stacks sharing a broker.
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("REFUNDCHAT_CELERY_QUEUE", "celery")
# Two queues, each read by its own workers in production (deploy/Procfile.production, docs/deploy.md "Queues"):
# the default one carries the light, urgent tasks (refund-state notifications, the outbox, timers, routing,
# calls); media processing (ffmpeg, seconds to minutes a file) has its own, so a flood of videos only lengthens
# that queue. A worker started without -Q (make run, the tests' stack) reads both.
REFUNDCHAT_MEDIA_QUEUE = os.environ.get("REFUNDCHAT_CELERY_MEDIA_QUEUE", f"{CELERY_TASK_DEFAULT_QUEUE}.media")
CELERY_TASK_QUEUES = [Queue(CELERY_TASK_DEFAULT_QUEUE), Queue(REFUNDCHAT_MEDIA_QUEUE)]
CELERY_TASK_ROUTES = {
    "media.tasks.*": {"queue": REFUNDCHAT_MEDIA_QUEUE},
    "tickets.tasks.purge_expired_media": {"queue": REFUNDCHAT_MEDIA_QUEUE},
}
# Warm shutdown (SIGTERM) lets running tasks finish; a worker killed mid-task hands its task back, unacknowledged.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "Asia/Shanghai"
CELERY_BEAT_SCHEDULE: dict[str, dict[str, Any]] = {
    # Sockets of a server process that died are never closed: mark their people offline.
    "sweep-stale-sockets": {"task": "messaging.tasks.sweep_stale_sockets", "schedule": 60.0},
    # Notifications still pending (broker down at commit, receiver failing): hand them out again.
    "dispatch-outbox": {"task": "tickets.tasks.dispatch_outbox", "schedule": 30.0},
    # Deadlines: unanswered tickets, returns not shipped, evidence not sent, refunds not paid.
    "run-timers": {"task": "tickets.tasks.run_timers", "schedule": 60.0},
    # Tickets still unassigned (nobody had room, a closed ticket freed a seat): route them.
    "assign-waiting": {"task": "tickets.tasks.assign_waiting", "schedule": 60.0},
    # Expired, refused and abandoned uploads, and their partial files (media/, docs/uploads.md).
    "sweep-uploads": {"task": "media.tasks.sweep_uploads", "schedule": 600.0},
    # Calls whose ring or socket-loss timer was not queued (broker down): end them (messaging/calls.py).
    "expire-calls": {"task": "messaging.tasks.expire_calls", "schedule": 30.0},
}
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

# --- Cache ----------------------------------------------------------------
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Auth -----------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    # Longer than Django's 8: staff accounts open every buyer's personal data (docs/security.md).
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# --- I18n -----------------------------------------------------------------
LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", _("Simplified Chinese")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "refundchat" / "locale"]
TIME_ZONE = "Asia/Shanghai"
USE_I18N = True
USE_TZ = True

# --- Static and media -----------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(os.environ.get("REFUNDCHAT_MEDIA_ROOT", VAR_DIR / "media"))
# refundchat/settings_production.py swaps in WhiteNoise's hashed, compressed storage and, when configured, S3.
STORAGES: dict[str, dict[str, Any]] = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG

# --- Email ----------------------------------------------------------------
EMAIL_BACKEND = os.environ.get("DJANGO_EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = os.environ.get("DJANGO_EMAIL_HOST", "localhost")
EMAIL_PORT = int(os.environ.get("DJANGO_EMAIL_PORT", "25"))
DEFAULT_FROM_EMAIL = os.environ.get("DJANGO_DEFAULT_FROM_EMAIL", "RefundChat <no-reply@refundchat.local>")

# --- REST API (issue #8, refundchat/api/, docs/api.md) ---------------------
# Integration tokens first (a header), then the browser's session (which checks CSRF on writes).
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "refundchat.api.authentication.IntegrationTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    # Authenticated, and a token only within its scopes; each view adds the web's own rules.
    "DEFAULT_PERMISSION_CLASSES": [
        "rest_framework.permissions.IsAuthenticated",
        "refundchat.api.permissions.TokenScope",
    ],
    "DEFAULT_PAGINATION_CLASS": "refundchat.api.pagination.ApiCursorPagination",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_THROTTLE_CLASSES": [
        "refundchat.api.throttles.TokenRateThrottle",
        "refundchat.api.throttles.UserRateThrottle",
        "refundchat.api.throttles.AnonRateThrottle",
    ],
    "EXCEPTION_HANDLER": "refundchat.api.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "refundchat.api.schema.ApiAutoSchema",
}
# Requests per token, per user (whichever way they sign in) and per anonymous address; kept in the cache above.
REFUNDCHAT_API_THROTTLE_RATES = {
    "token": os.environ.get("REFUNDCHAT_API_TOKEN_RATE", "1200/min"),
    "user": os.environ.get("REFUNDCHAT_API_USER_RATE", "300/min"),
    "anon": os.environ.get("REFUNDCHAT_API_ANON_RATE", "60/min"),
}
SPECTACULAR_SETTINGS = {
    "TITLE": "RefundChat API",
    "DESCRIPTION": "Orders in, refund states out: tickets, their actions, messages, evidence, canned replies and "
    "webhooks. Authentication, errors, paging and webhook signatures: docs/api.md.",
    "VERSION": "1.0.0",
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI from the drf-spectacular-sidecar package: the docs page needs no CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "TicketStatusEnum": "tickets.models.TicketStatus",
        "EventKindEnum": "tickets.models.TicketEventKind",
        "AttachmentStatusEnum": "media.models.AttachmentStatus",
        "AttachmentKindEnum": "media.models.AttachmentKind",
        "RefundKindEnum": "tickets.models.RefundKind",
        "MessageKindEnum": "messaging.models.MessageKind",
    },
}

# --- RefundChat policy ----------------------------------------------------
# Promised time for the first human answer on a new ticket.
REFUNDCHAT_FIRST_RESPONSE_SLA = timedelta(hours=int(os.environ.get("REFUNDCHAT_FIRST_RESPONSE_SLA_HOURS", "2")))
# Rows per console queue page (keyset pages: tickets.selectors.queue_page).
REFUNDCHAT_QUEUE_PAGE_SIZE = int(os.environ.get("REFUNDCHAT_QUEUE_PAGE_SIZE", "50"))
# What each refund state promises the buyer: the next step happens within this many hours.
REFUNDCHAT_PROMISE_HOURS: dict[str, int] = {
    "awaiting_evidence": 7 * 24,  # the buyer sends evidence, or the ticket closes
    "under_review": 24,  # an agent decides
    "approved_refund_only": 24,  # the payout is started
    "return_required": 7 * 24,  # the buyer ships the return, or the ticket closes
    "return_in_transit": 5 * 24,  # the warehouse receives the parcel
    "return_received": 24,  # the payout is started after the warehouse receives the parcel
    "refund_pending": 72,  # the money arrives
    "escalated": 48,  # the platform decides
}
# The shop's order system hears of every ticket change here (empty: no webhooks), signed with the secret.
REFUNDCHAT_WEBHOOK_URL = os.environ.get("REFUNDCHAT_WEBHOOK_URL", "")
REFUNDCHAT_WEBHOOK_SECRET = os.environ.get("REFUNDCHAT_WEBHOOK_SECRET", "dev-webhook-secret-change-me")
# Timers (tickets/timers.py).
REFUNDCHAT_RETURN_REMINDER_AFTER = timedelta(days=5)
REFUNDCHAT_RETURN_CLOSE_AFTER = timedelta(days=7)
REFUNDCHAT_EVIDENCE_CLOSE_AFTER = timedelta(days=7)
REFUNDCHAT_REFUND_AFTER_RECEIPT = timedelta(hours=24)
# Next response: a buyer message that has waited this long with no staff reply after it escalates the ticket.
REFUNDCHAT_NEXT_RESPONSE_SLA = timedelta(hours=int(os.environ.get("REFUNDCHAT_NEXT_RESPONSE_SLA_HOURS", "4")))
# Express refunds (极速退款): refund-only requests up to this amount from buyers with a clean history
# (no rejected or escalated request, fewer than MAX_RECENT refunds in 90 days, account older than 30 days).
REFUNDCHAT_EXPRESS_REFUND_MAX_CENTS = int(os.environ.get("REFUNDCHAT_EXPRESS_REFUND_MAX_CENTS", "5000"))
REFUNDCHAT_EXPRESS_REFUND_MAX_RECENT = 3

# Payouts: the gateway class, its signed callback, and the amount above which finance approves first.
REFUNDCHAT_PAYOUT_PROVIDER = os.environ.get("REFUNDCHAT_PAYOUT_PROVIDER", "tickets.payouts.FakePayoutProvider")
REFUNDCHAT_PAYOUT_CALLBACK_SECRET = os.environ.get("REFUNDCHAT_PAYOUT_CALLBACK_SECRET", "dev-payout-secret-change-me")
REFUNDCHAT_PAYOUT_CALLBACK_URL = os.environ.get(
    "REFUNDCHAT_PAYOUT_CALLBACK_URL",
    f"http://127.0.0.1:{os.environ.get('REFUNDCHAT_PORT', '8000')}/api/v1/payouts/callback/",
)
REFUNDCHAT_PAYOUT_APPROVAL_THRESHOLD_CENTS = int(os.environ.get("REFUNDCHAT_PAYOUT_APPROVAL_THRESHOLD_CENTS", "100000"))
# The fake gateway: how often an attempt fails (0..1) and how long it takes to answer.
REFUNDCHAT_FAKE_PAYOUT_FAILURE_RATE = float(os.environ.get("REFUNDCHAT_FAKE_PAYOUT_FAILURE_RATE", "0.1"))
REFUNDCHAT_FAKE_PAYOUT_DELAY_SECONDS = float(os.environ.get("REFUNDCHAT_FAKE_PAYOUT_DELAY_SECONDS", "3"))
REFUNDCHAT_RETURN_ADDRESS = os.environ.get(
    "REFUNDCHAT_RETURN_ADDRESS",
    "上海市青浦区华新镇华志路 1688 号 RefundChat 退货仓 (收件人: 退货组, 电话 021-5555 0100)",
)

# --- Reports (issue #8, tickets/reports/) -----------------------------------
# The business-hours calendar the reports count response and resolution times in: the same opening hours on
# each weekday listed (0 = Monday), in a time zone without daylight saving (default TIME_ZONE), e.g.
#   {"weekdays": [0, 1, 2, 3, 4], "start": "09:00", "end": "18:00"}
# None: times are counted in wall-clock time. Each report page says which.
REFUNDCHAT_BUSINESS_HOURS: dict[str, Any] | None = None
# --- end of reports -----------------------------------------------------------

# --- Triage assistant (issue #7, messaging/assistant/) ----------------------
# The assistant answers new tickets first and hands them to an agent (routing waits for the hand-off).
REFUNDCHAT_ASSISTANT_ENABLED = env_bool("REFUNDCHAT_ASSISTANT_ENABLED", True)
# The intent classifier: the keyword model trained on messaging/assistant/data/phrases.tsv, or a dotted path
# to another IntentClassifier (e.g. one that wraps a language model; off by default, no network).
REFUNDCHAT_ASSISTANT_CLASSIFIER = os.environ.get(
    "REFUNDCHAT_ASSISTANT_CLASSIFIER", "messaging.assistant.classifier.KeywordClassifier"
)
# The "7 days, no reason needed" return rule, counted from delivery (the assistant's policy check).
REFUNDCHAT_NO_REASON_RETURN_DAYS = int(os.environ.get("REFUNDCHAT_NO_REASON_RETURN_DAYS", "7"))

# Chat send rate per person: a token bucket (in Redis when REDIS_URL is set) that holds
# SEND_BURST messages and refills SEND_RATE per second. No one types faster than that.
REFUNDCHAT_SEND_BURST = int(os.environ.get("REFUNDCHAT_SEND_BURST", "30"))
REFUNDCHAT_SEND_RATE = float(os.environ.get("REFUNDCHAT_SEND_RATE", "3"))
REFUNDCHAT_RATE_LIMIT_PREFIX = "refundchat:ratelimit"
# Presence: the browser pings every 30 s; a socket not heard of for this long is gone.
REFUNDCHAT_SOCKET_STALE_AFTER = timedelta(seconds=150)
# An agent offline this long (a closed laptop, not a reload) hands unanswered tickets back to the queue.
REFUNDCHAT_AGENT_OFFLINE_GRACE_SECONDS = int(os.environ.get("REFUNDCHAT_AGENT_OFFLINE_GRACE_SECONDS", "60"))

# --- Media uploads --------------------------------------------------------
# Evidence arrives over tus 1.0.0 at /api/v1/uploads/ (docs/uploads.md). Partial files live in
# MEDIA_ROOT/partial/, originals in MEDIA_ROOT/evidence/; neither is ever served from a public URL.
_MiB = 1024 * 1024
# The largest file of each kind, checked against Upload-Length as soon as the first bytes tell the kind.
REFUNDCHAT_UPLOAD_KIND_LIMITS = {"image": 25 * _MiB, "video": 500 * _MiB, "audio": 25 * _MiB, "pdf": 20 * _MiB}
REFUNDCHAT_UPLOAD_MAX_SIZE = max(REFUNDCHAT_UPLOAD_KIND_LIMITS.values())  # Tus-Max-Size
REFUNDCHAT_UPLOAD_TICKET_MAX_FILES = 30
REFUNDCHAT_UPLOAD_TICKET_MAX_BYTES = 2048 * _MiB
# An unfinished upload may be resumed this long after its last accepted bytes (Upload-Expires).
REFUNDCHAT_UPLOAD_EXPIRY = timedelta(hours=int(os.environ.get("REFUNDCHAT_UPLOAD_EXPIRY_HOURS", "24")))
# Decompression-bomb guard: more pixels than this (width x height x frames) is refused.
REFUNDCHAT_UPLOAD_MAX_IMAGE_PIXELS = 100_000_000

# --- Voice and video calls (issue #10, messaging/calls.py, docs/deploy.md) ----
# ICE servers handed to each party when a call rings or is answered. STUN finds the public address; TURN
# relays media when no direct path exists, with short-lived credentials made here from the secret shared
# with coturn (`use-auth-secret`). Empty lists: host candidates only (a LAN, the loopback of the tests).
REFUNDCHAT_STUN_URLS = env_list("REFUNDCHAT_STUN_URLS", "")
REFUNDCHAT_TURN_URLS = env_list("REFUNDCHAT_TURN_URLS", "")
REFUNDCHAT_TURN_SECRET = os.environ.get("REFUNDCHAT_TURN_SECRET", "")
# How long a TURN credential is valid: long enough for a long call, short enough to be useless when leaked.
REFUNDCHAT_TURN_TTL_SECONDS = int(os.environ.get("REFUNDCHAT_TURN_TTL_SECONDS", str(6 * 3600)))
# An unanswered call rings this long, then counts as missed.
REFUNDCHAT_CALL_RING_SECONDS = int(os.environ.get("REFUNDCHAT_CALL_RING_SECONDS", "45"))
# A party whose socket dropped has this long to reconnect (media keeps flowing meanwhile) before the call ends.
REFUNDCHAT_CALL_GRACE_SECONDS = int(os.environ.get("REFUNDCHAT_CALL_GRACE_SECONDS", "20"))

# --- Logs and metrics (issue #11, refundchat/logging.py, refundchat/metrics.py, docs/deploy.md) ------
# One JSON object a line (the production default) or plain text (development), each carrying the request id and,
# where known, the ticket and user ids of the HTTP request, WebSocket connection or Celery task it belongs to.
REFUNDCHAT_LOG_FORMAT = os.environ.get("REFUNDCHAT_LOG_FORMAT", "text" if DEBUG else "json")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "refundchat.logging.ContextFilter"}},
    "formatters": {
        "json": {"()": "refundchat.logging.JsonFormatter"},
        "text": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "filters": ["context"], "formatter": REFUNDCHAT_LOG_FORMAT}
    },
    "root": {"handlers": ["console"], "level": os.environ.get("DJANGO_LOG_LEVEL", "INFO")},
}
# Celery workers log through the configuration above instead of replacing it with their own.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# /metrics answers a request from one of these addresses (after --proxy-headers) or one that carries the token
# ("Authorization: Bearer <token>"); anything else gets 404. Metrics of every process of this host are merged
# from PROMETHEUS_MULTIPROC_DIR (refundchat/metrics.py).
REFUNDCHAT_METRICS_ALLOWED_IPS = env_list("REFUNDCHAT_METRICS_ALLOWED_IPS", "127.0.0.1,::1")
REFUNDCHAT_METRICS_TOKEN = os.environ.get("REFUNDCHAT_METRICS_TOKEN", "")

# --- Sensitive data and privacy (issue #9: refundchat/crypto.py, tickets/privacy.py, docs/security.md) ----
# Fernet keys for encrypted fields (payout accounts), comma-separated: the first encrypts, all decrypt.
# Rotate by putting a new key first, running `manage.py rotate_field_keys`, then removing the old one.
# Generate one with: python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"
REFUNDCHAT_FIELD_KEYS = env_list("REFUNDCHAT_FIELD_KEYS", "")
if not REFUNDCHAT_FIELD_KEYS:
    if not DEBUG:
        raise RuntimeError("REFUNDCHAT_FIELD_KEYS must be set when DJANGO_DEBUG is off")
    from refundchat.crypto import development_key

    # Derived from the development SECRET_KEY, so no key is written in the repository.
    REFUNDCHAT_FIELD_KEYS = [development_key(SECRET_KEY)]
# Media (evidence files) of tickets closed longer than this is deleted by the beat task below; 0 keeps it.
REFUNDCHAT_MEDIA_RETENTION_DAYS = int(os.environ.get("REFUNDCHAT_MEDIA_RETENTION_DAYS", "365"))
# How long the link to a buyer's data export works.
REFUNDCHAT_EXPORT_LINK_TTL = timedelta(hours=int(os.environ.get("REFUNDCHAT_EXPORT_LINK_TTL_HOURS", "24")))
CELERY_BEAT_SCHEDULE["purge-expired-media"] = {"task": "tickets.tasks.purge_expired_media", "schedule": 3600.0}

# --- The web's usual doors (issue #9, docs/security.md) ---------------------------------------------------
# Failed logins (refundchat/login_throttle.py): at most this many per client address and per account name
# within each window (attempts, seconds), counted in the cache.
REFUNDCHAT_LOGIN_LIMITS = {"ip": (5, 5 * 60), "account": (10, 15 * 60)}
# New tickets per buyer per day and new uploads per user per hour (refundchat/rate_limits.py).
REFUNDCHAT_TICKETS_PER_DAY = int(os.environ.get("REFUNDCHAT_TICKETS_PER_DAY", "10"))
REFUNDCHAT_UPLOADS_PER_HOUR = int(os.environ.get("REFUNDCHAT_UPLOADS_PER_HOUR", "60"))
# Staff must pass the TOTP step when they have a device; with this on, staff without one are sent to the admin
# to add one before the console opens (refundchat/two_factor.py).
REFUNDCHAT_REQUIRE_STAFF_2FA = env_bool("REFUNDCHAT_REQUIRE_STAFF_2FA", False)
OTP_TOTP_ISSUER = "RefundChat"
# No inline script anywhere: scripts are static files, data for them is json_script (not executed). Inline
# style attributes stay allowed (label colours are a CSS variable per chip; the admin uses a few); images may be
# product pictures of the shop on other hosts (https). Camera/microphone are the Permissions-Policy's.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:", "blob:", "https:"],
        "media-src": ["'self'", "blob:"],
        # 'self' covers the socket (ws/wss to this host) in CSP level 3 browsers.
        "connect-src": ["'self'"],
        "font-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}
X_FRAME_OPTIONS = "DENY"
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CONTENT_TYPE_NOSNIFF = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
# Secure cookies and HSTS belong to HTTPS, i.e. to the production profile (refundchat/settings_production.py), not
# to DEBUG being off: the benchmarks and browser tests run with DEBUG off over plain HTTP on loopback.
