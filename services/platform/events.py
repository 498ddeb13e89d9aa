"""Events published after commit, never before, through one broker: in-process, or Redis pub/sub.

Services only `emit` into the session; whoever commits the session publishes what it emitted, so a
rolled-back change never announces itself.
"""

from __future__ import annotations

import asyncio
import fnmatch
import logging
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

log = logging.getLogger("chain.events")
_PENDING = "pending_events"


@dataclass(frozen=True)
class Event:
    topic: str
    payload: dict[str, Any]


def emit(session: AsyncSession, topic: str, payload: dict[str, Any]) -> None:
    """Queue an event on the session; it is published only if the transaction commits."""
    pending(session.info).append(Event(topic, payload))


def pending(info: dict[Any, Any]) -> list[Event]:
    """What a session (its `info`) has emitted so far and not yet published: the queue itself, for hooks that read
    it before the commit or add to it from a flush."""
    events: list[Event] = info.setdefault(_PENDING, [])
    return events


def take_pending(session: AsyncSession) -> list[Event]:
    """What the session emitted, to publish once it commits. Flush first when taken before the commit: a flush
    names what it wrote (services/platform/public_reads.py)."""
    events: list[Event] = session.info.pop(_PENDING, [])
    return events


class Broker(Protocol):
    async def publish(self, events: list[Event]) -> None: ...

    def subscribe(self, pattern: str) -> AsyncGenerator[Event, None]:
        """Events whose topic matches the glob `pattern`, until the caller stops iterating."""
        ...

    async def close(self) -> None: ...


class InProcessBroker:
    """One app instance: subscribers are queues in this process."""

    def __init__(self, max_queue: int = 1000) -> None:
        self._subscribers: dict[int, tuple[str, asyncio.Queue[Event]]] = {}
        self._max_queue = max_queue

    async def publish(self, events: list[Event]) -> None:
        for event in events:
            for pattern, queue in list(self._subscribers.values()):
                if fnmatch.fnmatchcase(event.topic, pattern):
                    if queue.full():
                        log.warning("dropping an event for a slow subscriber on %s", pattern)
                        continue
                    queue.put_nowait(event)

    async def subscribe(self, pattern: str) -> AsyncGenerator[Event, None]:
        queue: asyncio.Queue[Event] = asyncio.Queue(self._max_queue)
        key = id(queue)
        self._subscribers[key] = (pattern, queue)
        try:
            while True:
                yield await queue.get()
        finally:
            self._subscribers.pop(key, None)

    async def close(self) -> None:
        self._subscribers.clear()


class RedisBroker:
    """Several app instances: events go through Redis pub/sub so every instance's subscribers get them."""

    def __init__(self, url: str, channel_prefix: str = "chain:") -> None:
        from redis.asyncio import Redis  # loaded only when REDIS_URL is set: one instance never needs it

        self._redis = Redis.from_url(url)
        self._prefix = channel_prefix

    async def publish(self, events: list[Event]) -> None:
        for event in events:
            await self._redis.publish(self._prefix + event.topic, orjson.dumps(event.payload))

    async def subscribe(self, pattern: str) -> AsyncGenerator[Event, None]:
        pubsub = self._redis.pubsub()
        await pubsub.psubscribe(self._prefix + pattern)
        try:
            async for message in pubsub.listen():
                if message.get("type") != "pmessage":
                    continue
                channel = message["channel"].decode() if isinstance(message["channel"], bytes) else message["channel"]
                yield Event(channel.removeprefix(self._prefix), orjson.loads(message["data"]))
        finally:
            await pubsub.punsubscribe()
            await pubsub.aclose()  # type: ignore[no-untyped-call]

    async def ready(self) -> bool:
        return bool(await self._redis.ping())

    async def close(self) -> None:
        await self._redis.aclose()


def create_broker(redis_url: str | None) -> Broker:
    return RedisBroker(redis_url) if redis_url else InProcessBroker()
