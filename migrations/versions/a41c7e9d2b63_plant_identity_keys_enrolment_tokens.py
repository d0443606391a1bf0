"""plant identity keys, one-time enrolment tokens, pending re-keys, seen registration signatures

Revision ID: a41c7e9d2b63
Revises: 3f9a1c2b7d40
Create Date: 2026-11-24 12:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'a41c7e9d2b63'
down_revision = '3f9a1c2b7d40'
branch_labels = None
depends_on = None


def upgrade():
    # plants registered before this stay unbound (NULL): their next registration waits for an operator's approval
    with op.batch_alter_table('factories', schema=None) as batch_op:
        batch_op.add_column(sa.Column('identity_public_key', sa.String(length=64), nullable=True))

    op.create_table('enrolment_tokens',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('factory_name', sa.String(length=120), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('created_by', sa.String(length=255), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=False),
    sa.Column('used_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('token_hash')
    )
    with op.batch_alter_table('enrolment_tokens', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_enrolment_tokens_factory_name'), ['factory_name'], unique=False)

    op.create_table('factory_rekeys',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('factory_id', sa.Integer(), nullable=False),
    sa.Column('identity_public_key', sa.String(length=64), nullable=False),
    sa.Column('secagg_public_key', sa.String(length=128), nullable=True),
    sa.Column('hostname', sa.String(length=255), nullable=False),
    sa.Column('port', sa.Integer(), nullable=False),
    sa.Column('reason', sa.String(length=255), nullable=False),
    sa.Column('requested_at', sa.DateTime(), nullable=False),
    sa.Column('approved_at', sa.DateTime(), nullable=True),
    sa.Column('approved_by', sa.String(length=255), nullable=True),
    sa.ForeignKeyConstraint(['factory_id'], ['factories.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('factory_rekeys', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_factory_rekeys_factory_id'), ['factory_id'], unique=False)

    op.create_table('registration_signatures',
    sa.Column('signature_hash', sa.String(length=64), nullable=False),
    sa.Column('seen_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('signature_hash')
    )
    with op.batch_alter_table('registration_signatures', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_registration_signatures_seen_at'), ['seen_at'], unique=False)


def downgrade():
    with op.batch_alter_table('registration_signatures', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_registration_signatures_seen_at'))
    op.drop_table('registration_signatures')
    with op.batch_alter_table('factory_rekeys', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_factory_rekeys_factory_id'))
    op.drop_table('factory_rekeys')
    with op.batch_alter_table('enrolment_tokens', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_enrolment_tokens_factory_name'))
    op.drop_table('enrolment_tokens')
    with op.batch_alter_table('factories', schema=None) as batch_op:
        batch_op.drop_column('identity_public_key')
