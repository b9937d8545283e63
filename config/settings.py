"""Liaison settings: one module, everything that differs between machines comes from the environment.

Development (the default) runs on an SQLite file in ``var/`` and the in-memory channel layer.
Production (``DJANGO_DEBUG`` unset or false and ``LIAISON_ENV=production``) refuses to start
without a real secret key and a keyring.
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("LIAISON_VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    if value.lower() in {"1", "true", "yes", "on"}:
        return True
    if value.lower() in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (true/false), got {value!r}.")


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {value!r}.") from None


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


# --- mode -----------------------------------------------------------------------------------
LIAISON_ENV = os.environ.get("LIAISON_ENV", "development").lower()
if LIAISON_ENV not in {"development", "production", "test"}:
    raise ImproperlyConfigured("LIAISON_ENV must be one of development, production, test.")
PRODUCTION = LIAISON_ENV == "production"
DEBUG = env_bool("DJANGO_DEBUG", default=not PRODUCTION)
if PRODUCTION and DEBUG:
    raise ImproperlyConfigured("DJANGO_DEBUG must be off when LIAISON_ENV=production.")

DEV_SECRET_KEY = "dev-insecure-liaison-secret-key-do-not-use-in-production"  # noqa: S105
SECRET_KEY = os.environ.get("SECRET_KEY", DEV_SECRET_KEY)
if PRODUCTION and (SECRET_KEY == DEV_SECRET_KEY or len(SECRET_KEY) < 50):
    raise ImproperlyConfigured(
        "Refusing to start in production: set SECRET_KEY to a random value of at least 50 "
        "characters (for example: python -c 'import secrets; print(secrets.token_urlsafe(64))')."
    )

ALLOWED_HOSTS = env_list(
    "ALLOWED_HOSTS", [] if PRODUCTION else ["127.0.0.1", "localhost", "testserver"]
)
if PRODUCTION and not ALLOWED_HOSTS:
    raise ImproperlyConfigured("Refusing to start in production: set ALLOWED_HOSTS.")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
if PRODUCTION and (
    not CSRF_TRUSTED_ORIGINS or any(not o.startswith("https://") for o in CSRF_TRUSTED_ORIGINS)
):
    raise ImproperlyConfigured(
        "Refusing to start in production: set CSRF_TRUSTED_ORIGINS to the public https:// "
        "origin(s), for example https://liaison.example.org."
    )

# --- keyring (envelope encryption) -----------------------------------------------------------
LIAISON_KEYRING_FILE = os.environ.get("LIAISON_KEYRING_FILE", "")
LIAISON_KEYRING_JSON = os.environ.get("LIAISON_KEYRING", "")
if not PRODUCTION and not LIAISON_KEYRING_FILE and not LIAISON_KEYRING_JSON:
    # Development and tests: a keyring generated on first use in the git-ignored var/ folder.
    LIAISON_KEYRING_FILE = str(VAR_DIR / "keyring.json")
    LIAISON_KEYRING_AUTOCREATE = True
else:
    LIAISON_KEYRING_AUTOCREATE = False
if PRODUCTION and not (LIAISON_KEYRING_FILE or LIAISON_KEYRING_JSON):
    raise ImproperlyConfigured(
        "Refusing to start in production: no keyring. Set LIAISON_KEYRING_FILE to a JSON file "
        '{"active": "<id>", "keys": {"<id>": "<base64 32 bytes>"}} kept outside the database '
        "(python manage.py keys generate prints one), or LIAISON_KEYRING to that JSON."
    )
if PRODUCTION and LIAISON_KEYRING_FILE and not Path(LIAISON_KEYRING_FILE).is_file():
    raise ImproperlyConfigured(
        f"Refusing to start in production: LIAISON_KEYRING_FILE={LIAISON_KEYRING_FILE} does not exist."
    )

# --- applications ----------------------------------------------------------------------------
INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "channels",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "axes",
    "csp",
    # Background jobs (docs/architecture.md "Background jobs"): django-tasks' API with the
    # database backend, so SQLite and PostgreSQL alike hold the queue.
    "django_tasks",
    "django_tasks_db",
    "liaison",
]

MIDDLEWARE = [
    # Outermost: request id, one structured log line and the HTTP metrics per request.
    "liaison.logging.RequestLogMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # The signed-in user's saved language beats Accept-Language (LocaleMiddleware's choice).
    "liaison.middleware.UserLanguageMiddleware",
    "liaison.middleware.UserTimezoneMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "liaison.middleware.SecurityHeadersMiddleware",
    "axes.middleware.AxesMiddleware",
    # Account security (liaison/middleware.py): session policy, then mandatory two-factor.
    "liaison.middleware.SessionPolicyMiddleware",
    "liaison.middleware.TwoFactorRequiredMiddleware",
]

ROOT_URLCONF = "config.urls"
ASGI_APPLICATION = "config.asgi.application"
WSGI_APPLICATION = None

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "liaison.context_processors.liaison",
            ],
        },
    },
]

# --- database ---------------------------------------------------------------------------------
DATABASE_URL = os.environ.get("DATABASE_URL", "")
if DATABASE_URL:
    # Persistent connections: every WebSocket frame is a short database call, and opening a new
    # PostgreSQL connection for each one cost more than the work itself (bench_ws).
    DATABASES = {
        "default": dj_database_url.parse(
            DATABASE_URL,
            conn_max_age=env_int("LIAISON_DB_CONN_MAX_AGE", 60),
            conn_health_checks=True,
        )
    }
else:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(VAR_DIR / "liaison.sqlite3"),
            # A file, not memory, so a live server process in tests sees the same database.
            "TEST": {"NAME": str(VAR_DIR / "test-liaison.sqlite3")},
            # IMMEDIATE: a writer takes the lock at BEGIN, so read-then-write sequences
            # (sequence numbers, the audit chain head) cannot interleave.
            "OPTIONS": {"transaction_mode": "IMMEDIATE", "timeout": 20},
        }
    }
DATABASES["default"].setdefault("ATOMIC_REQUESTS", False)
# Two roles on PostgreSQL (docs/security.md): DATABASE_URL is the application's role, which may
# only INSERT and SELECT on the audit log; DATABASE_MIGRATE_URL is the owner of the tables, used
# by ``manage.py migrate`` and ``manage.py db_roles`` (the "owner" alias) and never by a server.
DATABASE_MIGRATE_URL = os.environ.get("DATABASE_MIGRATE_URL", "")
if DATABASE_MIGRATE_URL:
    DATABASES["owner"] = dj_database_url.parse(DATABASE_MIGRATE_URL, conn_max_age=0)
    DATABASES["owner"]["TEST"] = {"MIRROR": "default"}
# The application's role, granted its privileges by every ``manage.py migrate`` run as the owner
# (created first if LIAISON_DB_APP_PASSWORD_FILE names its password).
LIAISON_DB_APP_ROLE = os.environ.get("LIAISON_DB_APP_ROLE", "")
LIAISON_DB_APP_PASSWORD_FILE = os.environ.get("LIAISON_DB_APP_PASSWORD_FILE", "")
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- channel layer ----------------------------------------------------------------------------
REDIS_URL = os.environ.get("REDIS_URL", "")
CHANNEL_LAYER_PREFIX = os.environ.get("LIAISON_CHANNEL_PREFIX", "liaison")
if REDIS_URL:
    # Pub/sub layer: measured to lose no deliveries under load where the core layer dropped a
    # third. Payloads are encrypted in transit through Redis with a key derived from SECRET_KEY;
    # Liaison's subclass opens each event once per worker instead of once per socket.
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "liaison.realtime.layer.RedisPubSubChannelLayer",
            "CONFIG": {
                "hosts": [REDIS_URL],
                "prefix": CHANNEL_LAYER_PREFIX,
                "symmetric_encryption_keys": [SECRET_KEY],
            },
        }
    }
else:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels.layers.InMemoryChannelLayer",
            "CONFIG": {"capacity": 1000, "expiry": 60},
        }
    }

# --- caches -----------------------------------------------------------------------------------
# "ratelimit" holds the rate-limit counters (liaison/ratelimits.py). On Redis every worker counts
# together; without REDIS_URL (one development process) process memory is enough. The counters
# use their own Redis database when LIAISON_RATELIMIT_REDIS_URL names one, and their own key
# prefix either way.
LIAISON_RATELIMIT_REDIS_URL = os.environ.get("LIAISON_RATELIMIT_REDIS_URL", "") or REDIS_URL
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    "ratelimit": (
        {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": LIAISON_RATELIMIT_REDIS_URL,
            "KEY_PREFIX": f"{CHANNEL_LAYER_PREFIX}:limits",
            "TIMEOUT": None,
        }
        if LIAISON_RATELIMIT_REDIS_URL
        else {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": "liaison-ratelimit",
            "TIMEOUT": None,
        }
    ),
}

# --- authentication ---------------------------------------------------------------------------
AUTH_USER_MODEL = "liaison.User"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {
        "NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator",
        "OPTIONS": {"user_attributes": ("email", "display_name")},
    },
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# Brute-force protection: 5 failures per account or per address within 15 minutes.
AXES_FAILURE_LIMIT = env_int("LIAISON_LOCKOUT_FAILURES", 5)
AXES_COOLOFF_TIME = 0.25  # hours
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_USERNAME_FORM_FIELD = "username"
# Failures are cleared when both factors pass (liaison/views/accounts.py), never by a password
# alone: otherwise signing in with the password again would reset the count of wrong codes.
AXES_RESET_ON_SUCCESS = False
AXES_LOCKOUT_CALLABLE = "liaison.views.accounts.lockout_response"
AXES_VERBOSE = False
AXES_ENABLE_ACCESS_FAILURE_LOG = False
AXES_IPWARE_PROXY_COUNT = env_int("LIAISON_PROXY_COUNT", 0)
# A lockout lasts 15 minutes from the failure that caused it; attempts while locked are refused
# without extending it (so the message "locked for 15 minutes" holds).
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
# Never keep second-factor codes in axes' attempt records.
AXES_SENSITIVE_PARAMETERS = [
    "username",
    "ip_address",
    "code",
    "otp",
    "current_password",
    "new_password",
    "new_password_again",
]

# Two-factor (django-otp TOTP): mandatory for every account (liaison/services/twofactor.py).
OTP_TOTP_ISSUER = "Liaison"
# Phones keep network time: no drift learning, so a code is valid in a fixed +/-30 s window.
OTP_TOTP_SYNC = False
# Seconds between an accepted password and the second step before the password is asked again.
LIAISON_LOGIN_STEP_SECONDS = env_int("LIAISON_LOGIN_STEP_SECONDS", 300)
CSRF_FAILURE_VIEW = "liaison.views.security.csrf_failure"

# Sessions: idle timeout and absolute lifetime, enforced for HTTP and open WebSockets.
LIAISON_SESSION_IDLE_SECONDS = env_int("LIAISON_SESSION_IDLE_SECONDS", 30 * 60)
LIAISON_SESSION_ABSOLUTE_SECONDS = env_int("LIAISON_SESSION_ABSOLUTE_SECONDS", 12 * 3600)
SESSION_COOKIE_AGE = LIAISON_SESSION_ABSOLUTE_SECONDS
SESSION_ENGINE = "django.contrib.sessions.backends.db"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"

# --- security headers -------------------------------------------------------------------------
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:", "blob:"],
        "connect-src": ["'self'"],
        "font-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
    }
}
LIAISON_PERMISSIONS_POLICY = "camera=(), microphone=(), geolocation=(), payment=(), usb=()"
if PRODUCTION:
    SECURE_SSL_REDIRECT = env_bool("LIAISON_SSL_REDIRECT", True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = env_int("LIAISON_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    CSRF_COOKIE_HTTPONLY = True
    SESSION_COOKIE_NAME = "__Host-sessionid"
    CSRF_COOKIE_NAME = "__Host-csrftoken"
    # Health probes come over plain HTTP from inside the network, not through the proxy.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]

# --- i18n -------------------------------------------------------------------------------------
LANGUAGE_CODE = "en"
# Each language named in itself, as the switch shows it.
LANGUAGES = [("en", "English"), ("zh-hans", "简体中文")]
LOCALE_PATHS = [BASE_DIR / "liaison" / "locale"]
# Date and time formats per language (liaison/formats/): 24-hour clock, no mixed-language dates.
FORMAT_MODULE_PATH = ["liaison.formats"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- static and uploaded files ----------------------------------------------------------------
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(os.environ.get("LIAISON_STATIC_ROOT", VAR_DIR / "staticfiles"))
if not PRODUCTION:
    STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STORAGES = {
    "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(VAR_DIR / "media")},
    },
    "staticfiles": {
        "BACKEND": (
            "config.static_storage.StaticStorage"
            if PRODUCTION
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
    # Encrypted attachment blobs. Any Django storage backend (S3 via django-storages) fits here.
    "attachments": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {
            "location": os.environ.get("LIAISON_ATTACHMENT_DIR", str(VAR_DIR / "attachments"))
        },
    },
    # Auditors' signed exports, written by the export jobs: ciphertext only, deleted when they
    # expire (LIAISON_EXPORT_KEEP_DAYS). Web servers and job workers must share it.
    "exports": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": os.environ.get("LIAISON_EXPORT_DIR", str(VAR_DIR / "exports"))},
    },
    # Signed audit checkpoints live outside the database.
    "audit_checkpoints": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {
            "location": os.environ.get("LIAISON_CHECKPOINT_DIR", str(VAR_DIR / "checkpoints"))
        },
    },
}
WHITENOISE_USE_FINDERS = not PRODUCTION
FILE_UPLOAD_MAX_MEMORY_SIZE = 256 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
# No form file is ever written to a temporary file in plaintext: a file part on an ordinary route
# is kept in memory up to FILE_UPLOAD_MAX_MEMORY_SIZE and dropped beyond; attachments install
# their own, encrypting, handler.
FILE_UPLOAD_HANDLERS = ["django.core.files.uploadhandler.MemoryFileUploadHandler"]

# --- audit: signed checkpoints and exports ---------------------------------------------------
# The Ed25519 key signing checkpoints and exports: a file holding its base64 (or PEM), or an
# "audit_signing_key" field in the keyring; development generates one under var/ on first use.
LIAISON_AUDIT_SIGNING_KEY_FILE = os.environ.get("LIAISON_AUDIT_SIGNING_KEY_FILE", "")
# Every Nth audit event signs a checkpoint once it commits (0: only the scheduled ones, from
# ``manage.py audit checkpoint``), so a cut tail is caught even between scheduled checkpoints.
LIAISON_AUDIT_CHECKPOINT_EVERY = env_int("LIAISON_AUDIT_CHECKPOINT_EVERY", 1000)

# --- background jobs (liaison/services/jobs.py, ``manage.py jobs`` and ``manage.py tick``) ----------
# The queue is a table in the application's database (django-tasks-db): the embedded SQLite
# default and PostgreSQL alike, with no other service to run.
TASKS = {
    "default": {
        "BACKEND": "django_tasks_db.DatabaseBackend",
        "QUEUES": ["default", "exports"],
    }
}
# A worker refreshes its heartbeat this often; a job whose worker has been silent for
# LIAISON_JOBS_STALE_SECONDS (killed, machine lost) is queued again, at most
# LIAISON_JOBS_MAX_ATTEMPTS times in all.
LIAISON_JOBS_HEARTBEAT_SECONDS = env_int("LIAISON_JOBS_HEARTBEAT_SECONDS", 10)
LIAISON_JOBS_STALE_SECONDS = env_int("LIAISON_JOBS_STALE_SECONDS", 60)
LIAISON_JOBS_MAX_ATTEMPTS = env_int("LIAISON_JOBS_MAX_ATTEMPTS", 3)
# How often each periodic job runs (seconds).
LIAISON_JOBS_EVERY = {
    "lifecycle": env_int("LIAISON_JOBS_LIFECYCLE_SECONDS", 60),
    "audit_checkpoint": env_int("LIAISON_JOBS_CHECKPOINT_SECONDS", 300),
    "purge_uploads": env_int("LIAISON_JOBS_PURGE_UPLOADS_SECONDS", 3600),
    "prune_bookkeeping": env_int("LIAISON_JOBS_PRUNE_SECONDS", 86400),
}
# An exercise is archived (members lose sight of it) this many days after it closed, or when its
# retention ends if that comes first.
LIAISON_ARCHIVE_AFTER_DAYS = env_int("LIAISON_ARCHIVE_AFTER_DAYS", 30)
# Ended sessions' rows and finished jobs' rows are kept this many days, then pruned.
LIAISON_SESSION_KEEP_DAYS = env_int("LIAISON_SESSION_KEEP_DAYS", 90)
LIAISON_JOB_RESULT_KEEP_DAYS = env_int("LIAISON_JOB_RESULT_KEEP_DAYS", 14)
# Auditors' exports: at most this many being prepared per auditor at once, each file kept this
# many days for download.
LIAISON_EXPORT_MAX_PENDING = env_int("LIAISON_EXPORT_MAX_PENDING", 2)
LIAISON_EXPORT_KEEP_DAYS = env_int("LIAISON_EXPORT_KEEP_DAYS", 7)

# --- Liaison limits ---------------------------------------------------------------------------
LIAISON_MESSAGE_MAX_CHARS = 8000
LIAISON_WS_MAX_FRAME_BYTES = env_int("LIAISON_WS_MAX_FRAME_BYTES", 64 * 1024)
LIAISON_WS_RATE_PER_10S = env_int("LIAISON_WS_RATE_PER_10S", 50)
# Open room sockets one person may hold at once, on every worker together (4429 beyond).
LIAISON_WS_MAX_SOCKETS_PER_USER = env_int("LIAISON_WS_MAX_SOCKETS_PER_USER", 20)
LIAISON_SYNC_PAGE_SIZE = 100
# Each server process refreshes its sockets' presence rows this often (seconds), one statement.
LIAISON_WS_PRESENCE_REFRESH_SECONDS = env_int("LIAISON_WS_PRESENCE_REFRESH_SECONDS", 20)
# How often the server pings an idle socket (daphne's own default is 20 s; see
# liaison/realtime/server.py, patch 10). An explicit --ping-interval wins.
LIAISON_WS_PING_SECONDS = env_int("LIAISON_WS_PING_SECONDS", 45)
# People coming online or going offline are told to an exercise's sockets at most once in this
# window (milliseconds) per server process: the first change at once, later ones together
# (0: every change at once).
LIAISON_WS_PRESENCE_WINDOW_MS = env_int("LIAISON_WS_PRESENCE_WINDOW_MS", 1000)
# Database threads of the real-time seam per process (sends and reads of different rooms run
# side by side); sends beyond LIAISON_WS_MAX_PENDING waiting for one are answered with
# ``retry_after`` instead of queueing into seconds.
LIAISON_REALTIME_DB_THREADS = env_int("LIAISON_REALTIME_DB_THREADS", 6)
# How long (milliseconds) a thread holding the GIL keeps it while another waits for it. The event
# loop serves every socket and waits on the database threads' Python (ORM, sealing) for up to
# this long at each hand-off: Python's 5 ms default doubled the p99 at 200 msg/s on one worker.
LIAISON_GIL_SWITCH_MS = env_int("LIAISON_GIL_SWITCH_MS", 1)
if LIAISON_GIL_SWITCH_MS < 1:
    raise ImproperlyConfigured("LIAISON_GIL_SWITCH_MS must be at least 1 (milliseconds).")
LIAISON_WS_MAX_PENDING = env_int("LIAISON_WS_MAX_PENDING", 48)
# A send that waited longer than this behind its socket's earlier frames is refused the same
# way: an officer sees "resend" within a second instead of an ack many seconds late.
LIAISON_WS_MAX_SEND_WAIT_SECONDS = float(os.environ.get("LIAISON_WS_MAX_SEND_WAIT_SECONDS", "1.0"))
LIAISON_ATTACHMENT_MAX_BYTES = env_int("LIAISON_ATTACHMENT_MAX_BYTES", 100 * 1024 * 1024)
LIAISON_ROOM_QUOTA_BYTES = env_int("LIAISON_ROOM_QUOTA_BYTES", 5 * 1024 * 1024 * 1024)
# Images declaring more pixels are refused (decompression bombs); images up to this many bytes
# are decoded once for a thumbnail, larger ones are accepted without one.
LIAISON_IMAGE_MAX_PIXELS = env_int("LIAISON_IMAGE_MAX_PIXELS", 50_000_000)
LIAISON_THUMBNAIL_SOURCE_MAX_BYTES = env_int("LIAISON_THUMBNAIL_SOURCE_MAX_BYTES", 32 * 1024 * 1024)
# A thumbnail is made only from an image that decodes to at most this many pixels (JPEG decodes
# at 1/2 to 1/8 scale first); larger ones are accepted without one. One decode at a time per
# process, so a burst of large images costs one decode's memory (about 4 bytes a pixel).
LIAISON_THUMBNAIL_MAX_PIXELS = env_int("LIAISON_THUMBNAIL_MAX_PIXELS", 16_000_000)
# Request bodies over their route's limit are refused with 413 from the headers, before they are
# read (liaison/request_bodies.py): the attachment upload takes LIAISON_ATTACHMENT_MAX_BYTES plus
# 64 KiB of multipart framing, every other route this.
LIAISON_REQUEST_MAX_BYTES = env_int("LIAISON_REQUEST_MAX_BYTES", 1024 * 1024)
LIAISON_INVITATION_TTL_HOURS = env_int("LIAISON_INVITATION_TTL_HOURS", 72)


def env_rate(name: str, default: str) -> tuple[int, int]:
    """A rate "COUNT/SECONDS" (``0/60`` turns the limit off)."""
    value = os.environ.get(name) or default
    count, _, seconds = value.partition("/")
    try:
        parsed = int(count), int(seconds)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must look like COUNT/SECONDS, got {value!r}.") from None
    if parsed[0] < 0 or parsed[1] <= 0:
        raise ImproperlyConfigured(f"{name} needs COUNT >= 0 and SECONDS > 0, got {value!r}.")
    return parsed


# HTTP rate limits (liaison/ratelimits.py, docs/security.md "Rate limits"): events per window,
# per user (per address for the invitation link), counted by every worker together.
LIAISON_RATE_LIMITS = {
    "message.post": env_rate("LIAISON_RATE_MESSAGE_POST", "60/60"),
    "upload": env_rate("LIAISON_RATE_UPLOAD", "30/60"),
    "upload.bytes": env_rate("LIAISON_RATE_UPLOAD_BYTES", f"{2 * 1024**3}/86400"),
    "audit.search": env_rate("LIAISON_RATE_AUDIT_SEARCH", "30/60"),
    "message.search": env_rate("LIAISON_RATE_MESSAGE_SEARCH", "30/60"),
    "audit.export": env_rate("LIAISON_RATE_AUDIT_EXPORT", "10/3600"),
    "invitation.create": env_rate("LIAISON_RATE_INVITATION_CREATE", "100/3600"),
    "invitation.link": env_rate("LIAISON_RATE_INVITATION_LINK", "30/60"),
}
LIAISON_BASE_URL = os.environ.get("LIAISON_BASE_URL", "http://127.0.0.1:8000")

# --- e-mail -----------------------------------------------------------------------------------
EMAIL_BACKEND = os.environ.get(
    "EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend"
    if PRODUCTION
    else "django.core.mail.backends.console.EmailBackend",
)
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "liaison@localhost")

# --- logging: never a stack trace to a user; full ones to the server log -----------------------
# One JSON object per line in production (liaison/logging.py: request id, user id, exercise,
# route, status, duration; never message text, file content, tokens or passwords). Development
# prints the same records as plain text unless LIAISON_LOG_FORMAT=json.
LIAISON_LOG_FORMAT = os.environ.get("LIAISON_LOG_FORMAT", "json" if PRODUCTION else "plain")
if LIAISON_LOG_FORMAT not in {"json", "plain"}:
    raise ImproperlyConfigured("LIAISON_LOG_FORMAT must be json or plain.")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "request_context": {"()": "liaison.logging.RequestContextFilter"},
        "redact_paths": {"()": "liaison.logging.RedactRequestPaths"},
    },
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
        "json": {"()": "liaison.logging.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LIAISON_LOG_FORMAT,
            "filters": ["request_context", "redact_paths"],
        }
    },
    "root": {"handlers": ["console"], "level": os.environ.get("LIAISON_LOG_LEVEL", "INFO")},
    "loggers": {
        # Django's own "console" handler (DEBUG only) printed records before the filters above
        # redacted them ("Forbidden (...): /invite/<token>/"): every record goes through ours.
        "django": {"handlers": [], "level": "INFO", "propagate": True},
        "django.request": {"level": "ERROR"},
        "axes": {"level": "WARNING"},
        "daphne": {"level": "WARNING"},
        # A line per job start and finish is noise every minute; failures still log as errors.
        "django_tasks": {"level": "WARNING"},
        # One line per request; LIAISON_REQUEST_LOG_LEVEL=WARNING keeps only failures.
        "liaison.request": {"level": os.environ.get("LIAISON_REQUEST_LOG_LEVEL", "INFO")},
    },
}

# --- metrics (liaison/metrics.py) --------------------------------------------------------------
# GET /metrics answers only with "Authorization: Bearer <LIAISON_METRICS_TOKEN>"; without a
# token set, the endpoint does not exist. With several worker processes per scrape target, set
# PROMETHEUS_MULTIPROC_DIR (an empty directory, wiped at start) in their environment.
LIAISON_METRICS_TOKEN = os.environ.get("LIAISON_METRICS_TOKEN", "")
if LIAISON_METRICS_TOKEN and len(LIAISON_METRICS_TOKEN) < 32:
    raise ImproperlyConfigured("LIAISON_METRICS_TOKEN must be at least 32 characters.")
if PRODUCTION:
    # Prometheus scrapes the workers over plain HTTP inside the network, like the health probe.
    SECURE_REDIRECT_EXEMPT = [*SECURE_REDIRECT_EXEMPT, r"^metrics$"]

# --- backups (liaison/services/backups.py) -----------------------------------------------------
# The operator's X25519 public key that backups are encrypted to (base64, from
# "manage.py backup --generate-key"); its private half stays offline, with the operator.
LIAISON_BACKUP_RECIPIENT = os.environ.get("LIAISON_BACKUP_RECIPIENT", "")
