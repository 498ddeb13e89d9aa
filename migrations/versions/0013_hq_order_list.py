"""order status changes: who moved an order, and when (the order's timeline)

Revision ID: 0013_hq_order_list
Revises: 0012
Create Date: 2026-12-03 08:25:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import models.base


revision: str = '0013_hq_order_list'
down_revision: str | None = '0012'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_STATUS = ('CREATED', 'PAID', 'PREPARING', 'READY', 'DELIVERING', 'COMPLETED', 'CANCELLED', 'REFUNDED',
           'PARTIALLY_REFUNDED')


def upgrade() -> None:
    op.create_table('order_status_changes',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('order_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('from_status', sa.Enum(*_STATUS, name='orderstatus', native_enum=False, length=24), nullable=True),
    sa.Column('to_status', sa.Enum(*_STATUS, name='orderstatus', native_enum=False, length=24), nullable=False),
    sa.Column('staff_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('member_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('via', sa.String(length=32), nullable=True),
    sa.Column('at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_order_status_changes_order_id_orders')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_order_status_changes'))
    )
    op.create_index('ix_order_status_changes_order_id_id', 'order_status_changes', ['order_id', 'id'], unique=False)
    op.create_index('ix_orders_created_at', 'orders', ['created_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_orders_created_at', table_name='orders')
    op.drop_index('ix_order_status_changes_order_id_id', table_name='order_status_changes')
    op.drop_table('order_status_changes')
