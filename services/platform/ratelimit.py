"""Rate limits for what attackers try first: signing in, and looking members up by code or phone.

Fixed windows counted per IP and per viewer (or per username being tried). With REDIS_URL the counts live in
Redis, so every app instance shares them; without it, in this process. Over the limit is RATE_LIMITED with the
seconds until the window ends.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from services.platform.errors import AccessDenied


class RateLimited(AccessDenied):
    def __init__(self, retry_after: int) -> None:
        super().__init__("Too many attempts; try again shortly.", code="RATE_LIMITED")
        self.retry_after = retry_after


@dataclass(frozen=True)
class Rule:
    by: str  # "ip", "viewer" or "subject" (e.g. the username being tried)
    limit: int
    window_s: int


RULES: dict[str, tuple[Rule, ...]] = {
    "login": (Rule("subject", 10, 60), Rule("ip", 100, 60)),
    "memberSignIn": (Rule("ip", 60, 60),),
    "identifyMember": (Rule("viewer", 60, 60), Rule("ip", 240, 60)),
    # Staff finding members by exact phone, or revealing a full phone: a counter's pace is a few a minute; a
    # script walking phone numbers or a member list is stopped within the minute and held to a few hundred a day.
    "memberPhoneLookup": (Rule("viewer", 20, 60), Rule("viewer", 200, 86_400), Rule("ip", 120, 60)),
    "revealMemberPhone": (Rule("viewer", 10, 60), Rule("viewer", 100, 86_400)),
    # Revealing a sensitive member attribute (过敏) is paced like a phone reveal.
    "revealMemberAttribute": (Rule("viewer", 10, 60), Rule("viewer", 100, 86_400)),
    # The mini-program batches product views: a few batches a minute per member is browsing; more is a script.
    "recordProductViews": (Rule("viewer", 20, 60), Rule("ip", 600, 60)),
}


class Counter(Protocol):
    async def incr(self, key: str, window_s: int) -> int: ...


class LocalCounter:
    """One process's counts (development, or a single instance)."""

    def __init__(self) -> None:
        self._counts: dict[str, tuple[int, float]] = {}

    async def incr(self, key: str, window_s: int) -> int:
        now = time.monotonic()
        count, until = self._counts.get(key, (0, 0.0))
        if now >= until:
            count, until = 0, now + window_s
        self._counts[key] = (count + 1, until)
        if len(self._counts) > 100_000:  # forget windows that have ended
            self._counts = {k: v for k, v in self._counts.items() if v[1] > now}
        return count + 1


class RedisCounter:
    """Counts shared by every instance: INCR with the window as the key's life."""

    def __init__(self, url: str) -> None:
        import redis.asyncio as redis  # loaded only when REDIS_URL is set: one instance never needs it

        self._redis = redis.from_url(url)

    async def incr(self, key: str, window_s: int) -> int:
        bucket = f"rl:{key}:{int(time.time()) // window_s}"
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.incr(bucket)
            pipe.expire(bucket, window_s + 1)
            count, _ = await pipe.execute()
        return int(count)

    async def close(self) -> None:
        await self._redis.aclose()


def create_counter(redis_url: str | None) -> Counter:
    return RedisCounter(redis_url) if redis_url else LocalCounter()


async def check(
    counter: Counter,
    operation: str,
    *,
    ip: str | None,
    viewer: str | None,
    subject: str | None,
    rules: dict[str, tuple[Rule, ...]] | None = None,
) -> None:
    """Count this attempt against every rule of `operation`; refuse when any is over its limit."""
    keys = {"ip": ip, "viewer": viewer, "subject": subject}
    for rule in (rules or RULES).get(operation, ()):
        who = keys[rule.by]
        if who is None:
            continue
        if await counter.incr(f"{operation}:{rule.by}:{rule.window_s}:{who}", rule.window_s) > rule.limit:
            raise RateLimited(retry_after=rule.window_s - int(time.time()) % rule.window_s)


def viewer_key(kind: str, ident: int | None) -> str | None:
    return f"{kind}:{ident}" if ident is not None else None


__all__: Sequence[str] = ["RULES", "Counter", "RateLimited", "Rule", "check", "create_counter"]
