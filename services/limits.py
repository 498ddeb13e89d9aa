"""What one GraphQL request may ask for (enforced in schema/core/limits.py): depth, aliases, tokens, and a cost budget
by kind of viewer, plus the HTTP body size."""

from __future__ import annotations

from dataclasses import dataclass

from services.access.scope import Viewer, ViewerKind


@dataclass(frozen=True)
class Limits:
    max_depth: int = 12
    max_aliases: int = 30
    max_tokens: int = 3000
    cost_anonymous: int = 5_000
    cost_member: int = 10_000
    cost_store_staff: int = 50_000
    cost_hq: int = 100_000
    max_body_bytes: int = 64 * 1024

    def budget(self, viewer: Viewer) -> int:
        if viewer.kind is ViewerKind.ANONYMOUS:
            return self.cost_anonymous
        if viewer.kind is ViewerKind.MEMBER:
            return self.cost_member
        return self.cost_hq if viewer.is_hq else self.cost_store_staff
