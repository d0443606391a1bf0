"""Plants configured in a YAML file (seed 000): external datasites the dashboard should know about,
with the orchestrator's password read from an environment variable, never from the file.

    factories:
      - name: plant_remote
        host: 10.0.0.5
        port: 8080
        orchestrator_email: orchestrator@factoryfl.org
        orchestrator_password_env: PLANT_REMOTE_PASSWORD
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import yaml
from flask import current_app

from dashboard.extensions import db
from dashboard.models import Factory, record_audit
from dashboard.models.operators import token_digest
from dashboard.registry.addresses import AddressRefused, check_plant_host
from dashboard.auth.security import encrypt
from shared.enums import FactoryStatus
from shared.errors import ConfigurationError

REQUIRED = ("name", "host", "port", "orchestrator_email", "orchestrator_password_env")


@dataclass(frozen=True)
class ConfiguredPlant:
    name: str
    host: str
    port: int
    orchestrator_email: str
    orchestrator_password_env: str

    @property
    def password(self) -> str:
        value = os.environ.get(self.orchestrator_password_env)
        if not value:
            raise ConfigurationError(f"plant {self.name}: environment variable {self.orchestrator_password_env} "
                                     "(its orchestrator password) is not set")
        return value


def load_plants(path: str | Path) -> list[ConfiguredPlant]:
    path = Path(path)
    try:
        document = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ConfigurationError(f"cannot read {str(path)!r}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ConfigurationError(f"{str(path)!r} is not valid YAML: {exc}") from exc
    entries = (document or {}).get("factories") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise ConfigurationError(f"{str(path)!r} needs a top-level 'factories:' list")
    plants, seen = [], set()
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise ConfigurationError(f"factories[{i}] must be a mapping with {', '.join(REQUIRED)}")
        missing = [k for k in REQUIRED if entry.get(k) in (None, "")]
        if missing:
            raise ConfigurationError(f"factories[{i}] ({entry.get('name', '?')}) lacks {', '.join(missing)}")
        if "orchestrator_password" in entry:
            raise ConfigurationError(f"factories[{i}] ({entry['name']}): put the password in an environment "
                                     "variable and name it in orchestrator_password_env, not in the file")
        port = entry["port"]
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            raise ConfigurationError(f"factories[{i}] ({entry['name']}): port must be 1-65535, got {port!r}")
        if entry["name"] in seen:
            raise ConfigurationError(f"factories[{i}]: the name {entry['name']!r} appears twice")
        seen.add(entry["name"])
        plants.append(ConfiguredPlant(str(entry["name"]), str(entry["host"]), port, str(entry["orchestrator_email"]),
                                      str(entry["orchestrator_password_env"])))
    return plants


def import_plants(plants: list[ConfiguredPlant], actor: str = "config") -> list[str]:
    """Create or update the plants' records (credentials encrypted); they stay offline until they
    register and heartbeat through their agent, or a check finds them reachable."""
    names = []
    for plant in plants:
        try:  # the same address rules as a registering plant: a file is no way around them
            check_plant_host(plant.host, current_app.config["ALLOW_PRIVATE_PLANTS"])
        except AddressRefused as exc:
            raise ConfigurationError(f"plant {plant.name}: host {plant.host!r}: {exc}") from None
        factory = db.session.scalar(db.select(Factory).filter_by(name=plant.name))
        if factory is None:
            factory = Factory(name=plant.name, status=FactoryStatus.OFFLINE.value, capabilities={"source": "configured"},
                              heartbeat_token_hash=token_digest(secrets.token_urlsafe(32)))
            db.session.add(factory)
        factory.hostname, factory.port = plant.host, plant.port
        factory.orchestrator_email = plant.orchestrator_email
        factory.orchestrator_password_enc = encrypt(plant.password)
        record_audit(actor, "factory.configured", plant.name, host=plant.host, port=plant.port)
        names.append(plant.name)
    db.session.commit()
    return names
