"""`flask --app dashboard factories enrol | approve-rekey`: plant identity (DESIGN §4), one-time enrolment
tokens and approving a plant's re-keying."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from dashboard.extensions import db


def register(factories: click.Group) -> None:
    @factories.command("enrol")
    @with_appcontext
    @click.argument("name")
    @click.option("--expires-hours", type=float, default=24.0, show_default=True, help="the token's lifetime")
    def enrol(name: str, expires_hours: float) -> None:
        """Make a one-time enrolment token for plant NAME (printed once; only its digest is kept)."""
        from dashboard.registry import enrolment
        from shared.errors import ValidationError

        try:
            row, token = enrolment.issue_enrolment_token(name, expires_hours, "cli")
        except ValidationError as exc:
            raise click.ClickException(str(exc)) from exc
        db.session.commit()
        click.echo(token)
        click.echo(f"one-time enrolment token for {name}, valid until {row.expires_at:%Y-%m-%d %H:%M} UTC: start "
                   "its agent with --enrollment-token TOKEN", err=True)

    @factories.command("approve-rekey")
    @with_appcontext
    @click.argument("name")
    @click.option("--id", "rekey_id", type=int, help="which request, when several wait (shown on the plant's page)")
    def approve_rekey(name: str, rekey_id: int | None) -> None:
        """Approve plant NAME's waiting re-keying: its next registration signed by the new key is accepted."""
        from dashboard.registry import enrolment
        from shared.errors import ConfigurationError

        try:
            rekey = enrolment.approve_rekey(name, "cli", rekey_id)
        except ConfigurationError as exc:
            raise click.ClickException(str(exc)) from exc
        db.session.commit()
        click.echo(f"approved re-keying of {name}: {enrolment.describe_rekey(rekey)}")
