"""operator roles (viewer, operator, admin)

Revision ID: 3f9a1c2b7d40
Revises: 67c6529ad21a
Create Date: 2026-11-24 10:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '3f9a1c2b7d40'
down_revision = '67c6529ad21a'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('operators', schema=None) as batch_op:
        batch_op.add_column(sa.Column('role', sa.String(length=16), server_default='viewer', nullable=False))
    # operators that exist before roles could do everything: they keep that (admin); new ones start as viewers
    op.execute("UPDATE operators SET role = 'admin'")


def downgrade():
    with op.batch_alter_table('operators', schema=None) as batch_op:
        batch_op.drop_column('role')
