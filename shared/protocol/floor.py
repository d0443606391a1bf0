"""The heartbeat's floor report (DESIGN §10): `FloorReport` with its `ReportedModel` and `ReportedAlert`, one
definition for both sides (shared.protocol.registry's heartbeat carries it; its fields sit in the heartbeat itself).
Every field is validated as hostile, once, and a ValidationError names it (a 400)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from shared.errors import ValidationError
from shared.protocol.registry_fields import count

MAX_DB_ID = 2 ** 31 - 1  # factories.released_model_id is a 32-bit integer column (Postgres: larger is a 500)
MAX_SCORED_ROWS = 10 ** 15
MAX_ALERTS = 10 ** 9
MAX_DRIFT = 10 ** 6
SHA256_HEX = re.compile(r"[0-9a-f]{64}")
MODEL_KINDS = ("global", "personalized")  # personalized: the learning-quality issue's per-plant model
FLOOR_FIELDS = ("released_model", "scored_rows", "alerts_open", "drift", "drift_baseline", "alerts_opened", "alerts")
MAX_REPORTED_ALERTS = 20  # the newest alerts a heartbeat lists (more are cut, not refused)
MAX_ALERT_MACHINE = 64  # an alert's machine id is cut to this many characters
MAX_EPOCH = 10 ** 11  # seconds since 1970: an alert time beyond this (year 5138) is not a time


@dataclass(frozen=True)
class ReportedModel:
    id: int
    sha256: str
    kind: str = "global"

    def to_wire(self) -> dict:
        return {"id": self.id, "sha256": self.sha256, "kind": self.kind}

    @classmethod
    def from_wire(cls, value) -> "ReportedModel | None":
        if value is None:
            return None
        if not isinstance(value, dict) or set(value) - {"id", "sha256", "kind"}:
            raise ValidationError("released_model", "must be an object with id, sha256 and kind")
        model_id, digest, kind = value.get("id"), value.get("sha256"), value.get("kind", "global")
        if isinstance(model_id, bool) or not isinstance(model_id, int) or not 0 < model_id <= MAX_DB_ID:
            raise ValidationError("released_model.id", f"must be a release id (a positive whole number), got "
                                                       f"{str(model_id)[:40]!r}")
        if not isinstance(digest, str) or not SHA256_HEX.fullmatch(digest):
            raise ValidationError("released_model.sha256", "must be a SHA-256 digest as 64 lowercase hex characters")
        if kind not in MODEL_KINDS:
            raise ValidationError("released_model.kind", f"must be one of {', '.join(MODEL_KINDS)}, got "
                                                         f"{str(kind)[:40]!r}")
        return cls(model_id, digest, kind)


@dataclass(frozen=True)
class ReportedAlert:
    """One alert as a heartbeat reports it (DESIGN §10): its id at the plant, epoch-second times, the release that
    raised it; its machine and peak probability only when the plant's policy shares them (share_alert_details),
    else None: the detail stays at the plant (its loopback GET /alerts/<id>)."""

    id: int
    opened_at: float
    cleared_at: float | None
    model_id: int | None
    machine: str | None = None
    peak: float | None = None

    def to_wire(self) -> dict:
        wire = {"id": self.id, "opened_at": self.opened_at, "cleared_at": self.cleared_at, "model_id": self.model_id}
        if self.machine is not None or self.peak is not None:
            wire |= {"machine": self.machine, "peak": self.peak}
        return wire

    @classmethod
    def from_wire(cls, value, where: str) -> "ReportedAlert":
        if not isinstance(value, dict) or set(value) - {"id", "opened_at", "cleared_at", "model_id", "machine",
                                                        "peak"}:
            raise ValidationError(where, "must be an object with id, opened_at, cleared_at, model_id "
                                         "[, machine, peak]")
        alert_id, model_id = value.get("id"), value.get("model_id")
        if isinstance(alert_id, bool) or not isinstance(alert_id, int) or not 0 < alert_id <= MAX_DB_ID * 1024:
            raise ValidationError(where + ".id", f"must be a positive whole number, got {str(alert_id)[:40]!r}")
        if model_id is not None and (isinstance(model_id, bool) or not isinstance(model_id, int)
                                     or not 0 < model_id <= MAX_DB_ID):
            raise ValidationError(where + ".model_id", "must be a release id or null")
        machine = value.get("machine")
        if machine is not None and not isinstance(machine, str):
            raise ValidationError(where + ".machine", "must be text or null")
        opened_at = _number(value.get("opened_at"), where + ".opened_at", MAX_EPOCH)
        if opened_at is None:
            raise ValidationError(where + ".opened_at", "is required")
        return cls(alert_id, opened_at, _number(value.get("cleared_at"), where + ".cleared_at", MAX_EPOCH), model_id,
                   None if machine is None else _clip("".join(c for c in machine if c.isprintable()),
                                                      MAX_ALERT_MACHINE),
                   _number(value.get("peak"), where + ".peak", 1))


@dataclass(frozen=True)
class FloorReport:
    """What a plant reports from its floor (DESIGN §10): counts, a drift score and its baseline, and its newest
    alerts by id (never rows); None where the plant did not say. On the wire its fields sit in the heartbeat."""

    released_model: ReportedModel | None
    scored_rows: int | None
    alerts_open: int | None
    drift: float | None
    drift_baseline: float | None = None  # the drift score of the plant's validation split (the normal reading)
    alerts_opened: int | None = None  # alerts ever opened at the plant: counts those opened and cleared unseen
    alerts: tuple[ReportedAlert, ...] | None = None  # the newest MAX_REPORTED_ALERTS, newest first

    def to_wire(self) -> dict:
        return {"released_model": self.released_model.to_wire() if self.released_model else None,
                "scored_rows": self.scored_rows, "alerts_open": self.alerts_open, "drift": self.drift,
                "drift_baseline": self.drift_baseline, "alerts_opened": self.alerts_opened,
                "alerts": None if self.alerts is None else [a.to_wire() for a in self.alerts]}

    @classmethod
    def from_wire(cls, body: dict) -> "FloorReport | None":
        """The floor fields of a heartbeat, or None when it carries none of them (an agent without a model)."""
        if all(body.get(key) is None for key in FLOOR_FIELDS):
            return None
        drift, baseline = _drift(body, "drift"), _drift(body, "drift_baseline")
        alerts = body.get("alerts")
        if alerts is not None and not isinstance(alerts, list):
            raise ValidationError("alerts", "must be a list of alerts or null")
        return cls(released_model=ReportedModel.from_wire(body.get("released_model")),
                   scored_rows=count(body, "scored_rows", MAX_SCORED_ROWS),
                   alerts_open=count(body, "alerts_open", MAX_ALERTS), drift=drift, drift_baseline=baseline,
                   alerts_opened=count(body, "alerts_opened", MAX_ALERTS),
                   alerts=None if alerts is None else tuple(ReportedAlert.from_wire(a, f"alerts[{i}]")
                                                            for i, a in enumerate(alerts[:MAX_REPORTED_ALERTS])))


def _drift(body: dict, key: str) -> float | None:
    value = _number(body.get(key), key, MAX_DRIFT)
    return None if value is None else round(value, 6)


def _number(value, where: str, limit: float) -> float | None:
    """A finite number in [0, limit], or None."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or not 0 <= value <= limit:
        raise ValidationError(where, f"must be a finite number between 0 and {limit}, got {str(value)[:40]!r}")
    return float(value)


def _clip(value: str, limit: int) -> str:
    return value if len(value) <= limit else value[:limit - 1] + "…"
