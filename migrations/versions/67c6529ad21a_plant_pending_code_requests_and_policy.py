"""plant-reported pending code requests and the plant's policy

Revision ID: 67c6529ad21a
Revises: edbbfc26f574
Create Date: 2026-11-23 17:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '67c6529ad21a'
down_revision = 'edbbfc26f574'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('factories', schema=None) as batch_op:
        batch_op.add_column(sa.Column('pending_code_requests', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('policy', sa.JSON(), nullable=True))


def downgrade():
    with op.batch_alter_table('factories', schema=None) as batch_op:
        batch_op.drop_column('policy')
        batch_op.drop_column('pending_code_requests')
