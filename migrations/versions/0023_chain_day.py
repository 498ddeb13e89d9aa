"""the chain's day facts: HQ's sales report reads a few rows a day, not every store's

A roll-up of `fact_store_day` by day, channel and fulfilment, kept by the same fold (as `fact_chain_hour` is of the
store hours), and backfilled from the store days.

Revision ID: 0023_chain_day
Revises: 0022_store_day_cost
Create Date: 2026-12-03 17:35:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0023_chain_day'
down_revision: str | None = '0022_store_day_cost'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MEASURES = (
    'orders', 'gmv', 'discounts', 'net', 'refunds', 'refund_count', 'members',
    'quantity', 'refunded_quantity', 'cost', 'refunded_cost',
)
GOODS = ('quantity', 'refunded_quantity', 'cost', 'refunded_cost')


def upgrade() -> None:
    op.create_table(
        'fact_chain_day',
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('channel', sa.String(length=16), nullable=False),
        sa.Column('fulfilment', sa.String(length=16), nullable=False),
        *(
            sa.Column(m, sa.BigInteger(), nullable=False, **({'server_default': '0'} if m in GOODS else {}))
            for m in MEASURES
        ),
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_fact_chain_day')),
        sa.UniqueConstraint('day', 'channel', 'fulfilment', name=op.f('uq_fact_chain_day_day_channel_fulfilment')),
    )
    columns = ', '.join(MEASURES)
    sums = ', '.join(f'SUM({m})' for m in MEASURES)
    op.execute(
        f'INSERT INTO fact_chain_day (day, channel, fulfilment, {columns}) '
        f'SELECT day, channel, fulfilment, {sums} FROM fact_store_day GROUP BY day, channel, fulfilment'
    )


def downgrade() -> None:
    op.drop_table('fact_chain_day')
