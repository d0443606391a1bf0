"""`flask --app dashboard federation-ca show | sign`: the CA's certificate (for anyone who verifies a datasite
outside the dashboard), and a certificate for a datasite that does not enrol through an agent (a configured
plant that serves TLS itself or behind its own proxy)."""

from __future__ import annotations

from datetime import timedelta

import click
from flask import current_app
from flask.cli import AppGroup

from dashboard.registry.federation_ca import FederationCAUnavailable, federation_ca
from dashboard.registry.certificates import fingerprint
from shared.errors import ValidationError


def register(app) -> None:
    group = AppGroup("federation-ca", help="The federation CA that signs the datasites' TLS certificates.")
    app.cli.add_command(group)

    @group.command("show")
    def show() -> None:
        """Print the CA's certificate (PEM); its SHA-256 fingerprint goes to stderr."""
        ca = federation_ca(current_app.config)
        click.echo(ca.certificate_pem, nl=False)
        click.echo(f"SHA-256 {fingerprint(ca.certificate)} ({ca.certificate_path})", err=True)

    @group.command("sign")
    @click.argument("plant")
    @click.argument("host")
    @click.argument("request", type=click.File("r"))
    def sign(plant: str, host: str, request) -> None:
        """Sign REQUEST (a PEM CSR) for PLANT at HOST; print the chain (its certificate, then the CA's)."""
        from dashboard.extensions import db
        from dashboard.models import record_audit

        validity = timedelta(days=float(current_app.config["DASHBOARD_CERT_VALIDITY_DAYS"]))
        try:
            issued = federation_ca(current_app.config).issue(request.read(), plant, host, validity)
        except (ValidationError, FederationCAUnavailable) as exc:
            raise click.ClickException(str(exc)) from exc
        record_audit("cli", "factory.certificate_issued", plant, hostname=host, serial=issued.serial,
                     not_after=issued.not_after.isoformat())
        db.session.commit()
        click.echo(issued.chain_pem, nl=False)
        click.echo(f"signed for {plant} at {host}, valid until {issued.not_after:%Y-%m-%d %H:%M} UTC", err=True)
