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

    factories = click.Group("factories", help="Plants: import configured datasites, check connectivity.")
    app.cli.add_command(factories)

    @factories.command("import")
    @click.argument("path", type=click.Path(dir_okay=False))
    def import_factories(path: str) -> None:
        """Import the external datasites listed in a YAML file."""
        from dashboard.configured_plants import import_plants, load_plants
        from shared.errors import ConfigurationError

        try:
            names = import_plants(load_plants(path))
        except ConfigurationError as exc:
            raise click.ClickException(str(exc)) from exc
        click.echo(f"imported {len(names)} plant(s): {', '.join(names)}")

    @factories.command("check")
    @click.argument("names", nargs=-1)
    def check_factories(names: tuple[str, ...]) -> None:
        """Log into each plant's datasite as the orchestrator: reachable / auth failed / unreachable."""
        from dashboard.models import Factory
        from dashboard.orchestration.syft_clients import check_login
        from dashboard.security import decrypt

        query = db.select(Factory).order_by(Factory.name)
        if names:
            query = query.where(Factory.name.in_(names))
        plants = db.session.scalars(query).all()
        if not plants:
            raise click.ClickException("no plant to check: none registered or imported (or no such name)")
        failures = 0
        for plant in plants:
            outcome, why = check_login(plant.hostname, plant.port, plant.orchestrator_email,
                                       decrypt(plant.orchestrator_password_enc))
            failures += outcome != "reachable"
            click.echo(f"{plant.name}: {outcome} - {why}")
        if failures:
            raise SystemExit(1)
