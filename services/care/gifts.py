"""What after-sales gives a member, each through the rules that already govern it: a coupon through the coupon
service (its template must be running, allowed in the store, within the member's limit), points through the points
ledger. Callers run these inside their own idempotency claim and state change, so a retry gives nothing twice."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from models import CouponSource, CouponTemplate, Member, utcnow
from services.access.scope import Viewer
from services.access.visible import require_visible
from services.marketing import coupons
from services.members import points
from services.platform.errors import DomainError, ErrorCode

MAX_POINTS = 100_000
# A store gives at most this many points on one complaint; more is HQ's call (escalate).
STORE_MAX_POINTS = 1_000


async def give_coupon(
    session: AsyncSession, viewer: Viewer, template_id: int, member_id: int, store_id: int, field: str
) -> int:
    """One coupon of the template to the member (1), through coupons.grant; refused when it cannot be given. Another
    store's own template is NOT_FOUND, as an id that does not exist."""
    await require_visible(session, viewer, CouponTemplate, [template_id], field)
    template = await session.get(CouponTemplate, template_id)
    assert template is not None
    if template.store_ids and store_id not in template.store_ids:
        raise DomainError(ErrorCode.COUPON_NOT_APPLICABLE, "This coupon is not given in this store.", field)
    given = await coupons.grant(session, template, Member.id == member_id, CouponSource.ISSUE, utcnow())
    if not given:
        raise DomainError(ErrorCode.COUPON_LIMIT_REACHED, "The member already holds as many as allowed.", field)
    return given


async def give_points(
    session: AsyncSession, member_id: int, amount: int, *, note: str, staff_id: int | None, by_hq: bool
) -> int:
    """Points as a goodwill gesture: an ADJUST entry on the member's ledger (a store's at most STORE_MAX_POINTS)."""
    if not 0 < amount <= MAX_POINTS:
        raise DomainError(ErrorCode.INVALID_INPUT, f"Give 1 to {MAX_POINTS} points.", "points")
    if not by_hq and amount > STORE_MAX_POINTS:
        raise DomainError(
            ErrorCode.NOT_ALLOWED_BY_POLICY, f"A store gives at most {STORE_MAX_POINTS} points; escalate.", "points"
        )
    await points.adjust(session, member_id, amount, note=note, staff_id=staff_id)
    return amount
