"""`flask --app dashboard ...` commands."""

from __future__ import annotations

import click

from dashboard.extensions import db


def register(app) -> None:
    @app.cli.command("create-operator")
    @click.argument("email")
    @click.password_option()
    def create_operator(email: str, password: str) -> None:
        """Create a dashboard operator account."""
        from dashboard.bootstrap import ensure_operator

        ensure_operator(email, password)
        db.session.commit()
        click.echo(f"operator {email} ready")

    @app.cli.command("create-token")
    @click.argument("email")
    @click.option("--name", default="cli", help="a label for the token")
    def create_token(email: str, name: str) -> None:
        """Issue an API token for an operator (shown once)."""
        from dashboard.models import ApiToken, Operator

        operator = db.session.scalar(db.select(Operator).filter_by(email=email))
        if operator is None:
            raise click.ClickException(f"no operator {email}; create it with create-operator")
        row, token = ApiToken.issue(operator, name)
        db.session.add(row)
        db.session.commit()
        click.echo(token)
