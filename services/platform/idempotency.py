"""Idempotency keys for every mutation that moves money, stock, points, stored value, coupons or cards.

One mechanism for all of them: `once` claims the key, runs the work, stores what identifies its result and,
on a replay, loads that result again instead of running the work. The same key with a different request is
IDEMPOTENCY_KEY_REUSED and moves nothing. Concurrent replays of one key move value once: the claim is an insert
on a unique index, so the second waits for the first's transaction and then reads its stored result (or, if
the first rolled back, runs the work itself).
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import orjson
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models import IdempotencyKey, utcnow
from services.platform.db import insert_new
from services.platform.errors import DomainError, ErrorCode
from services.platform.validation import text

T = TypeVar("T")


def fingerprint(request: Any) -> str:
    return hashlib.sha256(orjson.dumps(request, option=orjson.OPT_SORT_KEYS)).hexdigest()[:64]


async def _claim(session: AsyncSession, *, scope: str, key: str, request: Any) -> dict[str, Any] | None:
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


async def _complete(session: AsyncSession, *, scope: str, key: str, result: dict[str, Any]) -> None:
    row = await session.scalar(select(IdempotencyKey).where(IdempotencyKey.scope == scope, IdempotencyKey.key == key))
    assert row is not None
    row.result = result
    await session.flush()


async def once(
    session: AsyncSession,
    *,
    scope: str,
    key: str,
    request: Any,
    run: Callable[[], Awaitable[T]],
    save: Callable[[T], dict[str, Any]],
    load: Callable[[dict[str, Any]], Awaitable[T]],
) -> T:
    """Run `run` once per (scope, key): the first call stores `save(result)`; a replay returns `load(stored)`.

    `request` is what the caller asked for (ids, quantities, amounts): the same key with another request is
    refused. Scope the key by who may replay it (a store, a member) so two tablets cannot collide.
    """
    earlier = await _claim(session, scope=scope, key=key, request=request)
    if earlier is not None:
        return await load(earlier)
    result = await run()
    await _complete(session, scope=scope, key=key, result=save(result))
    return result
