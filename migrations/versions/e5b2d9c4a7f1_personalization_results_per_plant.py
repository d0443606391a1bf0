"""each plant's personalization result per experiment: the global, personalized and local-only models' scores on
its own validation split (issue #15 item 4)

Revision ID: e5b2d9c4a7f1
Revises: c3e8f5a1d2b9
Create Date: 2026-11-24 00:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'e5b2d9c4a7f1'
down_revision = 'c3e8f5a1d2b9'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('personal_results',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('experiment_id', sa.Integer(), nullable=False),
    sa.Column('factory_name', sa.String(length=120), nullable=False),
    sa.Column('mode', sa.String(length=16), nullable=False),
    sa.Column('round_number', sa.Integer(), nullable=False),
    sa.Column('scores', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['experiment_id'], ['experiments.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('experiment_id', 'factory_name')
    )
    with op.batch_alter_table('personal_results', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_personal_results_experiment_id'), ['experiment_id'], unique=False)


def downgrade():
    with op.batch_alter_table('personal_results', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_personal_results_experiment_id'))
    op.drop_table('personal_results')
