"""plant lifecycle (issue 27 item 6): a plant's display name and site, and when and by whom it was decommissioned

Revision ID: 55091bdfd21a
Revises: c3d8e2a6f9b1
Create Date: 2026-12-07 23:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '55091bdfd21a'
down_revision = 'c3d8e2a6f9b1'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('factories', schema=None) as batch_op:
        batch_op.add_column(sa.Column('display_name', sa.String(length=80), nullable=True))
        batch_op.add_column(sa.Column('site', sa.String(length=120), nullable=True))
        batch_op.add_column(sa.Column('decommissioned_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('decommissioned_by', sa.String(length=255), nullable=True))


def downgrade():
    with op.batch_alter_table('factories', schema=None) as batch_op:
        batch_op.drop_column('decommissioned_by')
        batch_op.drop_column('decommissioned_at')
        batch_op.drop_column('site')
        batch_op.drop_column('display_name')
