"""refund details: points given back, coupon returned

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-29 18:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0012'
down_revision: str | None = '0011'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('refunds', schema=None) as batch_op:
        batch_op.add_column(sa.Column('points_given_back', sa.BigInteger(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('coupon_returned', sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('refunds', schema=None) as batch_op:
        batch_op.drop_column('coupon_returned')
        batch_op.drop_column('points_given_back')
