"""`flask --app dashboard ...` commands."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from dashboard.extensions import db


def register(app) -> None:
    from dashboard import federation_ca
    from dashboard.models.operators import ROLES

    operators = AppGroup("operators", help="Operators (people) and their roles: viewer, operator, admin.")
    app.cli.add_command(operators)
    role_choice = click.Choice(ROLES)

    def _create(email: str, password: str, role: str, exist_ok: bool = False) -> None:
        from dashboard.bootstrap import ensure_operator
        from dashboard.models import Operator

        if not exist_ok and db.session.scalar(db.select(Operator).filter_by(email=email)) is not None:
            raise click.ClickException(f"operator {email} exists; change its role with: "
                                       f"operators set-role {email} ROLE")
        ensure_operator(email, password, role=role, actor="cli")
        db.session.commit()
        click.echo(f"operator {email} ready ({role})")

    @operators.command("create")
    @click.argument("email")
    @click.option("--role", type=role_choice, default="viewer", show_default=True,
                  help="viewer: read; operator: also run experiments; admin: also plants, tokens, operators")
    @click.password_option()
    def create_operator(email: str, role: str, password: str) -> None:
        """Create an operator account with a role."""
        _create(email, password, role)

    @operators.command("set-role")
    @click.argument("email")
    @click.argument("role", type=role_choice)
    def set_operator_role(email: str, role: str) -> None:
        """Change an operator's role (its API tokens act with the new role at once)."""
        from dashboard.models import Operator
        from dashboard.operators import RoleChangeRefused, set_role

        operator = db.session.scalar(db.select(Operator).filter_by(email=email))
        if operator is None:
            raise click.ClickException(f"no operator {email}; create it with: operators create {email} --role {role}")
        try:
            set_role(operator, role, "cli")
        except RoleChangeRefused as exc:
            raise click.ClickException(str(exc)) from exc
        click.echo(f"operator {email} is {role}")

    @operators.command("list")
    def list_operators() -> None:
        """Every operator and its role."""
        from dashboard.models import Operator

        for operator in db.session.scalars(db.select(Operator).order_by(Operator.email)):
            click.echo(f"{operator.email}\t{operator.role}")

    @app.cli.command("create-operator", hidden=True)
    @click.argument("email")
    @click.option("--role", type=role_choice, default="admin", show_default=True)
    @click.password_option()
    def create_operator_compat(email: str, role: str, password: str) -> None:
        """Create an operator (kept for older scripts: an admin unless --role says otherwise)."""
        _create(email, password, role, exist_ok=True)

    @app.cli.command("create-token")
    @click.argument("email")
    @click.option("--name", default="cli", help="a label for the token")
    def create_token(email: str, name: str) -> None:
        """Issue an API token for an operator (shown once)."""
        from dashboard.models import ApiToken, Operator

        operator = db.session.scalar(db.select(Operator).filter_by(email=email))
        if operator is None:
            raise click.ClickException(f"no operator {email}; create it with: operators create {email} --role ROLE")
        row, token = ApiToken.issue(operator, name)
        db.session.add(row)
        db.session.commit()
        click.echo(token)

    factories = AppGroup("factories", help="Plants: import configured datasites, check connectivity.")
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
        from flask import current_app

        from dashboard.models import Factory
        from dashboard.orchestration.syft_clients import check_login, transport_of
        from dashboard.plant_addresses import AddressRefused, check_plant_host, check_plant_port
        from dashboard.security import decrypt

        query = db.select(Factory).order_by(Factory.name)
        if names:
            query = query.where(Factory.name.in_(names))
        plants = db.session.scalars(query).all()
        if not plants:
            raise click.ClickException("no plant to check: none registered or imported (or no such name)")
        failures = 0
        for plant in plants:
            try:  # never a port scanner: the registration's address rules, checked again (DNS may have changed)
                check_plant_host(plant.hostname, current_app.config["ALLOW_PRIVATE_PLANTS"])
                check_plant_port(plant.port)
            except AddressRefused as exc:
                failures += 1
                click.echo(f"{plant.name}: refused - {exc}")
                continue
            outcome, why = check_login(plant.name, plant.hostname, plant.port, plant.orchestrator_email,
                                       decrypt(plant.orchestrator_password_enc), transport_of(plant))
            failures += outcome != "reachable"
            click.echo(f"{plant.name}: {outcome} - {why}")
        if failures:
            raise SystemExit(1)

    _identity_commands(factories)
    federation_ca.register_commands(app)  # flask --app dashboard federation-ca show | sign


def _identity_commands(factories: click.Group) -> None:
    """Plant identity (DESIGN §4): one-time enrolment tokens and approving a plant's re-keying."""
    from flask.cli import with_appcontext

    @factories.command("enrol")
    @with_appcontext
    @click.argument("name")
    @click.option("--expires-hours", type=float, default=24.0, show_default=True, help="the token's lifetime")
    def enrol(name: str, expires_hours: float) -> None:
        """Make a one-time enrolment token for plant NAME (printed once; only its digest is kept)."""
        from dashboard import identity
        from dashboard.experiment_config import ValidationError

        try:
            row, token = identity.issue_enrolment_token(name, expires_hours, "cli")
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
        from dashboard import identity
        from shared.errors import ConfigurationError

        try:
            rekey = identity.approve_rekey(name, "cli", rekey_id)
        except ConfigurationError as exc:
            raise click.ClickException(str(exc)) from exc
        db.session.commit()
        click.echo(f"approved re-keying of {name}: {identity.describe_rekey(rekey)}")
