"""released models (the registry) and what plants report from their floor: the model they score with,
scored rows, open alerts and a drift score (DESIGN §10)

Revision ID: c3e8f5a1d2b9
Revises: a41c7e9d2b63
Create Date: 2026-11-25 12:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'c3e8f5a1d2b9'
down_revision = 'a41c7e9d2b63'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('floor_samples',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('factory_id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.Column('scored_rows', sa.BigInteger(), nullable=True),
    sa.Column('alerts_open', sa.Integer(), nullable=True),
    sa.Column('drift', sa.Float(), nullable=True),
    sa.ForeignKeyConstraint(['factory_id'], ['factories.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('floor_samples', schema=None) as batch_op:
        batch_op.create_index('ix_floor_samples_factory_time', ['factory_id', 'at'], unique=False)

    op.create_table('releases',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('experiment_id', sa.Integer(), nullable=False),
    sa.Column('round_number', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('bundle', sa.LargeBinary(), nullable=True),
    sa.Column('metrics', sa.JSON(), nullable=False),
    sa.Column('threshold', sa.Float(), nullable=True),
    sa.Column('plants', sa.JSON(), nullable=False),
    sa.Column('released_by', sa.String(length=255), nullable=False),
    sa.Column('released_at', sa.DateTime(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('activated_at', sa.DateTime(), nullable=False),
    sa.Column('activated_by', sa.String(length=255), nullable=False),
    sa.ForeignKeyConstraint(['experiment_id'], ['experiments.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('releases', schema=None) as batch_op:
        batch_op.create_index('ix_releases_active', ['active', 'activated_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_releases_experiment_id'), ['experiment_id'], unique=False)

    with op.batch_alter_table('factories', schema=None) as batch_op:
        batch_op.add_column(sa.Column('released_model_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('released_model_sha256', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('released_model_kind', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('scored_rows', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('alerts_open', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('drift', sa.Float(), nullable=True))



def downgrade():
    with op.batch_alter_table('factories', schema=None) as batch_op:
        batch_op.drop_column('drift')
        batch_op.drop_column('alerts_open')
        batch_op.drop_column('scored_rows')
        batch_op.drop_column('released_model_kind')
        batch_op.drop_column('released_model_sha256')
        batch_op.drop_column('released_model_id')

    with op.batch_alter_table('releases', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_releases_experiment_id'))
        batch_op.drop_index('ix_releases_active')

    op.drop_table('releases')
    with op.batch_alter_table('floor_samples', schema=None) as batch_op:
        batch_op.drop_index('ix_floor_samples_factory_time')

    op.drop_table('floor_samples')
