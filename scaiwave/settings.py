"""ScaiWave settings: every value comes from the environment (see .env.example).

With nothing set, ScaiWave runs in *embedded* mode: SQLite and media in ./data, Celery
over kombu's filesystem transport, the built-in LiveKit emulator. Production mode
(`SCAIWAVE_MODE=production`) refuses to start without a SECRET_KEY.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

from scaiwave import __version__
from scaiwave.env import (
    ImproperEnvironment,
    database_from_url,
    env_bool,
    env_choice,
    env_float,
    env_float_list,
    env_int,
    env_list,
    env_str,
)

BASE_DIR = Path(__file__).resolve().parent.parent
SCAIWAVE_VERSION = __version__

SCAIWAVE_MODE = env_choice("SCAIWAVE_MODE", "embedded", ("embedded", "production"))
DATA_DIR = Path(env_str("DATA_DIR", str(BASE_DIR / "data"))).resolve()
DEBUG = env_bool("DEBUG", False)


def _secret_key() -> str:
    configured = env_str("SECRET_KEY")
    if configured:
        return configured
    if SCAIWAVE_MODE == "production":
        raise ImproperEnvironment("SECRET_KEY must be set when SCAIWAVE_MODE=production")
    # Embedded mode: a per-installation key kept in the data folder, never in the repo.
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    key_file = DATA_DIR / "secret_key"
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(50))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


SECRET_KEY = _secret_key()
# Encrypts tenant API secrets at rest; defaults to a key derived from SECRET_KEY.
ENCRYPTION_KEY = env_str("ENCRYPTION_KEY", "")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
# Host names by which the deployment's own services reach web over plain HTTP (compose: "web" for LiveKit's
# webhook and egress's ingest). Kept apart from ALLOWED_HOSTS so setting the public name cannot drop them.
INTERNAL_HOSTS = env_list("INTERNAL_HOSTS", [])
ALLOWED_HOSTS = [*ALLOWED_HOSTS, *INTERNAL_HOSTS]
PUBLIC_BASE_URL = env_str("PUBLIC_BASE_URL", "http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "storages",
    "corsheaders",
    "scaiwave",
    "rooms",
    "calls",
    "recordings",
    "transcription",
    "webhooks",
    "webapp",  # the calls app at /app/ (docs/app.md)
]

MIDDLEWARE = [
    "scaiwave.api.middleware.RequestIdMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "scaiwave.urls"
WSGI_APPLICATION = "scaiwave.wsgi.application"
ASGI_APPLICATION = "scaiwave.asgi.application"

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

# --- Database -------------------------------------------------------------------------
DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{DATA_DIR / 'scaiwave.sqlite3'}")
# Connections per process from a psycopg pool (PostgreSQL only); 0 turns pooling off.
DATABASE_POOL_SIZE = env_int("DATABASE_POOL_SIZE", 10, minimum=0, maximum=500)
DATABASES = {"default": database_from_url(DATABASE_URL, pool_size=DATABASE_POOL_SIZE)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    # WAL and a busy timeout let web, worker and beat share one SQLite file.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis, Celery, channel layer, cache ------------------------------------------------
REDIS_URL = env_str("REDIS_URL", "")
BROKER_DIR = DATA_DIR / "broker"
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {"visibility_timeout": 3600}
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            # redis-py's default pool (100) runs dry when one invite fans out to hundreds of members.
            # Reads wait longer than channels_redis' 5 s BZPOPMIN: at redis-py 8's default (also 5 s) an idle
            # /v1/events consumer died with TimeoutError (scaiwave/tests/test_events_idle_connection.py).
            "CONFIG": {"hosts": [{"address": REDIS_URL, "max_connections": 1000, "socket_timeout": 15}]},
        }
    }
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    # No Redis: kombu's filesystem transport still carries tasks between processes.
    for sub in ("in", "processed", "control"):
        (BROKER_DIR / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "in"),
        "data_folder_out": str(BROKER_DIR / "in"),
        "processed_folder": str(BROKER_DIR / "processed"),
        # Without this kombu writes its exchange files to ./control in the working directory.
        "control_folder": str(BROKER_DIR / "control"),
        "store_processed": False,
    }
    # WebSocket events reach the web process through the outbox relay (scaiwave.events.relay).
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Celery's Django fix-up closes the database connections and the whole psycopg pool after every task
# unless this is set (then only every this many tasks); scaiwave/celery.py hands connections back to the
# pool after each task instead, so a task does not open a new PostgreSQL connection.
CELERY_DB_REUSE_MAX = 1000
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 1800, minimum=10)
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 1500, minimum=5)
# One queue per kind of work, so none waits behind another: `calls` (ringing, ring time-outs, call state and
# the outbox re-dispatch that carries invites), `webhooks` (outbound deliveries and their sweep), `default`
# (egress bookkeeping, reconciles and the rest), `transcription` (speech-to-text and analysis). Every worker
# set-up (run_stack, docker-compose, the test stacks) consumes all of WORKER_QUEUES.
WORKER_QUEUES = ["calls", "webhooks", "default", "transcription"]
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {
    "transcription.tasks.*": {"queue": "transcription"},
    "calls.*": {"queue": "calls"},
    "scaiwave.events.redispatch": {"queue": "calls"},
    "webhooks.*": {"queue": "webhooks"},
}
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "celerybeat-schedule")
# Exactly one beat runs: it holds a lock (Redis key renewed every TTL/3, or a file lock without Redis) and a
# second beat waits for it (scaiwave/beat_lock.py). A beat that dies frees the Redis lock within the TTL.
BEAT_LOCK_TTL = env_float("BEAT_LOCK_TTL", 30.0, minimum=3.0)
# How often beat runs the outbox re-dispatcher (seconds).
OUTBOX_REDISPATCH_INTERVAL = env_float("OUTBOX_REDISPATCH_INTERVAL", 10.0, minimum=0.5)
# An undispatched event younger than this is left to its on-commit dispatch.
OUTBOX_REDISPATCH_AGE = env_float("OUTBOX_REDISPATCH_AGE", 5.0, minimum=0.0)
# How often the web process's relay polls the outbox when there is no Redis (seconds).
OUTBOX_RELAY_INTERVAL = env_float("OUTBOX_RELAY_INTERVAL", 0.1, minimum=0.01)
# Consumers called for each dispatched event, in order ("module.function").
CELERY_BEAT_SCHEDULE: dict[str, dict[str, object]] = {
    "events-redispatch": {"task": "scaiwave.events.redispatch", "schedule": OUTBOX_REDISPATCH_INTERVAL},
}
# An event for more users than this is sent once to the tenant's group and filtered by each connection.
EVENTS_TENANT_FANOUT_THRESHOLD = env_int("EVENTS_TENANT_FANOUT_THRESHOLD", 20, minimum=0)
EVENT_SINKS = [
    "scaiwave.events.sinks.websocket_sink",
]

# --- Storage ---------------------------------------------------------------------------
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(DATA_DIR / "media"))).resolve()
MEDIA_URL = "/media/"
S3_BUCKET = env_str("S3_BUCKET", "")
S3_ENDPOINT_URL = env_str("S3_ENDPOINT_URL", "")
S3_ACCESS_KEY_ID = env_str("S3_ACCESS_KEY_ID", "")
S3_SECRET_ACCESS_KEY = env_str("S3_SECRET_ACCESS_KEY", "")
S3_REGION = env_str("S3_REGION", "us-east-1")
S3_FORCE_PATH_STYLE = env_bool("S3_FORCE_PATH_STYLE", True)
# The endpoint browsers and clients reach for presigned download URLs, when S3_ENDPOINT_URL is an internal name
# (http://minio:9000) they cannot resolve. Empty: presign against S3_ENDPOINT_URL.
S3_PUBLIC_ENDPOINT_URL = env_str("S3_PUBLIC_ENDPOINT_URL", "").rstrip("/")
MEDIA_URL_TTL = env_int("MEDIA_URL_TTL", 3600, minimum=10)
if S3_BUCKET:
    _default_storage: dict[str, object] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": S3_BUCKET,
            "endpoint_url": S3_ENDPOINT_URL or None,
            "access_key": S3_ACCESS_KEY_ID or None,
            "secret_key": S3_SECRET_ACCESS_KEY or None,
            "region_name": S3_REGION,
            "addressing_style": "path" if S3_FORCE_PATH_STYLE else "auto",
            "querystring_expire": MEDIA_URL_TTL,
            "file_overwrite": False,
        },
    }
else:
    _default_storage = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(MEDIA_ROOT)},
    }
STORAGES = {
    "default": _default_storage,
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
STATIC_URL = "/static/"
STATIC_ROOT = DATA_DIR / "static"

# --- LiveKit ---------------------------------------------------------------------------
# Leave LIVEKIT_URL empty to use the built-in emulator (started by `make run`).
LIVEKIT_EMULATOR_PORT = env_int("LIVEKIT_EMULATOR_PORT", 7880, minimum=1, maximum=65535)
LIVEKIT_EMULATOR_ENABLED = env_bool("LIVEKIT_EMULATOR_ENABLED", True)
_livekit_url = env_str("LIVEKIT_URL", "")
LIVEKIT_USES_EMULATOR = not _livekit_url and LIVEKIT_EMULATOR_ENABLED
LIVEKIT_URL = _livekit_url or (f"http://127.0.0.1:{LIVEKIT_EMULATOR_PORT}" if LIVEKIT_USES_EMULATOR else "")


def livekit_install_pair(data_dir: Path) -> tuple[str, str]:
    """The embedded emulator's API key and secret: made on first run and kept in the data folder, like the
    secret key. LiveKit's public dev pair (devkey/secret) would let anyone who can reach the emulator mint
    tokens and forge its webhooks. `run_stack` hands the same pair to the emulator it starts."""
    data_dir.mkdir(parents=True, exist_ok=True)
    pair_file = data_dir / "livekit_api_pair"
    if not pair_file.exists():
        # Written aside and linked into place: of processes starting at once, the first pair wins whole.
        draft = data_dir / f".livekit_api_pair.{secrets.token_hex(4)}"
        draft.touch(mode=0o600)
        draft.write_text(f"API{secrets.token_hex(6)}:{secrets.token_urlsafe(32)}")
        with contextlib.suppress(FileExistsError):
            os.link(draft, pair_file)
        draft.unlink()
    key, _, secret = pair_file.read_text().strip().partition(":")
    if not key or not secret:
        raise ImproperEnvironment(f"{pair_file} must hold key:secret; delete it to make a new pair")
    return key, secret


_livekit_pair = (
    livekit_install_pair(DATA_DIR)
    if LIVEKIT_USES_EMULATOR and not (env_str("LIVEKIT_API_KEY") and env_str("LIVEKIT_API_SECRET"))
    else ("", "")
)
LIVEKIT_API_KEY = env_str("LIVEKIT_API_KEY", _livekit_pair[0])
LIVEKIT_API_SECRET = env_str("LIVEKIT_API_SECRET", _livekit_pair[1])
# The URL clients connect to (ws/wss); defaults to LIVEKIT_URL with a ws scheme.
LIVEKIT_PUBLIC_URL = env_str(
    "LIVEKIT_PUBLIC_URL", LIVEKIT_URL.replace("https://", "wss://").replace("http://", "ws://")
)
LIVEKIT_TIMEOUT = env_float("LIVEKIT_TIMEOUT", 5.0, minimum=0.1)
LIVEKIT_TOKEN_TTL = env_int("LIVEKIT_TOKEN_TTL", 3600, minimum=60)
# How long a kicked participant may not get a refreshed token (seconds).
LIVEKIT_KICK_BAN_SECONDS = env_int("LIVEKIT_KICK_BAN_SECONDS", 600, minimum=0)
LIVEKIT_RECONCILE_INTERVAL = env_float("LIVEKIT_RECONCILE_INTERVAL", 60.0, minimum=1.0)

# --- Auth, API conventions ---------------------------------------------------------------
# External identity provider (OIDC/Firebase): RS256/ES256 user tokens checked against a JWKS.
JWT_JWKS_URL = env_str("JWT_JWKS_URL", "")
JWT_ISSUER = env_str("JWT_ISSUER", "")
JWT_AUDIENCE = env_str("JWT_AUDIENCE", "")
# The tenant (by API key id) that users of the external identity provider belong to.
JWT_JWKS_TENANT = env_str("JWT_JWKS_TENANT", "")
JWT_LEEWAY_SECONDS = env_int("JWT_LEEWAY_SECONDS", 30, minimum=0)
# A user token whose `exp` is further away than this is refused (a token for the year 9999 is a leaked
# credential forever); the host app mints short-lived tokens and refreshes them (seconds).
JWT_MAX_LIFETIME_SECONDS = env_int("JWT_MAX_LIFETIME_SECONDS", 86400, minimum=60)
# Failed authentications (bad API key or token) per client address; past it, every attempt is 429.
THROTTLE_AUTH_FAILURE_RATE = env_str("THROTTLE_AUTH_FAILURE_RATE", "60/min")
# Request headers larger than this in total are refused with 431 before anything else runs.
MAX_REQUEST_HEADER_BYTES = env_int("MAX_REQUEST_HEADER_BYTES", 64 * 1024, minimum=8192)
IDEMPOTENCY_TTL_SECONDS = env_int("IDEMPOTENCY_TTL_SECONDS", 86400, minimum=60)
PROBLEM_TYPE_BASE = env_str("PROBLEM_TYPE_BASE", "https://scaiwave.dev/problems").rstrip("/")
THROTTLE_SERVER_RATE = env_str("THROTTLE_SERVER_RATE", "300000/min")
THROTTLE_USER_RATE = env_str("THROTTLE_USER_RATE", "1200/min")
# Requests bodies larger than this are refused with 413 (uploads have their own limit).
MAX_REQUEST_BODY_BYTES = env_int("MAX_REQUEST_BODY_BYTES", 1024 * 1024, minimum=1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = MAX_REQUEST_BODY_BYTES
# POST /v1/token and /v1/token/refresh are answered by a pure-ASGI handler in front of Django (rooms.token_asgi),
# with the same answers as the DRF views; False sends them through Django and DRF like every other request.
TOKEN_FAST_PATH = env_bool("TOKEN_FAST_PATH", True)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "scaiwave.api.auth.ApiKeyAuthentication",
        "scaiwave.api.auth.UserTokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["scaiwave.api.permissions.IsTenantPrincipal"],
    "DEFAULT_THROTTLE_CLASSES": [
        "scaiwave.api.throttling.ServerKeyThrottle",
        "scaiwave.api.throttling.UserThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "server": THROTTLE_SERVER_RATE,
        "user": THROTTLE_USER_RATE,
        "auth_failure": THROTTLE_AUTH_FAILURE_RATE,
    },
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["scaiwave.api.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "scaiwave.api.errors.problem_exception_handler",
    "UNAUTHENTICATED_USER": None,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "ScaiWave API",
    "DESCRIPTION": "Self-hostable control plane for audio and video calls, in front of LiveKit.",
    "VERSION": SCAIWAVE_VERSION,
    "OAS_VERSION": "3.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Choice sets that share a field name ("status", "type") get distinct, stable names.
    "ENUM_NAME_OVERRIDES": {
        "CallStatusEnum": "calls.models.Call.Status",
        "CallTypeEnum": "calls.models.Call.Type",
        "TranscriptionStatusEnum": "transcription.models.Transcription.Status",
        "UploadedCallStatusEnum": "transcription.models.UploadedCall.Status",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "scaiwave.api.schema.add_problem_responses",
        "scaiwave.api.schema_links.add_links",
    ],
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "APPEND_COMPONENTS": {
        "securitySchemes": {
            "ApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            "UserToken": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
        }
    },
}

# --- Security --------------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", SCAIWAVE_MODE == "production")
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("BEHIND_TLS_PROXY", False) else None
_production = SCAIWAVE_MODE == "production"
# Production serves HTTPS only (directly or behind a TLS proxy); load balancers' probes stay on plain HTTP.
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", _production)
# Paths the deployment's own services call over plain HTTP inside its network (docs/deployment.md): the probes,
# LiveKit's webhook and track egress's audio ingest. Everything else a browser or client sees is HTTPS.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^v1/calls/webhook$", r"^v1/ingest/audio$"]
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000 if _production else 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", _production)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", _production)
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
# CORS is off unless origins are listed (browser clients calling the API directly).
CORS_ALLOWED_ORIGINS = env_list("CORS_ALLOWED_ORIGINS", [])
# Embedded mode: pages served from this machine (any port; a playground, a dev server) may call the API.
CORS_ALLOW_LOCAL_PAGES = env_bool("CORS_ALLOW_LOCAL_PAGES", SCAIWAVE_MODE == "embedded")
CORS_ALLOWED_ORIGIN_REGEXES = (
    [r"^https?://(localhost|127\.0\.0\.1|\[::1\])(:[0-9]{1,5})?$"] if CORS_ALLOW_LOCAL_PAGES else []
)
# rtcstack's browser client sends its X-RTCstack-* signature headers beside X-API-Key (which stays the
# authentication; ScaiWave ignores them), so the preflight must let them through.
CORS_ALLOW_HEADERS = [
    "authorization",
    "content-type",
    "idempotency-key",
    "x-api-key",
    "x-request-id",
    "x-rtcstack-timestamp",
    "x-rtcstack-signature",
]
CORS_EXPOSE_HEADERS = ["x-request-id", "retry-after", "idempotent-replayed"]
CORS_URLS_REGEX = r"^/(v1|api)/.*$"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Logging: one JSON object per line ----------------------------------------------------
LOG_LEVEL = env_choice("LOG_LEVEL", "info", ("debug", "info", "warning", "error")).upper()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "scaiwave.api.logging.RequestIdFilter"}},
    "formatters": {"json": {"()": "scaiwave.api.logging.JsonFormatter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "json", "filters": ["request_id"]}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# Fault-injection points for the real-process fault tests (scaiwave/failpoints.py). Empty in every real
# deployment: a named point makes the process stop there until it is killed.
FAILPOINTS = frozenset(env_list("SCAIWAVE_FAILPOINTS"))

# --- Tenant defaults -----------------------------------------------------------------------
DEFAULT_RING_TIMEOUT = env_int("DEFAULT_RING_TIMEOUT", 45, minimum=5)
DEFAULT_MAX_PARTICIPANTS = env_int("DEFAULT_MAX_PARTICIPANTS", 100, minimum=1)
DEFAULT_RETENTION_DAYS = env_int("DEFAULT_RETENTION_DAYS", 0, minimum=0)

# --- rooms ---------------------------------------------------------------------------------
# Applied, in order, to every verified LiveKit webhook event ("module.function(event, record)").
# Each handler ignores events that are not its business.
LIVEKIT_EVENT_HANDLERS: list[str] = []
# Called, in order, inside room_delete after the room is closed ("module.function(room)"):
# calls end their live calls, recordings stop, ingress is removed.
ROOM_CLOSE_HANDLERS: list[str] = []
# The rooms app mirrors LiveKit's room/participant/track/ingress events (rooms.livekit_events).
LIVEKIT_EVENT_HANDLERS.append("rooms.livekit_events.room_apply_livekit_event")
# Rooms and participants are compared with LiveKit's ListRooms/ListParticipants this often.
CELERY_BEAT_SCHEDULE["rooms-reconcile-livekit"] = {
    "task": "rooms.reconcile_livekit",
    "schedule": LIVEKIT_RECONCILE_INTERVAL,
}
# Closing a room deletes its ingress endpoints in LiveKit.
ROOM_CLOSE_HANDLERS.append("rooms.services.room_close_ingress")

# --- calls ---------------------------------------------------------------------------------
# How often beat turns ringing calls past their ring time-out into missed calls (seconds).
CALL_RING_SWEEP_INTERVAL = env_float("CALL_RING_SWEEP_INTERVAL", 2.0, minimum=0.5)
CELERY_BEAT_SCHEDULE["calls-expire-ringing"] = {"task": "calls.expire_ringing", "schedule": CALL_RING_SWEEP_INTERVAL}
LIVEKIT_EVENT_HANDLERS.append("calls.services.call_apply_livekit_event")
ROOM_CLOSE_HANDLERS.append("calls.services.calls_end_for_room")
# Live calls (document 003): a scheduled call not started this long after it was due is errored (seconds).
LIVE_CALL_START_GRACE = env_int("LIVE_CALL_START_GRACE", 900, minimum=60)
# How often beat starts due live calls whose host is connected, and errors the overdue ones (seconds).
LIVE_CALL_SWEEP_INTERVAL = env_float("LIVE_CALL_SWEEP_INTERVAL", 15.0, minimum=1.0)
CELERY_BEAT_SCHEDULE["calls-live-advance"] = {"task": "calls.live_advance", "schedule": LIVE_CALL_SWEEP_INTERVAL}
# Task modules autodiscovery does not find (it loads only `<app>.tasks`).
CELERY_IMPORTS: list[str] = ["calls.live_tasks"]
# A live call's room closing (LiveKit's empty time-out, room_finished) ends or errors the live call.
ROOM_CLOSE_HANDLERS.append("calls.live_services.live_calls_close_for_room")

# --- recordings ----------------------------------------------------------------------------
LIVEKIT_EVENT_HANDLERS.append("recordings.services.recording_apply_livekit_event")
ROOM_CLOSE_HANDLERS.append("recordings.services.recordings_stop_for_room")
# Called, in order, once a recording asked with `transcript: true` is ready ("module.function(recording)").
RECORDING_READY_HANDLERS: list[str] = []
# An egress we have not heard about for this long is checked against LiveKit's ListEgress (seconds).
RECORDING_RECONCILE_AGE = env_float("RECORDING_RECONCILE_AGE", 60.0, minimum=0.0)
RECORDING_RECONCILE_INTERVAL = env_float("RECORDING_RECONCILE_INTERVAL", 30.0, minimum=1.0)
RECORDING_FFPROBE_TIMEOUT = env_float("RECORDING_FFPROBE_TIMEOUT", 60.0, minimum=1.0)
# Objects under recordings/ without a row are removed once older than this (seconds).
MEDIA_SWEEP_GRACE = env_float("MEDIA_SWEEP_GRACE", 6 * 3600.0, minimum=0.0)
MEDIA_SWEEP_INTERVAL = env_float("MEDIA_SWEEP_INTERVAL", 3600.0, minimum=10.0)
CELERY_BEAT_SCHEDULE["recordings-reconcile-egress"] = {
    "task": "recordings.reconcile_egress",
    "schedule": RECORDING_RECONCILE_INTERVAL,
}
CELERY_BEAT_SCHEDULE["recordings-sweep-media"] = {"task": "recordings.sweep_media", "schedule": MEDIA_SWEEP_INTERVAL}

# --- webhooks ------------------------------------------------------------------------------
# Outbound webhooks may call private/loopback addresses (development). Off in production.
WEBHOOK_ALLOW_PRIVATE_TARGETS = env_bool("WEBHOOK_ALLOW_PRIVATE_TARGETS", SCAIWAVE_MODE == "embedded")
WEBHOOK_CONNECT_TIMEOUT = env_float("WEBHOOK_CONNECT_TIMEOUT", 5.0, minimum=0.1)
WEBHOOK_TIMEOUT = env_float("WEBHOOK_TIMEOUT", 15.0, minimum=0.1)  # the whole exchange, seconds
WEBHOOK_RESPONSE_BODY_MAX = env_int("WEBHOOK_RESPONSE_BODY_MAX", 2048, minimum=0)  # bytes kept


# Seconds to wait after failed attempt 1, 2, ... (+/- WEBHOOK_RETRY_JITTER); one attempt more than
# entries. The default spans about 2.9 days over 12 attempts (docs/webhooks.md).
def _webhook_retry_schedule() -> list[float]:
    default = ["5", "30", "120", "600", "1800", "3600", "10800", "21600", "43200", "86400", "86400"]
    try:
        return [float(value) for value in env_list("WEBHOOK_RETRY_SCHEDULE", default)]
    except ValueError:
        raise ImproperEnvironment("WEBHOOK_RETRY_SCHEDULE must be comma-separated seconds") from None


WEBHOOK_RETRY_SCHEDULE = _webhook_retry_schedule()
WEBHOOK_RETRY_JITTER = env_float("WEBHOOK_RETRY_JITTER", 0.2, minimum=0.0)  # fraction of each delay
# Retries due within this many seconds are queued with a countdown; later ones are sent by the sweep.
WEBHOOK_RETRY_COUNTDOWN_MAX = env_float("WEBHOOK_RETRY_COUNTDOWN_MAX", 300.0, minimum=0.0)
# An endpoint is disabled after this many failed attempts in a row spanning at least this long.
WEBHOOK_DISABLE_AFTER_FAILURES = env_int("WEBHOOK_DISABLE_AFTER_FAILURES", 20, minimum=1)
WEBHOOK_DISABLE_AFTER_SECONDS = env_int("WEBHOOK_DISABLE_AFTER_SECONDS", 86400, minimum=0)
# After rotate-secret, the old secret keeps signing (second signature) for this long.
WEBHOOK_SECRET_GRACE_SECONDS = env_int("WEBHOOK_SECRET_GRACE_SECONDS", 86400, minimum=0)
# A claimed attempt is considered lost (worker died) once its lease runs out.
WEBHOOK_SEND_LEASE_SECONDS = env_int("WEBHOOK_SEND_LEASE_SECONDS", 60, minimum=1)
# The sweep re-queues a due delivery whose task has not run this long after it was queued.
WEBHOOK_REQUEUE_AFTER = env_float("WEBHOOK_REQUEUE_AFTER", 120.0, minimum=0.0)
WEBHOOK_SWEEP_INTERVAL = env_float("WEBHOOK_SWEEP_INTERVAL", 5.0, minimum=0.5)
# Deliveries per task (an event's endpoints, a sweep's chunk), all sent at once: also the number of
# sending threads per worker process.
WEBHOOK_BATCH_SIZE = env_int("WEBHOOK_BATCH_SIZE", 20, minimum=1)
# A failing endpoint gets one attempt at a time, the n-th of its streak WEBHOOK_RETRY_SCHEDULE[n] after
# the last, at most this many seconds (docs/webhooks.md, "Failing endpoints").
WEBHOOK_ENDPOINT_BACKOFF_MAX = env_float("WEBHOOK_ENDPOINT_BACKOFF_MAX", 300.0, minimum=0.0)
# A sweep queues at most this many deliveries, less one per message already waiting in the webhooks queue.
WEBHOOK_SWEEP_MAX = env_int("WEBHOOK_SWEEP_MAX", 400, minimum=1)
EVENT_SINKS.append("webhooks.services.deliveries_create_for_event")
CELERY_BEAT_SCHEDULE["webhooks-sweep"] = {"task": "webhooks.sweep", "schedule": WEBHOOK_SWEEP_INTERVAL}

# --- transcription -------------------------------------------------------------------------
TRANSCRIPTION_POST_ENABLED = env_bool("TRANSCRIPTION_POST_ENABLED", True)
TRANSCRIPTION_LIVE_ENABLED = env_bool("TRANSCRIPTION_LIVE_ENABLED", True)
# Post-call transcription answers 503 unless a worker on the speech queue heartbeats (transcription/
# worker_heartbeat.py). On in production; embedded mode starts its own speech worker with the stack.
TRANSCRIPTION_WORKER_CHECK = env_bool("TRANSCRIPTION_WORKER_CHECK", SCAIWAVE_MODE == "production")
TRANSCRIPTION_WORKER_HEARTBEAT_INTERVAL = env_float("TRANSCRIPTION_WORKER_HEARTBEAT_INTERVAL", 10.0, minimum=0.2)
# Speech-to-text model: "base" (multilingual, packaged), "tiny.en" (packaged), a CTranslate2 model folder
# path, or a hub name (only with STT_ALLOW_DOWNLOAD=true). See docs/transcription.md.
STT_MODEL = env_str("STT_MODEL", "base")
# Where packaged models are assembled (Whisper base is joined from two package parts once).
STT_MODEL_DIR = Path(env_str("STT_MODEL_DIR", str(DATA_DIR / "stt-models"))).resolve()
STT_ALLOW_DOWNLOAD = env_bool("STT_ALLOW_DOWNLOAD", False)
STT_COMPUTE_TYPE = env_choice(
    "STT_COMPUTE_TYPE", "int8", ("int8", "int8_float32", "int16", "float32", "float16", "int8_float16", "default")
)
STT_DEVICE = env_choice("STT_DEVICE", "cpu", ("cpu", "cuda", "auto"))
# CPU threads per worker process for the recognizer (0: CTranslate2 picks).
STT_THREADS = env_int("STT_THREADS", 0, minimum=0)
# 1 is greedy decoding (fastest); 5 is Whisper's default beam search.
STT_BEAM_SIZE = env_int("STT_BEAM_SIZE", 1, minimum=1, maximum=10)
# Skip silence with faster-whisper's bundled Silero VAD before decoding.
STT_VAD_FILTER = env_bool("STT_VAD_FILTER", True)
# Word-level times (one extra alignment pass per 30 s window, about a tenth of the decoding time).
STT_WORD_TIMESTAMPS = env_bool("STT_WORD_TIMESTAMPS", True)
# Whisper's temperature fallback: a window whose greedy output looks wrong (too repetitive, too unlikely) is
# decoded again at the next temperature. Whisper's own schedule is 0,0.2,0.4,0.6,0.8,1.0; the default keeps
# the rescue but stops sooner, because on near-silent tail windows every step is a wasted decode
# (docs/transcription.md, "Measured").
STT_TEMPERATURES = env_float_list("STT_TEMPERATURES", (0.0, 0.4, 0.8))
# Long audio is transcribed in pieces of about this many seconds, cut at pauses (bounds a worker's memory).
STT_CHUNK_SECONDS = env_float("STT_CHUNK_SECONDS", 600.0, minimum=30.0)
# The longest audio file (an upload, a recording track) transcribed; longer is refused (audio_too_long).
MAX_AUDIO_SECONDS = env_float("MAX_AUDIO_SECONDS", 4 * 3600.0, minimum=1.0)
# How many times a failed post-call job is retried before it is marked failed.
TRANSCRIPTION_MAX_RETRIES = env_int("TRANSCRIPTION_MAX_RETRIES", 2, minimum=0)
# Time limit of one post-call job (seconds); 3 h covers a 10-hour call even at a real-time factor of 0.3.
TRANSCRIPTION_TASK_SOFT_TIME_LIMIT = env_int("TRANSCRIPTION_TASK_SOFT_TIME_LIMIT", 3 * 3600, minimum=60)
# A post-call job queued or processing this long lost its worker: beat queues it again (or fails it once its
# retries are spent). Must exceed the task's hard time limit (soft limit + 120 s).
TRANSCRIPTION_STUCK_AFTER = env_int("TRANSCRIPTION_STUCK_AFTER", TRANSCRIPTION_TASK_SOFT_TIME_LIMIT + 600, minimum=60)
TRANSCRIPTION_STUCK_SWEEP_INTERVAL = env_float("TRANSCRIPTION_STUCK_SWEEP_INTERVAL", 300.0, minimum=5.0)
CELERY_BEAT_SCHEDULE["transcription-recover-stuck"] = {
    "task": "transcription.recover_stuck",
    "schedule": TRANSCRIPTION_STUCK_SWEEP_INTERVAL,
}
# A recording that finishes with `transcript: true` is handed to these, in order.
RECORDING_READY_HANDLERS.append("transcription.services.transcription_queue_for_recording")
# Live transcription (document 001 "Transcription (Live)"): LiveKit track egress -> /v1/ingest/audio.
# The live recognizer's model ("" = STT_MODEL, except tiny.en for English sessions when STT_MODEL is base: see
# transcription.live.recognizer.live_model_name).
TRANSCRIPTION_LIVE_MODEL = env_str("TRANSCRIPTION_LIVE_MODEL", "")
# Base URL LiveKit's egress dials for the ingest WebSocket ("" = PUBLIC_BASE_URL); http(s) becomes ws(s).
TRANSCRIPTION_LIVE_INGEST_URL = env_str("TRANSCRIPTION_LIVE_INGEST_URL", "").rstrip("/")
# Lifetime of a per-track ingest token (seconds): the egress must dial within it.
TRANSCRIPTION_LIVE_TOKEN_TTL = env_int("TRANSCRIPTION_LIVE_TOKEN_TTL", 3600, minimum=30)
# Seconds of speech waiting for the recognizer (all tracks of this process) above which new utterances are
# dropped and the session is marked degraded.
TRANSCRIPTION_LIVE_MAX_BACKLOG_SECONDS = env_float("TRANSCRIPTION_LIVE_MAX_BACKLOG_SECONDS", 8.0, minimum=0.1)
# A pause this long (seconds) ends an utterance; longer monologues are cut at this many seconds.
TRANSCRIPTION_LIVE_MIN_SILENCE = env_float("TRANSCRIPTION_LIVE_MIN_SILENCE", 0.5, minimum=0.1)
TRANSCRIPTION_LIVE_MAX_UTTERANCE = env_float("TRANSCRIPTION_LIVE_MAX_UTTERANCE", 12.0, minimum=1.0)
# How often (seconds of speech) a partial result of the utterance in progress is sent (partialResults).
TRANSCRIPTION_LIVE_PARTIAL_INTERVAL = env_float("TRANSCRIPTION_LIVE_PARTIAL_INTERVAL", 1.0, minimum=0.2)
# Profanity filter: words (comma separated) and/or a file with one word a line; empty both = a small default list.
TRANSCRIPTION_PROFANITY_WORDS = env_list("TRANSCRIPTION_PROFANITY_WORDS", [])
TRANSCRIPTION_PROFANITY_FILE = env_str("TRANSCRIPTION_PROFANITY_FILE", "")
LIVEKIT_EVENT_HANDLERS.append("transcription.live.services.live_apply_livekit_event")
ROOM_CLOSE_HANDLERS.append("transcription.live.services.live_stop_for_room")

# --- analysis ------------------------------------------------------------------------------
MAX_FILE_SIZE = env_int("MAX_FILE_SIZE", 50 * 1024 * 1024, minimum=1024)
# rules: the embedded analyzer (no model, no network); openai: an OpenAI-compatible chat-completions API.
ANALYSIS_BACKEND = env_choice("ANALYSIS_BACKEND", "rules", ("rules", "openai"))
ANALYSIS_OPENAI_BASE_URL = env_str("ANALYSIS_OPENAI_BASE_URL", "")  # e.g. https://api.openai.com/v1
ANALYSIS_OPENAI_MODEL = env_str("ANALYSIS_OPENAI_MODEL", "gpt-4o-mini")
ANALYSIS_OPENAI_API_KEY = env_str("ANALYSIS_OPENAI_API_KEY", "")
ANALYSIS_OPENAI_TIMEOUT = env_float("ANALYSIS_OPENAI_TIMEOUT", 60.0, minimum=1.0)
# A call TRANSCRIBING (or QUEUED) this long lost its worker: the sweep requeues it, or fails it after
# ANALYSIS_MAX_ATTEMPTS runs. Must exceed the longest transcription (TRANSCRIPTION_TASK_SOFT_TIME_LIMIT).
ANALYSIS_STUCK_AFTER = env_int("ANALYSIS_STUCK_AFTER", TRANSCRIPTION_TASK_SOFT_TIME_LIMIT + 600, minimum=60)
ANALYSIS_MAX_ATTEMPTS = env_int("ANALYSIS_MAX_ATTEMPTS", 3, minimum=1)
ANALYSIS_STUCK_SWEEP_INTERVAL = env_float("ANALYSIS_STUCK_SWEEP_INTERVAL", 300.0, minimum=5.0)
ANALYSIS_RETENTION_SWEEP_INTERVAL = env_float("ANALYSIS_RETENTION_SWEEP_INTERVAL", 3600.0, minimum=60.0)
# Which stereo channel carries the phone's own microphone (the uploader); the other is the far end.
ANALYSIS_STEREO_LOCAL_CHANNEL = env_choice("ANALYSIS_STEREO_LOCAL_CHANNEL", "left", ("left", "right"))
CELERY_TASK_ROUTES["analysis.process_call"] = {"queue": "transcription"}
CELERY_IMPORTS.append("transcription.analysis.tasks")
CELERY_BEAT_SCHEDULE["analysis-recover-stuck"] = {
    "task": "analysis.recover_stuck",
    "schedule": ANALYSIS_STUCK_SWEEP_INTERVAL,
}
CELERY_BEAT_SCHEDULE["analysis-enforce-retention"] = {
    "task": "analysis.enforce_retention",
    "schedule": ANALYSIS_RETENTION_SWEEP_INTERVAL,
}
