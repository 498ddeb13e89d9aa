"""Loaders for orders, their lines, payments and refunds."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select

from models import (
    Order,
    OrderLine,
    Payment,
    Refund,
)
from resolvers.loaders.base import ScopedLoader, by_key, grouped
from services.access.permissions import Perm
from services.access.scope import restrict
from services.orders.listing import TimelineEntry, timelines


class OrderByIdLoader(ScopedLoader):
    """Orders a viewer may see: a member their own; staff their store's (order.read); HQ all."""

    async def batch_load_fn(self, keys: Sequence[int]) -> list[Order | None]:
        stmt = select(Order).where(Order.id.in_(keys))
        if self.viewer.is_member:
            stmt = stmt.where(Order.member_id == self.viewer.member_id)
        else:
            stmt = restrict(stmt, self.viewer, Order.store_id, Perm.ORDER_READ)
        return by_key(keys, await self._rows(stmt), lambda o: o.id)


class OrderLinesByOrderLoader(ScopedLoader):
    """Lines of orders already loaded through a scoped path."""

    async def batch_load_fn(self, keys: Sequence[int]) -> list[list[OrderLine]]:
        rows = await self._rows(select(OrderLine).where(OrderLine.order_id.in_(keys)).order_by(OrderLine.id))
        return grouped(keys, rows, lambda line: line.order_id)


class PaymentsByOrderLoader(ScopedLoader):
    """Payments of orders already loaded through a scoped path, oldest first."""

    async def batch_load_fn(self, keys: Sequence[int]) -> list[list[Payment]]:
        rows = await self._rows(select(Payment).where(Payment.order_id.in_(keys)).order_by(Payment.id))
        return grouped(keys, rows, lambda p: p.order_id)


class PaymentByIdLoader(ScopedLoader):
    """A payment the viewer may see: on a member's own order; staff their store's (order.read); HQ all."""

    async def batch_load_fn(self, keys: Sequence[int]) -> list[Payment | None]:
        stmt = select(Payment).where(Payment.id.in_(keys))
        if self.viewer.is_member:
            stmt = stmt.join(Order, Order.id == Payment.order_id).where(Order.member_id == self.viewer.member_id)
        else:
            stmt = restrict(stmt, self.viewer, Payment.store_id, Perm.ORDER_READ)
        return by_key(keys, await self._rows(stmt), lambda p: p.id)


class RefundsByOrderLoader(ScopedLoader):
    """Refunds of orders already loaded through a scoped path, oldest first."""

    async def batch_load_fn(self, keys: Sequence[int]) -> list[list[Refund]]:
        rows = await self._rows(select(Refund).where(Refund.order_id.in_(keys)).order_by(Refund.id))
        return grouped(keys, rows, lambda r: r.order_id)


class RefundByIdLoader(ScopedLoader):
    """Refunds of orders the viewer may see (as OrderByIdLoader): a member their own; staff their store's."""

    async def batch_load_fn(self, keys: Sequence[int]) -> list[Refund | None]:
        stmt = select(Refund).where(Refund.id.in_(keys))
        if self.viewer.is_member:
            stmt = stmt.join(Order, Order.id == Refund.order_id).where(Order.member_id == self.viewer.member_id)
        else:
            stmt = restrict(stmt, self.viewer, Refund.store_id, Perm.ORDER_READ)
        return by_key(keys, await self._rows(stmt), lambda r: r.id)


class TimelineByOrderLoader(ScopedLoader):
    """Timelines of orders already loaded through a scoped path: four statements for a whole page of orders."""

    async def batch_load_fn(self, keys: Sequence[int]) -> list[list[TimelineEntry]]:
        async with self.sessionmaker() as session:
            return await timelines(session, keys)
