"""margin: order lines keep their unit cost; the SKU facts add cost and refunded cost

Existing order lines are backfilled with their SKU's cost price at migration time (the best figure there is for
sales made before lines kept their cost), and the SKU facts with the same cost times their units sold and refunded,
so the facts still equal a recomputation from the lines.

Revision ID: 0014_margin
Revises: 0013_hq_order_list
Create Date: 2026-12-03 08:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0014_margin'
down_revision: str | None = '0013_hq_order_list'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FACTS = ('fact_store_sku_day', 'fact_sku_day')


def upgrade() -> None:
    with op.batch_alter_table('order_lines', schema=None) as batch_op:
        batch_op.add_column(sa.Column('unit_cost', sa.BigInteger(), server_default='0', nullable=False))
    for table in FACTS:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column('cost', sa.BigInteger(), server_default='0', nullable=False))
            batch_op.add_column(sa.Column('refunded_cost', sa.BigInteger(), server_default='0', nullable=False))
    cost = '(SELECT skus.cost_price FROM skus WHERE skus.id = {t}.sku_id)'
    op.execute(f"UPDATE order_lines SET unit_cost = COALESCE({cost.format(t='order_lines')}, 0)")
    for table in FACTS:
        unit = f'COALESCE({cost.format(t=table)}, 0)'
        op.execute(f'UPDATE {table} SET cost = quantity * {unit}, refunded_cost = refunded_quantity * {unit}')


def downgrade() -> None:
    for table in FACTS:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column('refunded_cost')
            batch_op.drop_column('cost')
    with op.batch_alter_table('order_lines', schema=None) as batch_op:
        batch_op.drop_column('unit_cost')
