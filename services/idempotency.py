"""Idempotency keys for mutations that move money or stock: a retry returns the first result, moves nothing."""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models import IdempotencyKey, utcnow
from services.db import insert_new
from services.errors import DomainError, ErrorCode
from services.validation import text


def fingerprint(request: Any) -> str:
    return hashlib.sha256(orjson.dumps(request, option=orjson.OPT_SORT_KEYS)).hexdigest()[:64]


async def claim(session: AsyncSession, *, scope: str, key: str, request: Any) -> dict[str, Any] | None:
    """Claim `key` in `scope` for this request; return the earlier result if it was already done.

    The claim is an insert that waits for a concurrent holder of the same key (unique index), so two
    retries racing each other run the work once: the second sees the first's committed result.
    """
    key = text(key, "idempotencyKey", max_len=64)
    digest = fingerprint(request)
    row = {"scope": scope, "key": key, "fingerprint": digest, "result": None, "created_at": utcnow()}
    stmt = insert_new(session, IdempotencyKey, row, unique=["scope", "key"])
    inserted = await session.execute(stmt.returning(IdempotencyKey.id))
    if inserted.first() is not None:
        return None
    existing = await session.scalar(
        select(IdempotencyKey).where(IdempotencyKey.scope == scope, IdempotencyKey.key == key)
    )
    assert existing is not None
    if existing.fingerprint != digest:
        raise DomainError(
            ErrorCode.IDEMPOTENCY_KEY_REUSED, "This idempotency key was used for a different request.", "idempotencyKey"
        )
    return existing.result or {}


async def complete(session: AsyncSession, *, scope: str, key: str, result: dict[str, Any]) -> None:
    row = await session.scalar(select(IdempotencyKey).where(IdempotencyKey.scope == scope, IdempotencyKey.key == key))
    assert row is not None
    row.result = result
    await session.flush()
