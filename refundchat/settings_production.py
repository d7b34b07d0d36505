"""The production profile (docs/deploy.md): DJANGO_SETTINGS_MODULE=refundchat.settings_production.

Everything of refundchat/settings.py with DEBUG off whatever the environment says, so its secrets and hosts
(DJANGO_SECRET_KEY, REFUNDCHAT_FIELD_KEYS, DJANGO_ALLOWED_HOSTS, DATABASE_URL, REDIS_URL) must come from the
environment, plus what a public deployment behind nginx needs: TLS ends at nginx, which says so in
X-Forwarded-Proto; WhiteNoise serves the collected (`manage.py collectstatic`), hashed and compressed static
files from every Daphne process; shared files go to S3-compatible storage when a bucket is named.
`manage.py check --deploy` with this profile reports nothing.
"""

from __future__ import annotations

import os

# Before the base settings read it: a production process never runs with DEBUG on.
os.environ["DJANGO_DEBUG"] = "0"

from refundchat.settings import *  # noqa: F403
from refundchat.settings import ALLOWED_HOSTS, STORAGES, env_bool

if not ALLOWED_HOSTS or os.environ.get("DJANGO_ALLOWED_HOSTS") is None:
    raise RuntimeError("DJANGO_ALLOWED_HOSTS must name the public host(s), e.g. refunds.example.com")

STORAGES["staticfiles"] = {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"}

# TLS at nginx.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = True
# The load balancer's probes and the metrics scraper talk to each Daphne process directly, over plain HTTP.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
SECURE_HSTS_SECONDS = int(os.environ.get("DJANGO_SECURE_HSTS_SECONDS", str(365 * 24 * 3600)))
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = env_bool("DJANGO_SECURE_HSTS_PRELOAD", True)
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True

# Shared files (product pictures, data exports: default_storage) on S3-compatible storage when a bucket is
# named (django-storages; REFUNDCHAT_S3_ENDPOINT_URL for MinIO, Ceph and the like), local files otherwise.
# Evidence originals and their derived copies stay under MEDIA_ROOT: ffmpeg and Pillow work on local paths, so
# with several hosts MEDIA_ROOT is a volume they share (docs/deploy.md, "Several hosts").
if os.environ.get("REFUNDCHAT_S3_BUCKET"):
    STORAGES["default"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": os.environ["REFUNDCHAT_S3_BUCKET"],
            "endpoint_url": os.environ.get("REFUNDCHAT_S3_ENDPOINT_URL") or None,
            "region_name": os.environ.get("REFUNDCHAT_S3_REGION") or None,
            "access_key": os.environ.get("REFUNDCHAT_S3_ACCESS_KEY_ID", ""),
            "secret_key": os.environ.get("REFUNDCHAT_S3_SECRET_ACCESS_KEY", ""),
            "default_acl": None,
            "querystring_auth": True,
            "file_overwrite": False,
        },
    }
