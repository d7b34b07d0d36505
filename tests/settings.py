"""Test settings: the project's settings, with the services CI must provide made mandatory there."""

import os
import tempfile
from pathlib import Path

# Unit tests run in one process: without Redis the in-memory layer is enough.
os.environ.setdefault("REFUNDCHAT_CHANNEL_LAYER", "redis-pubsub" if os.environ.get("REDIS_URL") else "memory")

if os.environ.get("CI") and not (
    os.environ.get("DATABASE_URL", "").startswith("postgres") and os.environ.get("REDIS_URL")
):
    raise RuntimeError("CI must run the suite on PostgreSQL and Redis: set DATABASE_URL and REDIS_URL")

from refundchat.settings import *  # noqa: F403
from refundchat.settings import DATABASES, VAR_DIR

# MD5 keeps unit tests fast; PBKDF2 is what the browser tests' server verifies.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher", "django.contrib.auth.hashers.PBKDF2PasswordHasher"]
MEDIA_ROOT = Path(tempfile.mkdtemp(prefix="refundchat-test-media-"))
CELERY_TASK_ALWAYS_EAGER = True
CELERY_TASK_EAGER_PROPAGATES = True
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # A file, not memory, so that the browser tests' Daphne process sees the same data.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test.sqlite3")}

# Each run has its own rate-limit buckets in Redis, and tests that are not about
# the limit never meet it.
REFUNDCHAT_RATE_LIMIT_PREFIX = f"refundchat-test-{os.getpid()}:ratelimit"
REFUNDCHAT_SEND_BURST = 10_000

# The fake payout gateway answers at once, without HTTP, and never fails unless a test says so.
REFUNDCHAT_PAYOUT_CALLBACK_URL = ""
REFUNDCHAT_FAKE_PAYOUT_FAILURE_RATE = 0.0
REFUNDCHAT_FAKE_PAYOUT_DELAY_SECONDS = 0

# The triage assistant stays off so the suite keeps its behaviour; its own tests turn it on (tests/messaging/assistant).
REFUNDCHAT_ASSISTANT_ENABLED = False

# Field encryption (refundchat/crypto.py): the suite's own key, never a deployment's.
REFUNDCHAT_FIELD_KEYS = ["Dqx3jyFTFiOeAOvN8ZotQxVNZtNC3GH1W3jkXI0rkxw="]

# Ticket and upload rate limits (refundchat/rate_limits.py) out of the way; tests/security/test_doors.py sets them.
REFUNDCHAT_TICKETS_PER_DAY = 10_000
REFUNDCHAT_UPLOADS_PER_HOUR = 10_000
