"""exchanges at the counter (换货): the exchange record, the lines it sold, its report events

Revision ID: 0019_exchanges
Revises: 0018_care
Create Date: 2026-12-03 10:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import models.base


revision: str = "0019_exchanges"
down_revision: str | None = '0018_care'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "exchanges",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("order_id", BIG_ID, nullable=False),
        sa.Column("store_id", BIG_ID, nullable=False),
        sa.Column("staff_id", BIG_ID, nullable=True),
        sa.Column("returned", sa.JSON(), nullable=False),
        sa.Column("returned_value", sa.BigInteger(), nullable=False),
        sa.Column("sold_value", sa.BigInteger(), nullable=False),
        sa.Column("difference", sa.BigInteger(), nullable=False),
        sa.Column("paid_by_method", sa.JSON(), nullable=False),
        sa.Column("refund_id", BIG_ID, nullable=True),
        sa.Column("points_earned", sa.BigInteger(), nullable=False),
        sa.Column("points_taken_back", sa.BigInteger(), nullable=False),
        sa.Column("created_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"], name=op.f("fk_exchanges_order_id_orders")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_exchanges")),
    )
    with op.batch_alter_table("exchanges", schema=None) as batch_op:
        batch_op.create_index("ix_exchanges_order_id", ["order_id"], unique=False)
        batch_op.create_index("ix_exchanges_store_id_created_at", ["store_id", "created_at"], unique=False)
    with op.batch_alter_table("order_lines", schema=None) as batch_op:
        batch_op.add_column(sa.Column("exchange_id", BIG_ID, nullable=True))
    with op.batch_alter_table("fact_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("exchange_id", BIG_ID, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("fact_events", schema=None) as batch_op:
        batch_op.drop_column("exchange_id")
    with op.batch_alter_table("order_lines", schema=None) as batch_op:
        batch_op.drop_column("exchange_id")
    with op.batch_alter_table("exchanges", schema=None) as batch_op:
        batch_op.drop_index("ix_exchanges_store_id_created_at")
        batch_op.drop_index("ix_exchanges_order_id")
    op.drop_table("exchanges")
