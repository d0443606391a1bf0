"""`flask --app dashboard ...` commands, one module per concern: operators and their API tokens, plants
(import, connectivity), plant enrolment and re-keying, the federation CA."""

from __future__ import annotations


def register(app) -> None:
    from dashboard.cli import enrolment, federation_ca, operators, plants

    operators.register(app)
    factories = plants.register(app)
    enrolment.register(factories)
    federation_ca.register(app)  # flask --app dashboard federation-ca show | sign
