"""membership the dashboard cannot forge (issue 24, item 1): each plant's certificate from the federation's
administrator, and the newest revocation list, both relayed as uploaded

Revision ID: f4a7c2e9b1d3
Revises: f2a7c4e9b1d3
Create Date: 2026-12-07 00:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'f4a7c2e9b1d3'
down_revision = 'f2a7c4e9b1d3'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('factories', schema=None) as batch_op:
        batch_op.add_column(sa.Column('membership_certificate', sa.JSON(), nullable=True))
    op.create_table('membership_revocations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('serial', sa.BigInteger(), nullable=False),
    sa.Column('document', sa.JSON(), nullable=False),
    sa.Column('uploaded_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )


def downgrade():
    op.drop_table('membership_revocations')
    with op.batch_alter_table('factories', schema=None) as batch_op:
        batch_op.drop_column('membership_certificate')
