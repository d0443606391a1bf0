"""deployments per plant (issue 27 item 1, decision 0022): what each plant should score with is its newest
deployment row (deploy, roll back, pin, unpin, with who, when and the release before), not a release's "active"
flag; every plant of an active release is deployed it, then the flag goes

Revision ID: d2cabb9984b9
Revises: 55091bdfd21a
Create Date: 2026-12-07 23:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'd2cabb9984b9'
down_revision = '55091bdfd21a'
branch_labels = None
depends_on = None


def upgrade():
    deployments = op.create_table('deployments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('factory_name', sa.String(length=120), nullable=False),
    sa.Column('release_id', sa.Integer(), nullable=False),
    sa.Column('previous_release_id', sa.Integer(), nullable=True),
    sa.Column('pinned', sa.Boolean(), nullable=False),
    sa.Column('action', sa.String(length=16), nullable=False),
    sa.Column('actor', sa.String(length=255), nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['previous_release_id'], ['releases.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['release_id'], ['releases.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('deployments', schema=None) as batch_op:
        batch_op.create_index('ix_deployments_plant', ['factory_name', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_deployments_release_id'), ['release_id'], unique=False)

    # what the heartbeats answered before: each plant gets the newest activated active release that lists it
    releases = sa.table('releases', sa.column('id', sa.Integer()), sa.column('plants', sa.JSON()),
                        sa.column('active', sa.Boolean()), sa.column('activated_at', sa.DateTime()),
                        sa.column('activated_by', sa.String()))
    bind = op.get_bind()
    active = bind.execute(sa.select(releases.c.id, releases.c.plants, releases.c.activated_at,
                                    releases.c.activated_by).where(releases.c.active == sa.true())
                          .order_by(releases.c.activated_at.desc(), releases.c.id.desc())).fetchall()
    assigned = set()
    for release_id, plants, at, actor in active:
        for name in sorted(set(plants or []) - assigned):
            assigned.add(name)
            bind.execute(deployments.insert().values(factory_name=name, release_id=release_id, pinned=False,
                                                     action='deploy', actor=actor, at=at))

    with op.batch_alter_table('releases', schema=None) as batch_op:
        batch_op.drop_index('ix_releases_active')
        batch_op.drop_column('activated_by')
        batch_op.drop_column('activated_at')
        batch_op.drop_column('active')


def downgrade():
    with op.batch_alter_table('releases', schema=None) as batch_op:
        batch_op.add_column(sa.Column('active', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column('activated_at', sa.DateTime(), nullable=False,
                                      server_default=sa.text('CURRENT_TIMESTAMP')))
        batch_op.add_column(sa.Column('activated_by', sa.String(length=255), nullable=False, server_default=''))
        batch_op.create_index('ix_releases_active', ['active', 'activated_at'], unique=False)
    # the releases some plant is assigned become active again (one flag per release: the nearest there is)
    releases = sa.table('releases', sa.column('id', sa.Integer()), sa.column('active', sa.Boolean()))
    deployments = sa.table('deployments', sa.column('id', sa.Integer()), sa.column('factory_name', sa.String()),
                           sa.column('release_id', sa.Integer()))
    newest = sa.select(sa.func.max(deployments.c.id)).group_by(deployments.c.factory_name)
    assigned = sa.select(deployments.c.release_id).where(deployments.c.id.in_(newest))
    op.execute(releases.update().where(releases.c.id.in_(assigned)).values(active=True))
    with op.batch_alter_table('deployments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_deployments_release_id'))
        batch_op.drop_index('ix_deployments_plant')
    op.drop_table('deployments')
