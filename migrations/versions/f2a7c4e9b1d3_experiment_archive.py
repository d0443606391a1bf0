"""archived experiments: hidden from the default list, kept with their rounds (issue 27 item 6)

Revision ID: f2a7c4e9b1d3
Revises: e5b2d9c4a7f1
Create Date: 2026-12-07 06:40:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'f2a7c4e9b1d3'
down_revision = 'e5b2d9c4a7f1'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('experiments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('archived_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('archived_by', sa.String(length=255), nullable=True))


def downgrade():
    with op.batch_alter_table('experiments', schema=None) as batch_op:
        batch_op.drop_column('archived_by')
        batch_op.drop_column('archived_at')
