"""A member's own data: the export of everything kept about them, and the deletion of their account.

Deleting an account first settles what is still open, so nothing is left waiting on an account that no longer
exists: unpaid orders are cancelled (stock, points, stored value and coupons go back), paid orders not yet handed
over are refunded through the normal refund path (and the payment provider). Then the columns the models declare
personal (`info=personal()`) are erased on the member, their orders and sessions; sign-in identities and tags go;
the audit entries about them lose their personal values. Orders, payments and ledgers stay for the books, tied to
an anonymous id. All of it is one transaction: a refused deletion changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from models import (
    AuthSession,
    BalanceEntry,
    FollowUpTask,
    GroupBuy,
    GroupBuyStatus,
    Member,
    MemberCoupon,
    MemberIdentity,
    MemberStore,
    MemberTag,
    MemberTagLink,
    OnlineTopUp,
    Order,
    OrderLine,
    OrderStatus,
    Payment,
    PointsEntry,
    Rating,
    Referral,
    Refund,
    Ticket,
    TicketEntry,
    utcnow,
)
from services.access import audit, auth
from services.access.pii import PiiCipher, erased, mask_phone
from services.access.scope import SYSTEM, Viewer
from services.cards import queries as card_queries
from services.members import attributes, browsing
from services.messaging import admin as messaging
from services.orders import lifecycle as orders
from services.orders import refunds
from services.orders.states import Actor
from services.platform.errors import AccessDenied, DomainError, ErrorCode
from services.platform.payments import PaymentProvider

# Orders that may still move money or stock: unpaid, or paid with goods not yet handed over.
OPEN = (OrderStatus.CREATED, *refunds.REFUNDABLE)
DELETION_REASON = "账户注销 (account deleted)"


def _own(viewer: Viewer) -> int:
    if not viewer.is_member or viewer.member_id is None:
        raise AccessDenied("Only a member may do this for their own account.")
    return viewer.member_id


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


# The export's sections, in the order the member sees them.
_EXPORT_SECTIONS = (
    "member",
    "identities",
    "sessions",
    "stores",
    "tags",
    "orders",
    "payments",
    "refunds",
    "topUps",
    "points",
    "storedValue",
    "coupons",
    "referrals",
    "groupBuys",
    "attributes",
    "browsingHistory",
    "messageConsents",
    "messages",
    "cards",
)


async def export_data(session: AsyncSession, cipher: PiiCipher, viewer: Viewer) -> dict[str, Any]:
    """Everything the chain keeps about the signed-in member, for them to keep."""
    member_id = _own(viewer)
    member = await session.get(Member, member_id)
    if member is None or member.deleted_at is not None:
        raise DomainError(ErrorCode.MEMBER_DELETED, "This account was deleted.")
    parts: dict[str, Any] = {"member": _exported_profile(cipher, member)}
    parts |= await _exported_purchases(session, cipher, member_id)
    parts |= await _exported_account(session, member_id)
    parts["attributes"] = await attributes.exported(session, cipher, member_id)
    parts["browsingHistory"] = await browsing.exported(session, member_id)
    parts |= await messaging.exported(session, member_id)
    parts |= await card_queries.exported(session, member_id)
    return {section: parts[section] for section in _EXPORT_SECTIONS}


async def _rows(session: AsyncSession, stmt: Any) -> Sequence[Any]:
    return (await session.scalars(stmt)).all()


def _exported_profile(cipher: PiiCipher, member: Member) -> dict[str, Any]:
    return {
        "id": member.id,
        "name": member.name,
        "phone": cipher.decrypt(member.phone_enc) if member.phone_enc else None,
        "birthday": _iso(member.birthday),
        "gender": member.gender.value,
        "homeStoreId": member.home_store_id,
        "levelId": member.level_id,
        "segment": member.segment,
        "shareCode": member.share_code,
        "joinedAt": _iso(member.joined_at),
        "pointsBalance": member.points_balance,
        "storedValue": {"principal": member.balance_principal, "bonus": member.balance_bonus},
        "totalSpend": member.total_spend,
        "visits": member.visit_count,
        "lastVisitAt": _iso(member.last_visit_at),
    }


def _exported_delivery(cipher: PiiCipher, order: Order) -> dict[str, Any] | None:
    """The order's delivery address, decrypted (None for pickup orders)."""
    if order.delivery_enc is None:
        return None
    where = orders.open_delivery(cipher, order.delivery_enc)
    return {
        "contactName": where.contact_name,
        "phone": where.phone,
        "address": where.address,
        "lat": where.lat,
        "lng": where.lng,
    }


def _exported_order(cipher: PiiCipher, o: Order, lines: list[OrderLine]) -> dict[str, Any]:
    """One order with its lines and delivery address."""
    return {
        "id": o.id,
        "storeId": o.store_id,
        "channel": o.channel.value,
        "fulfilment": o.fulfilment.value,
        "status": o.status.value,
        "subtotal": o.subtotal,
        "discountTotal": o.discount_total,
        "pointsUsed": o.points_used,
        "storedValueUsed": o.stored_value_used,
        "deliveryFee": o.delivery_fee,
        "payable": o.payable,
        "pickupAt": _iso(o.pickup_at),
        "delivery": _exported_delivery(cipher, o),
        "createdAt": _iso(o.created_at),
        "paidAt": _iso(o.paid_at),
        "completedAt": _iso(o.completed_at),
        "cancelledAt": _iso(o.cancelled_at),
        "lines": [
            {
                "skuId": x.sku_id,
                "quantity": x.quantity,
                "unitPrice": x.unit_price,
                "lineTotal": x.line_total,
                "pickedUp": x.picked_up,
                "refunded": x.refunded,
            }
            for x in lines
        ],
    }


async def _exported_purchases(session: AsyncSession, cipher: PiiCipher, member_id: int) -> dict[str, Any]:
    """The member's orders (with their lines and delivery addresses), payments and refunds."""
    order_rows = await _rows(session, select(Order).where(Order.member_id == member_id).order_by(Order.id))
    order_ids = [o.id for o in order_rows]
    lines = await _rows(session, select(OrderLine).where(OrderLine.order_id.in_(order_ids)).order_by(OrderLine.id))
    payments = await _rows(session, select(Payment).where(Payment.order_id.in_(order_ids)).order_by(Payment.id))
    refunds_ = await _rows(session, select(Refund).where(Refund.order_id.in_(order_ids)).order_by(Refund.id))

    return {
        "orders": [_exported_order(cipher, o, [x for x in lines if x.order_id == o.id]) for o in order_rows],
        "payments": [
            {
                "orderId": p.order_id,
                "method": p.method.value,
                "amount": p.amount,
                "status": p.status.value,
                "provider": p.provider,
                "paidAt": _iso(p.paid_at),
            }
            for p in payments
        ],
        "refunds": [
            {
                "orderId": r.order_id,
                "amount": r.amount,
                "byMethod": r.by_method,
                "lines": r.lines,
                "reason": r.reason,
                "at": _iso(r.created_at),
            }
            for r in refunds_
        ],
    }


def _exported_store(s: MemberStore) -> dict[str, Any]:
    """The member's standing at one store."""
    return {
        "storeId": s.store_id,
        "registered": s.registered,
        "purchases": s.purchase_count,
        "spend": s.spend,
        "firstSeenAt": _iso(s.first_seen_at),
        "lastPurchaseAt": _iso(s.last_purchase_at),
    }


def _exported_top_up(t: OnlineTopUp) -> dict[str, Any]:
    """One online top-up."""
    return {
        "amount": t.amount,
        "bonus": t.bonus,
        "status": t.status.value,
        "storeId": t.store_id,
        "paidAt": _iso(t.paid_at),
        "createdAt": _iso(t.created_at),
    }


def _exported_balance_entry(b: BalanceEntry) -> dict[str, Any]:
    """One stored value movement."""
    return {
        "at": _iso(b.created_at),
        "kind": b.kind.value,
        "principal": b.principal,
        "bonus": b.bonus,
        "storeId": b.store_id,
    }


def _exported_coupon(c: MemberCoupon) -> dict[str, Any]:
    """One coupon the member holds or held."""
    return {
        "templateId": c.template_id,
        "status": c.status.value,
        "source": c.source.value,
        "validFrom": _iso(c.valid_from),
        "validUntil": _iso(c.valid_until),
        "usedOrderId": c.used_order_id,
        "claimedAt": _iso(c.created_at),
    }


async def _exported_account(session: AsyncSession, member_id: int) -> dict[str, Any]:
    """The rest of the member's account: stores, points, stored value, top-ups, coupons, sign-ins, referrals,
    group buys, tags and sessions."""

    async def rows(stmt: Any) -> Sequence[Any]:
        return await _rows(session, stmt)

    stores = await rows(select(MemberStore).where(MemberStore.member_id == member_id).order_by(MemberStore.id))
    points = await rows(select(PointsEntry).where(PointsEntry.member_id == member_id).order_by(PointsEntry.id))
    balance = await rows(select(BalanceEntry).where(BalanceEntry.member_id == member_id).order_by(BalanceEntry.id))
    top_ups = await rows(select(OnlineTopUp).where(OnlineTopUp.member_id == member_id).order_by(OnlineTopUp.id))
    coupons = await rows(select(MemberCoupon).where(MemberCoupon.member_id == member_id).order_by(MemberCoupon.id))
    identities = await rows(
        select(MemberIdentity).where(MemberIdentity.member_id == member_id).order_by(MemberIdentity.id)
    )
    referrals = await rows(
        select(Referral).where((Referral.referrer_id == member_id) | (Referral.referred_id == member_id))
    )
    groups = await rows(select(GroupBuy).where(GroupBuy.leader_member_id == member_id).order_by(GroupBuy.id))
    tags = await rows(
        select(MemberTag.name)
        .join(MemberTagLink, MemberTagLink.tag_id == MemberTag.id)
        .where(MemberTagLink.member_id == member_id)
        .order_by(MemberTag.name)
    )
    sessions = await rows(select(AuthSession).where(AuthSession.member_id == member_id).order_by(AuthSession.id))
    return {
        "identities": [{"provider": i.provider, "subject": i.subject, "since": _iso(i.created_at)} for i in identities],
        "sessions": [{"startedAt": _iso(s.created_at), "endedAt": _iso(s.revoked_at), "ip": s.ip} for s in sessions],
        "stores": [_exported_store(s) for s in stores],
        "tags": list(tags),
        "topUps": [_exported_top_up(t) for t in top_ups],
        "points": [
            {"at": _iso(p.created_at), "kind": p.kind.value, "points": p.points, "storeId": p.store_id, "note": p.note}
            for p in points
        ],
        "storedValue": [_exported_balance_entry(b) for b in balance],
        "coupons": [_exported_coupon(c) for c in coupons],
        "referrals": [
            {
                "role": "REFERRER" if r.referrer_id == member_id else "REFERRED",
                "rewarded": r.rewarded_at is not None,
                "at": _iso(r.created_at),
            }
            for r in referrals
        ],
        "groupBuys": [
            {"id": g.id, "status": g.status.value, "size": g.size, "joined": g.joined, "createdAt": _iso(g.created_at)}
            for g in groups
        ],
    }


def _left_to_hand_over(lines: Sequence[OrderLine]) -> dict[int, int]:
    """Units paid for and neither handed over nor refunded (goods refunded after pickup count as handed over)."""
    left = {x.sku_id: x.quantity - x.picked_up - x.refunded for x in lines}
    return {sku: n for sku, n in left.items() if n > 0}


async def _principal_held(session: AsyncSession, order_ids: Sequence[int]) -> int:
    """Stored-value principal the given orders took and have not given back: a refund would return it."""
    if not order_ids:
        return 0
    held = await session.scalar(
        select(func.coalesce(func.sum(BalanceEntry.principal), 0)).where(
            BalanceEntry.ref_type == "order", BalanceEntry.ref_id.in_(order_ids)
        )
    )
    return -int(held or 0)


async def _personal_values(session: AsyncSession, cipher: PiiCipher, member: Member, kept: Sequence[Order]) -> set[str]:
    """The member's personal values as the audit log may hold them: clear, or phones masked."""
    values: set[str] = {v for v in (member.name, _iso(member.birthday)) if v}
    phones = {cipher.decrypt(member.phone_enc)} if member.phone_enc else set()
    for order in kept:
        if order.delivery_enc is not None:
            where = orders.open_delivery(cipher, order.delivery_enc)
            values |= {where.contact_name, where.address}
            phones.add(where.phone)
    subjects = await session.scalars(select(MemberIdentity.subject).where(MemberIdentity.member_id == member.id))
    values |= set(subjects.all())
    return values | phones | {m for p in phones if (m := mask_phone(p))}


async def _leave_open_group(session: AsyncSession, order_id: int) -> None:
    """A paid place in a group still forming is given up with the refund, so the group counts only who stays."""
    group_id = await session.scalar(select(Order.group_buy_id).where(Order.id == order_id))
    if group_id is not None:
        await session.execute(
            update(GroupBuy)
            .where(GroupBuy.id == group_id, GroupBuy.status == GroupBuyStatus.OPEN, GroupBuy.paid > 0)
            .values(joined=GroupBuy.joined - 1, paid=GroupBuy.paid - 1)
        )


async def _forget_links_and_feedback(session: AsyncSession, member_id: int) -> None:
    """The member's identities and tags go; what they wrote in ratings, complaints and replies, and the notes of calls
    to them, are erased (the counts stay for the stores' figures)."""
    await session.execute(delete(MemberIdentity).where(MemberIdentity.member_id == member_id))
    await session.execute(delete(MemberTagLink).where(MemberTagLink.member_id == member_id))
    for model in (Rating, Ticket, FollowUpTask):
        await session.execute(update(model).where(model.member_id == member_id).values(**erased(model)))
    theirs = select(Ticket.id).where(Ticket.member_id == member_id)
    await session.execute(update(TicketEntry).where(TicketEntry.ticket_id.in_(theirs)).values(**erased(TicketEntry)))


async def delete_account(
    session: AsyncSession, cipher: PiiCipher, viewer: Viewer, providers: Mapping[str, PaymentProvider]
) -> None:
    """Settle the member's open orders, then erase their personal data; the books stay, anonymised."""
    member_id = _own(viewer)
    member = await session.get(Member, member_id, with_for_update=True)
    if member is None or member.deleted_at is not None:
        raise DomainError(ErrorCode.MEMBER_DELETED, "This account was deleted.")
    mine = list(
        await session.scalars(select(Order).where(Order.member_id == member_id).order_by(Order.id).with_for_update())
    )
    open_orders = [o for o in mine if o.status in OPEN]
    if any(o.status is OrderStatus.DELIVERING or (o.dispatched_at and not o.completed_at) for o in open_orders):
        raise DomainError(ErrorCode.INVALID_TRANSITION, "An order is on its way; delete the account once it arrives.")
    values = await _personal_values(session, cipher, member, mine)
    unpaid = [o.id for o in open_orders if o.status is OrderStatus.CREATED]
    paid = [o.id for o in open_orders if o.status is not OrderStatus.CREATED]
    # Unpaid orders: cancelled, and everything they hold goes back (stock, points, stored value, coupons).
    for order_id in unpaid:
        await orders.release(session, order_id, by=Actor(member_id=member_id))
    to_refund: list[tuple[int, dict[int, int] | None]] = []
    for order_id in paid:
        lines = (await session.scalars(select(OrderLine).where(OrderLine.order_id == order_id))).all()
        left = _left_to_hand_over(lines)
        if left:
            untouched = all(x.picked_up == 0 and x.refunded == 0 for x in lines)
            to_refund.append((order_id, None if untouched else left))
    # The member's own money may not vanish with the account: what they hold, and what the refunds give back.
    await session.refresh(member)
    if member.balance_principal + await _principal_held(session, [order_id for order_id, _ in to_refund]) > 0:
        raise DomainError(ErrorCode.INVALID_INPUT, "Spend or refund your stored value before deleting the account.")
    # Paid orders not handed over: refunded as the store would, the provider asked last in each.
    for order_id, quantities in to_refund:
        await _leave_open_group(session, order_id)
        await refunds.refund_order(
            session,
            SYSTEM,
            dict(providers),
            order_id=order_id,
            quantities=quantities,
            restock=True,
            reason=DELETION_REASON,
        )
    await _erase(session, cipher, member_id, values)


async def _erase(session: AsyncSession, cipher: PiiCipher, member_id: int, values: set[str]) -> None:
    """Erase the member's personal data (columns declared personal, sign-ins, tags, attribute values, views,
    sessions) and the personal `values` from the audit entries about them."""
    now = utcnow()
    await session.execute(
        update(Member)
        .where(Member.id == member_id)
        .values(**erased(Member), deleted_at=now, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    await session.execute(
        update(Order)
        .where(Order.member_id == member_id)
        .values(**erased(Order))
        .execution_options(synchronize_session=False)
    )
    await _forget_links_and_feedback(session, member_id)
    values |= await attributes.erase(session, cipher, member_id)
    await browsing.erase(session, member_id)
    await auth.revoke_sessions(session, member_id=member_id, reason="ACCOUNT_DELETED")
    await session.execute(update(AuthSession).where(AuthSession.member_id == member_id).values(**erased(AuthSession)))
    await audit.forget_member(session, member_id, values)
