"""The session check, remembered per token for a few seconds so that a signed-in request costs no database round trip.

What could make a remembered viewer wrong is announced through the event broker (Redis pub/sub across instances):
a session that ends (`session.revoked`: logout, disabling, a password change, refresh reuse, erasure) leaves every
instance's cache as the announcement arrives, and a change of roles or placements (`access.changed`) empties it. A
check that read the session before its revocation and finishes after the announcement is not remembered: the ended
session ids are kept for as long as an entry could live.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable

from services.access.auth import ACCESS_CHANGED, SESSION_REVOKED
from services.access.scope import Viewer
from services.platform.events import Event


class ViewerCache:
    def __init__(self, ttl_s: float = 5.0, max_entries: int = 100_000, clock: Callable[[], float] = time.monotonic):
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[bytes, tuple[float, float, Viewer]] = OrderedDict()
        self._ended: dict[int, float] = {}  # session id -> until when a late check must not be remembered
        self._generation = 0  # bumped by `access.changed`: checks started before it are not remembered

    @staticmethod
    def _key(token: str) -> bytes:
        return hashlib.blake2b(token.encode(), digest_size=16).digest()

    def get(self, token: str) -> Viewer | None:
        if self.ttl_s <= 0:
            return None
        key = self._key(token)
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires, token_expires, viewer = entry
        if expires <= self._clock() or token_expires <= time.time() or self._has_ended(viewer):
            del self._entries[key]
            return None
        return viewer

    async def check(self, token: str, authenticate: Callable[[], Awaitable[tuple[Viewer, float]]]) -> Viewer:
        """The remembered viewer of `token`, or the one `authenticate()` finds with the token's expiry (seconds since
        the epoch), remembered unless an announcement overtook the check; never past the token's expiry."""
        cached = self.get(token)
        if cached is not None:
            return cached
        generation = self._generation
        viewer, token_expires = await authenticate()
        if self.ttl_s > 0 and generation == self._generation and not self._has_ended(viewer):
            self._entries[self._key(token)] = (self._clock() + self.ttl_s, token_expires, viewer)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        return viewer

    def _has_ended(self, viewer: Viewer) -> bool:
        return viewer.session_id is not None and self._ended.get(viewer.session_id, 0.0) > self._clock()

    def sessions_ended(self, session_ids: list[int]) -> None:
        now = self._clock()
        self._ended = {sid: until for sid, until in self._ended.items() if until > now}
        for sid in session_ids:
            self._ended[sid] = now + 2 * self.ttl_s
        ended = set(session_ids)
        for key in [k for k, (_, _, v) in self._entries.items() if v.session_id in ended]:
            del self._entries[key]

    def clear(self) -> None:
        self._generation += 1
        self._entries.clear()

    def apply(self, event: Event) -> None:
        if event.topic == SESSION_REVOKED:
            self.sessions_ended([int(i) for i in event.payload.get("sessionIds", [])])
        elif event.topic == ACCESS_CHANGED:
            self.clear()
