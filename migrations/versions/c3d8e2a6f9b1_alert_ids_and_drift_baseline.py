"""alerts operators can act on (issue 27, item 4): a plant's alerts ever opened, its newest alerts by id, and the
drift baseline its floor measured on its validation split

Revision ID: c3d8e2a6f9b1
Revises: a9c3e7f1b5d2
Create Date: 2026-12-07 23:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'c3d8e2a6f9b1'
down_revision = 'a9c3e7f1b5d2'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('factories', schema=None) as batch_op:
        batch_op.add_column(sa.Column('drift_baseline', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('alerts_opened', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('recent_alerts', sa.JSON(), nullable=True))


def downgrade():
    with op.batch_alter_table('factories', schema=None) as batch_op:
        batch_op.drop_column('recent_alerts')
        batch_op.drop_column('alerts_opened')
        batch_op.drop_column('drift_baseline')
