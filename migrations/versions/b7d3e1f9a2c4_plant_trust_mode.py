"""each plant's trust mode as it registers it (issue 24, item 5): whether its policy trusts the dashboard, and the
fingerprint of the federation key it pinned; null for plants registered before (unknown: not trusting)

Revision ID: b7d3e1f9a2c4
Revises: f4a7c2e9b1d3
Create Date: 2026-12-07 13:30:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'b7d3e1f9a2c4'
down_revision = 'f4a7c2e9b1d3'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('factories', schema=None) as batch_op:
        batch_op.add_column(sa.Column('trust_dashboard', sa.Boolean(), nullable=True))
        batch_op.add_column(sa.Column('federation_key', sa.String(length=16), nullable=True))


def downgrade():
    with op.batch_alter_table('factories', schema=None) as batch_op:
        batch_op.drop_column('federation_key')
        batch_op.drop_column('trust_dashboard')
