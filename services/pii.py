"""Personal data: AES-GCM ciphertext plus a keyed blind index at rest, and the one declaration of what is personal."""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Column, inspect
from sqlalchemy.sql.schema import ScalarElementColumnDefault

from models.base import PII, REDACTED, Base, Sensitivity
from services.platform.errors import DomainError, ErrorCode

__all__ = ["PII", "REDACTED", "PiiCipher", "Sensitivity", "erased", "mask_phone", "normalise_phone", "personal_columns"]

_PHONE = re.compile(r"^1\d{10}$")


def normalise_phone(raw: str, field: str = "phone") -> str:
    """Mainland mobile numbers: 11 digits starting with 1; spaces, dashes and +86 are dropped."""
    digits = re.sub(r"[\s\-]", "", raw)
    if digits.startswith("+86"):
        digits = digits[3:]
    if not _PHONE.match(digits):
        raise DomainError(ErrorCode.INVALID_INPUT, "Not a valid mobile number.", field)
    return digits


class PiiCipher:
    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)
        # A separate key for the index so the ciphertext key never doubles as a MAC key.
        self._index_key = hashlib.sha256(b"blind-index:" + key).digest()

    def encrypt(self, plaintext: str, *, context: bytes = b"pii") -> bytes:
        nonce = os.urandom(12)
        return nonce + self._aead.encrypt(nonce, plaintext.encode(), context)

    def decrypt(self, blob: bytes, *, context: bytes = b"pii") -> str:
        return self._aead.decrypt(blob[:12], blob[12:], context).decode()

    def index(self, value: str) -> str:
        return hmac.new(self._index_key, value.encode(), hashlib.sha256).hexdigest()


def mask_phone(phone: str | None = None, *, prefix: str | None = None, last4: str | None = None) -> str | None:
    """138****5678, from the full number or from its stored prefix and last four digits."""
    if phone:
        return phone[:3] + "****" + phone[-4:]
    if last4:
        return (prefix or "***") + "****" + last4
    return None


def personal_columns(model: type[Base]) -> list[Column[Any]]:
    """The columns of a model declared personal (`info=personal()`)."""
    return [c for c in inspect(model).columns if Sensitivity(c.info.get(PII, Sensitivity.NOT_PERSONAL)).hidden]


def erased(model: type[Base]) -> dict[str, Any]:
    """Values that erase a model's personal columns: NULL, or the column's default where NULL is not allowed."""
    values: dict[str, Any] = {}
    for column in personal_columns(model):
        if column.nullable:
            values[column.key] = None
        elif isinstance(column.default, ScalarElementColumnDefault):
            values[column.key] = column.default.arg
        else:  # a declaration erasure cannot honour is a bug in the model, found by the first deletion test
            raise RuntimeError(f"{model.__name__}.{column.key} is personal but neither nullable nor defaulted")
    return values
