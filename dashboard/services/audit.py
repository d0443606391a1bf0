"""The audit log as operators read it (issue 27 item 7): filters (who, action, plant, experiment, time range),
pages, details as "key: value" with rounded numbers, and consecutive logins of one operator folded into one row.
The page (dashboard.ui.audit) and GET /api/audit (dashboard.api.audit) both call `search`.

The filters come from a URL: `AuditQuery.from_args` validates them once, naming the bad one (ValidationError,
HTTP 400); text filters are matched literally (LIKE wildcards escaped), never as patterns.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from datetime import datetime, timezone

from sqlalchemy import and_, func, or_

from dashboard.extensions import db
from dashboard.models import AuditEvent, Experiment
from dashboard.models.base import isoformat
from shared.errors import ValidationError

PER_PAGE, MAX_PER_PAGE, MAX_PAGE = 50, 200, 1_000_000
MAX_TEXT = 200
EXPERIMENT_ACTIONS = ("experiment.", "privacy.", "model.")  # the events whose target is an experiment's name
LOGIN = "operator.login"


@dataclass(frozen=True)
class AuditQuery:
    """Which events, and which page of them (newest first)."""

    actor: str | None = None  # part of who did it (an operator's e-mail, "scheduler", "factory:<plant>")
    action: str | None = None  # an action ("experiment.cancel"), or a family without a dot ("experiment")
    plant: str | None = None  # events about this plant, or by it
    experiment: int | None = None  # events about this experiment
    since: datetime | None = None  # naive UTC, inclusive
    until: datetime | None = None  # naive UTC, exclusive
    page: int = 1
    per_page: int = PER_PAGE

    @classmethod
    def from_args(cls, args) -> AuditQuery:
        """From a request's query string; blank fields are no filter."""
        text = {name: _text(args, name) for name in ("actor", "action", "plant")}
        query = cls(**text, experiment=_whole(args, "experiment", 1, 2 ** 63 - 1, None),
                    since=_time(args, "since"), until=_time(args, "until"),
                    page=_whole(args, "page", 1, MAX_PAGE, 1), per_page=_whole(args, "per_page", 1, MAX_PER_PAGE,
                                                                               PER_PAGE))
        if query.since and query.until and query.since >= query.until:
            raise ValidationError("until", "must be later than since")
        return query

    def filters(self) -> dict:
        """The filters set, as query-string values (for paging links and the JSON answer)."""
        values = asdict(self)
        values.pop("page")
        if values["per_page"] == PER_PAGE:
            values.pop("per_page")
        for name in ("since", "until"):
            values[name] = values[name].strftime("%Y-%m-%dT%H:%M") if values[name] else None
        return {k: v for k, v in values.items() if v is not None}


def _raw(args, name: str) -> str | None:
    value = args.get(name)
    return value.strip() if isinstance(value, str) and value.strip() else None


def _text(args, name: str) -> str | None:
    value = _raw(args, name)
    if value is not None and len(value) > MAX_TEXT:
        raise ValidationError(name, f"at most {MAX_TEXT} characters, got {len(value)}")
    return value


def _whole(args, name: str, low: int, high: int, default: int | None) -> int | None:
    value = _raw(args, name)
    if value is None:
        return default
    if not value.isdigit() or not low <= int(value) <= high:
        raise ValidationError(name, f"must be a whole number from {low} to {high}, got {value[:20]!r}")
    return int(value)


def _time(args, name: str) -> datetime | None:
    """A date or date and time (ISO 8601, as <input type=datetime-local> sends it); UTC unless it names a zone."""
    value = _raw(args, name)
    if value is None:
        return None
    try:
        when = datetime.fromisoformat(value[:40].replace("Z", "+00:00"))
    except ValueError:
        raise ValidationError(name, f"must be a date or date and time like 2026-12-07T06:30, got {value[:40]!r}")
    return when.astimezone(timezone.utc).replace(tzinfo=None) if when.tzinfo else when


def _conditions(query: AuditQuery) -> list:
    where = []
    if query.actor:
        where.append(AuditEvent.actor.contains(query.actor, autoescape=True))
    if query.action:
        where.append(AuditEvent.action == query.action if "." in query.action
                     else AuditEvent.action.startswith(query.action + ".", autoescape=True))
    if query.plant:
        where.append(or_(AuditEvent.target == query.plant, AuditEvent.actor == f"factory:{query.plant}"))
    if query.experiment is not None:
        name = db.session.scalar(db.select(Experiment.name).filter_by(id=query.experiment))
        about = AuditEvent.detail["experiment_id"].as_integer() == query.experiment
        by_name = and_(AuditEvent.target == name, or_(*(AuditEvent.action.startswith(p) for p in EXPERIMENT_ACTIONS)))
        where.append(or_(about, by_name) if name is not None else about)
    if query.since:
        where.append(AuditEvent.at >= query.since)
    if query.until:
        where.append(AuditEvent.at < query.until)
    return where


@dataclass(frozen=True)
class AuditPage:
    events: list[AuditEvent]
    total: int
    page: int
    pages: int


def search(query: AuditQuery) -> AuditPage:
    """One page of the events the filters select, newest first, and how many there are in all."""
    where = _conditions(query)
    total = db.session.scalar(db.select(func.count()).select_from(AuditEvent).where(*where))
    events = db.session.scalars(db.select(AuditEvent).where(*where).order_by(AuditEvent.id.desc())
                                .offset((query.page - 1) * query.per_page).limit(query.per_page)).all()
    return AuditPage(list(events), total, query.page, max(1, math.ceil(total / query.per_page)))


def readable(value) -> str:
    """A detail value as an operator reads it: numbers rounded (4 significant digits), lists joined, nested
    mappings as "key: value; …", long text cut."""
    if isinstance(value, bool) or value is None:
        return {True: "yes", False: "no", None: "–"}[value]
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, dict):
        return "; ".join(f"{k}: {readable(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ", ".join(readable(v) for v in value)
    text = str(value)
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT] + "…"


def detail_lines(detail: dict | None) -> list[tuple[str, str]]:
    """An event's detail as (key, value) pairs to show as "key: value"."""
    return [(str(k).replace("_", " "), readable(v)) for k, v in (detail or {}).items()]


@dataclass(frozen=True)
class AuditRow:
    """One line of the page: an event, or `count` consecutive logins of one operator (`at` the latest, `first`
    the earliest)."""

    at: datetime
    first: datetime
    actor: str
    action: str
    target: str | None
    detail: list[tuple[str, str]]
    count: int = 1

    def to_dict(self) -> dict:
        return {"at": isoformat(self.at), "first": isoformat(self.first), "actor": self.actor,
                "action": self.action, "target": self.target, "detail": dict(self.detail), "count": self.count}


def fold_logins(events: list[AuditEvent]) -> list[AuditRow]:
    """The events (newest first) as rows, consecutive logins of one operator folded into one row with a count."""
    rows: list[AuditRow] = []
    for ev in events:
        last = rows[-1] if rows else None
        if ev.action == LOGIN and last and last.action == LOGIN and last.actor == ev.actor:
            rows[-1] = AuditRow(last.at, ev.at, last.actor, LOGIN, last.target, last.detail, last.count + 1)
        else:
            rows.append(AuditRow(ev.at, ev.at, ev.actor, ev.action, ev.target, detail_lines(ev.detail)))
    return rows


def choices() -> dict[str, list[str]]:
    """The actions and actors recorded so far, for the filter form's suggestions."""
    actions = db.session.scalars(db.select(AuditEvent.action).distinct().order_by(AuditEvent.action)).all()
    actors = db.session.scalars(db.select(AuditEvent.actor).distinct().order_by(AuditEvent.actor).limit(200)).all()
    return {"actions": list(actions), "actors": list(actors)}
