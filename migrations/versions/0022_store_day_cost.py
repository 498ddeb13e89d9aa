"""store day facts carry units and cost: a store's margin, ranking and turnover read one row per store day

Until now a store's cost of goods and units sold were summed from the store x SKU x day facts (millions of rows at a
million orders; the dashboard's store ranking grew with them). The fold now adds them to the store's day as well.
Existing store days are backfilled from the SKU facts, summed per store and day, onto the first channel row of that
day: cost was never split by channel (the SKU facts have none), and every read sums a store's day across channels.

Revision ID: 0022_store_day_cost
Revises: 0021_attributes_views
Create Date: 2026-12-03 16:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0022_store_day_cost'
down_revision: str | None = '0021_attributes_views'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MEASURES = ('quantity', 'refunded_quantity', 'cost', 'refunded_cost')


def upgrade() -> None:
    with op.batch_alter_table('fact_store_day', schema=None) as batch_op:
        for name in MEASURES:
            batch_op.add_column(sa.Column(name, sa.BigInteger(), server_default='0', nullable=False))
    sums = ', '.join(f'{m} = s.{m}' for m in MEASURES)
    totals = ', '.join(f'SUM({m}) AS {m}' for m in MEASURES)
    # Portable (PostgreSQL and SQLite >= 3.33): one UPDATE ... FROM over the per-day sums and each day's first row.
    op.execute(
        f"""
        UPDATE fact_store_day SET {sums}
        FROM (
            SELECT sku.store_id, sku.day, {totals}, first.id AS target
            FROM fact_store_sku_day AS sku
            JOIN (SELECT store_id, day, MIN(id) AS id FROM fact_store_day GROUP BY store_id, day) AS first
              ON first.store_id = sku.store_id AND first.day = sku.day
            GROUP BY sku.store_id, sku.day, first.id
        ) AS s
        WHERE fact_store_day.id = s.target
        """
    )


def downgrade() -> None:
    with op.batch_alter_table('fact_store_day', schema=None) as batch_op:
        for name in reversed(MEASURES):
            batch_op.drop_column(name)
