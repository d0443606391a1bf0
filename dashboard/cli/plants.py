"""`flask --app dashboard factories import | check | decommission`: plants configured by file, whether the
dashboard can log into each plant's datasite, and retiring a plant (dashboard.registry.service)."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from dashboard.extensions import db


def register(app) -> click.Group:
    """The `factories` group (dashboard.cli.enrolment adds its commands to it)."""
    factories = AppGroup("factories", help="Plants: import configured datasites, check connectivity.")
    app.cli.add_command(factories)

    @factories.command("import")
    @click.argument("path", type=click.Path(dir_okay=False))
    def import_factories(path: str) -> None:
        """Import the external datasites listed in a YAML file."""
        from dashboard.registry.configured_plants import import_plants, load_plants
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
        _check(names)

    @factories.command("decommission")
    @click.argument("name")
    def decommission_factory(name: str) -> None:
        """Retire a plant: it leaves future cohorts, its heartbeat token is revoked; only a fresh one-time enrolment
        token brings it back."""
        from dashboard.registry import lifecycle
        from shared.errors import FederatedLearningError

        try:
            lifecycle.decommission(name, actor="cli")
        except (lifecycle.UnknownPlant, FederatedLearningError) as exc:
            raise click.ClickException(str(exc)) from exc
        click.echo(f"decommissioned {name}")

    return factories


def _check(names: tuple[str, ...]) -> None:
    from flask import current_app

    from dashboard.models import Factory
    from dashboard.orchestration.syft_clients import check_login, transport_of
    from dashboard.registry.addresses import AddressRefused, check_plant_host, check_plant_port
    from dashboard.auth.security import decrypt

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
