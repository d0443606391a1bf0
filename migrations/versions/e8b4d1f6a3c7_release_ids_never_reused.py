"""release and deployment ids are never reused on SQLite (review of issue 27 item 6): deleting an experiment removes
its releases, and the next release must not take their ids, which the audit log and the plants' reports name

Revision ID: e8b4d1f6a3c7
Revises: 33569eaa8c50
Create Date: 2026-12-08 00:05:00.000000

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = 'e8b4d1f6a3c7'
down_revision = '33569eaa8c50'
branch_labels = None
depends_on = None


def upgrade():
    if op.get_bind().dialect.name == 'sqlite':  # PostgreSQL sequences never reuse an id
        for table in ('releases', 'deployments'):
            with op.batch_alter_table(table, recreate='always', table_kwargs={'sqlite_autoincrement': True}):
                pass


def downgrade():
    pass  # AUTOINCREMENT only stops reuse; a downgraded table keeps working without it
