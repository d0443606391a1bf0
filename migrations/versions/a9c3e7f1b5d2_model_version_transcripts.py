"""verified rounds (issue 24, item 2): each model version keeps the secure sum that made it, as its members signed
it, for plants that verify models to replay

Revision ID: a9c3e7f1b5d2
Revises: b7d3e1f9a2c4
Create Date: 2026-12-07 14:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'a9c3e7f1b5d2'
down_revision = 'b7d3e1f9a2c4'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('model_versions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('transcript', sa.LargeBinary(), nullable=True))


def downgrade():
    with op.batch_alter_table('model_versions', schema=None) as batch_op:
        batch_op.drop_column('transcript')
