"""Field encryption and masking for sensitive values (payout accounts).

Values are encrypted with `cryptography`'s MultiFernet (AES-128-CBC + HMAC-SHA256, authenticated). The
keys come from `settings.REFUNDCHAT_FIELD_KEYS`: the first one encrypts, every one decrypts, so a new key
is put first, `manage.py rotate_field_keys` re-encrypts every row under it, and only then is the old key
removed. Nothing here logs a clear value.
"""

from __future__ import annotations

import base64
import hashlib
import re
from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings

__all__ = [
    "InvalidToken",
    "decrypt",
    "development_key",
    "encrypt",
    "is_current",
    "mask_account",
    "mask_card",
    "rotate",
]


class FieldKeyError(RuntimeError):
    """The configured keys are missing or malformed."""


def development_key(secret: str) -> str:
    """A Fernet key derived from the development SECRET_KEY: settings use it only with DEBUG on."""
    return base64.urlsafe_b64encode(hashlib.sha256(b"refundchat-field-key:" + secret.encode()).digest()).decode()


@cache
def _multi_fernet(keys: tuple[str, ...]) -> MultiFernet:
    if not keys:
        raise FieldKeyError("REFUNDCHAT_FIELD_KEYS is empty")
    try:
        return MultiFernet([Fernet(key.encode()) for key in keys])
    except ValueError as error:
        # The message names no key: keys must never reach a log.
        raise FieldKeyError("REFUNDCHAT_FIELD_KEYS holds a malformed key") from error


def _fernet() -> MultiFernet:
    return _multi_fernet(tuple(settings.REFUNDCHAT_FIELD_KEYS))


def encrypt(value: str) -> str:
    """The value encrypted under the first key, as text fit for a TextField."""
    return _fernet().encrypt(value.encode()).decode()


def decrypt(token: str) -> str:
    """The clear value; raises InvalidToken when no configured key opens it."""
    return _fernet().decrypt(token.encode()).decode()


def rotate(token: str) -> str:
    """The same value encrypted under the first key (decrypting with any of them)."""
    return _fernet().rotate(token.encode()).decode()


def is_current(token: str) -> bool:
    """Whether the first key alone opens the token (rotation has nothing left to do for it)."""
    try:
        Fernet(settings.REFUNDCHAT_FIELD_KEYS[0].encode()).decrypt(token.encode())
    except InvalidToken:
        return False
    return True


_NOT_DIGIT = re.compile(r"\D")


def mask_card(number: str) -> str:
    """A card number as the first 6 and last 4 digits, the rest hidden: 622848******1234."""
    digits = _NOT_DIGIT.sub("", number)
    if len(digits) <= 10:
        return "*" * len(digits)
    return digits[:6] + "*" * (len(digits) - 10) + digits[-4:]


def mask_account(account: str) -> str:
    """An Alipay/WeChat account id with its middle hidden: 138****5678, ab***@qq.com, wx***id."""
    account = account.strip()
    if "@" in account:
        local, _at, domain = account.partition("@")
        return (local[:2] if len(local) > 2 else local[:1]) + "***@" + domain
    if len(account) <= 4:
        return "*" * len(account)
    keep_end = 4 if account.isdigit() else 2
    keep_start = 3 if account.isdigit() else 2
    return account[:keep_start] + "*" * max(3, len(account) - keep_start - keep_end) + account[-keep_end:]
