"""`flask --app dashboard operators create | set-role | disable | enable | reset-password | list` and
`create-token`: operators (people), their roles (viewer, operator, admin) and their API tokens. The work is
dashboard.services.operators, which the Operators page and the API call too."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from dashboard.extensions import db


def register(app) -> None:
    from dashboard.models.operators import ROLES

    operators = AppGroup("operators", help="Operators (people) and their roles: viewer, operator, admin.")
    app.cli.add_command(operators)
    role_choice = click.Choice(ROLES)
    _account_commands(operators, role_choice)
    _compatible_create_command(app, role_choice)
    _token_command(app)


def _create(email: str, password: str, role: str, exist_ok: bool = False) -> None:
    from dashboard.lifecycle.bootstrap import ensure_operator
    from dashboard.models import Operator

    if not exist_ok and db.session.scalar(db.select(Operator).filter_by(email=email)) is not None:
        raise click.ClickException(f"operator {email} exists; change its role with: "
                                   f"operators set-role {email} ROLE")
    ensure_operator(email, password, role=role, actor="cli")
    db.session.commit()
    click.echo(f"operator {email} ready ({role})")


def _account_commands(operators: click.Group, role_choice: click.Choice) -> None:
    @operators.command("create")
    @click.argument("email")
    @click.option("--role", type=role_choice, default="viewer", show_default=True,
                  help="viewer: read; operator: also run experiments; admin: also plants, tokens, operators")
    @click.password_option()
    def create_operator(email: str, role: str, password: str) -> None:
        """Create an operator account with a role."""
        from dashboard.services.operators import create_operator as create
        from shared.errors import ValidationError

        try:
            create(email, role, password, "cli")
        except ValidationError as exc:
            raise click.ClickException("; ".join(f"{f}: {m}" for f, m in exc.problems)) from exc
        click.echo(f"operator {email} ready ({role})")

    @operators.command("set-role")
    @click.argument("email")
    @click.argument("role", type=role_choice)
    def set_operator_role(email: str, role: str) -> None:
        """Change an operator's role (its API tokens act with the new role at once)."""
        from dashboard.models import Operator
        from dashboard.services.operators import RoleChangeRefused, set_role

        operator = db.session.scalar(db.select(Operator).filter_by(email=email))
        if operator is None:
            raise click.ClickException(f"no operator {email}; create it with: operators create {email} --role {role}")
        try:
            set_role(operator, role, "cli")
        except RoleChangeRefused as exc:
            raise click.ClickException(str(exc)) from exc
        click.echo(f"operator {email} is {role}")

    _state_commands(operators)

    @operators.command("list")
    def list_operators() -> None:
        """Every operator, its role, and whether it is disabled."""
        from dashboard.services.operators import all_operators

        for operator in all_operators():
            click.echo(f"{operator.email}\t{operator.role}" + ("\tdisabled" if operator.disabled else ""))


def _named(email: str):
    from dashboard.models import Operator

    operator = db.session.scalar(db.select(Operator).filter_by(email=email))
    if operator is None:
        raise click.ClickException(f"no operator {email}; see: operators list")
    return operator


def _state_commands(operators: click.Group) -> None:
    from dashboard.services.operators import RoleChangeRefused, reset_password, set_disabled

    for name, disabled in (("disable", True), ("enable", False)):
        @operators.command(name, help=f"{name.capitalize()} an operator (a disabled one cannot log in and its "
                                      "API tokens are refused; the last enabled admin cannot be disabled).")
        @click.argument("email")
        def change(email: str, disabled: bool = disabled) -> None:
            try:
                set_disabled(_named(email), disabled, "cli")
            except RoleChangeRefused as exc:
                raise click.ClickException(str(exc)) from exc
            click.echo(f"operator {email} is {'disabled' if disabled else 'enabled'}")

    @operators.command("reset-password")
    @click.argument("email")
    def reset(email: str) -> None:
        """Give an operator a new generated password (printed once; nothing else changes)."""
        click.echo(reset_password(_named(email), "cli"))


def _compatible_create_command(app, role_choice: click.Choice) -> None:
    @app.cli.command("create-operator", hidden=True)
    @click.argument("email")
    @click.option("--role", type=role_choice, default="admin", show_default=True)
    @click.password_option()
    def create_operator_compat(email: str, role: str, password: str) -> None:
        """Create an operator (kept for older scripts: an admin unless --role says otherwise)."""
        _create(email, password, role, exist_ok=True)


def _token_command(app) -> None:
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
