"""disabled operators: cannot log in, their API tokens are refused; experiment ids never reused (issue 27 item 6)

SQLite gives the highest free id to a new row unless the table is AUTOINCREMENT: a deleted newest experiment's id
would name the next one, and its audit events (found by experiment_id) would seem to be the new one's. PostgreSQL's
sequences never reuse a value; there the experiments table is left as it is.

Revision ID: 33569eaa8c50
Revises: d2cabb9984b9
Create Date: 2026-12-07 23:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '33569eaa8c50'
down_revision = 'd2cabb9984b9'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('operators', schema=None) as batch_op:
        batch_op.add_column(sa.Column('disabled_at', sa.DateTime(), nullable=True))
    if op.get_bind().dialect.name == 'sqlite':
        with op.batch_alter_table('experiments', recreate='always',
                                  table_kwargs={'sqlite_autoincrement': True}) as batch_op:
            pass


def downgrade():
    with op.batch_alter_table('operators', schema=None) as batch_op:
        batch_op.drop_column('disabled_at')
