"""What each plant should score with (issue 27 item 1, decision 0022): deployments of releases to plants.

- `preview` / `deploy`: a release to a chosen set of its plants (default: every plant that trained it). The
  preview says per plant its current release and validation F1, the new one's, and whether it switches: a
  plant that already runs the release does not, a pinned plant is held unless it was named;
- `rollback` / `rollback_all`: undo a plant's newest deploy not yet undone (for all: every plant not pinned);
- `pin` / `unpin`: hold a plant on its release, or let a default deploy switch it again.

Each change is one Deployment row per plant (who, when, the release before) and an audit event, committed
together; a plant's newest row is what its heartbeat answer names (dashboard.registry.floor.release_for). The
Models page's per-plant and per-release views are dashboard.services.deployment_views.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from dashboard.errors import NothingToRollBack, PlantNotFound
from dashboard.extensions import db
from dashboard.models import Deployment, Experiment, Factory, Release, Round, RoundResult, record_audit
from dashboard.registry.floor import forget_assignments
from shared.enums import ExperimentStatus, RoundStatus
from shared.errors import ValidationError
from shared.protocol.registry_fields import plant_name

log = logging.getLogger(__name__)
MAX_PLANTS = 1000  # names in one deploy request


@dataclass(frozen=True)
class Target:
    """What is deployed: a release, or (release_id None) the round an experiment is about to release."""

    release_id: int | None
    experiment_id: int
    round_number: int
    plants: tuple[str, ...]  # the plants that trained it: the only ones that may use it
    val_f1: float | None  # pooled, at release


def target_of(release: Release) -> Target:
    return Target(release.id, release.experiment_id, release.round_number, tuple(release.plants or ()),
                  (release.metrics or {}).get("val_f1"))


@dataclass(frozen=True)
class PlantChange:
    """One plant in a deploy: from what, to what, and whether it switches (`why` says why not)."""

    plant: str
    current: int | None  # the release it is assigned now
    current_val_f1: float | None  # that release's validation F1 at this plant
    new_val_f1: float | None  # the new one's at this plant
    pinned: bool
    switches: bool
    why: str

    def to_dict(self) -> dict:
        change = self.new_val_f1 - self.current_val_f1 if _number(self.new_val_f1) and \
            _number(self.current_val_f1) else None
        return {"plant": self.plant, "current_release_id": self.current, "current_val_f1": self.current_val_f1,
                "new_val_f1": self.new_val_f1, "change": change, "pinned": self.pinned, "switches": self.switches,
                "why": self.why}


@dataclass(frozen=True)
class DeployPreview:
    """What a deploy changes (or changed, once applied)."""

    target: Target
    plants: tuple[PlantChange, ...]

    @property
    def switching(self) -> list[str]:
        return [p.plant for p in self.plants if p.switches]

    def to_dict(self) -> dict:
        held = [p.plant for p in self.plants if not p.switches]
        return {"release_id": self.target.release_id, "experiment_id": self.target.experiment_id,
                "round": self.target.round_number, "val_f1": self.target.val_f1, "switching": self.switching,
                "held": held, "plants": [p.to_dict() for p in self.plants]}

    def lines(self) -> list[str]:
        """For the confirmation page, one line each."""
        lines = [f"round {self.target.round_number} of experiment #{self.target.experiment_id}, pooled validation "
                 f"F1 {_f1(self.target.val_f1)}"]
        for p in self.plants:
            now = f"model #{p.current} (validation F1 {_f1(p.current_val_f1)})" if p.current else "no model"
            change = p.to_dict()["change"]
            lines.append(f"{p.plant}: {now} → validation F1 {_f1(p.new_val_f1)}"
                         f"{f' (change {change:+.3f})' if change is not None else ''}: {p.why}")
        lines.append(f"plants that switch with their next heartbeat: {', '.join(self.switching) or 'none'}")
        return lines


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _f1(value) -> str:
    return f"{value:.3f}" if _number(value) else "–"


def chosen_plants(value, allowed: tuple[str, ...]) -> tuple[str, ...] | None:
    """The request's `plants` (None: the default), validated as hostile: a list of at most MAX_PLANTS plant
    names, each one that trained the model."""
    if value is None:
        return None
    if not isinstance(value, list):
        raise ValidationError("plants", f"must be a list of plant names, got {type(value).__name__}")
    if not value or len(value) > MAX_PLANTS:
        raise ValidationError("plants", f"must name 1 to {MAX_PLANTS} plants, got {len(value)}")
    names = tuple(dict.fromkeys(plant_name(v, "plants") for v in value))
    outsiders = [n for n in names if n not in allowed]
    if outsiders:
        raise ValidationError("plants", f"{', '.join(outsiders)[:200]} did not train this model: only the plants "
                                        f"of its rounds may use it ({', '.join(allowed) or 'none'})")
    return names


def refuse_unreleasable(experiment: Experiment) -> None:
    """A cancelled experiment, or one without a completed round, is not released."""
    if experiment.status == ExperimentStatus.CANCELLED.value:
        raise NothingToRollBack(f"experiment {experiment.id} was cancelled: its models are not released")
    if not any(r.status == RoundStatus.COMPLETED.value for r in experiment.rounds):
        raise NothingToRollBack(f"experiment {experiment.id} has no completed round: there is nothing to release")


def assignments() -> dict[str, Deployment]:
    """Each plant's newest deployment row: what it should run."""
    newest = db.select(db.func.max(Deployment.id)).group_by(Deployment.factory_name)
    return {d.factory_name: d for d in db.session.scalars(db.select(Deployment).where(Deployment.id.in_(newest)))}


def plant_val_f1(experiment_id: int, round_number: int) -> dict[str, float]:
    """Each plant's validation F1 of that round's model (its own validation split)."""
    rows = db.session.execute(db.select(RoundResult.factory_name, RoundResult.metrics).join(Round).where(
        Round.experiment_id == experiment_id, Round.number == round_number,
        Round.status == RoundStatus.COMPLETED.value))
    return {name: m.get("val_f1") for name, m in rows if isinstance(m, dict) and _number(m.get("val_f1"))}


def preview(target: Target, named: tuple[str, ...] | None) -> DeployPreview:
    """What deploying `target` to `named` (None: every plant that trained it; pinned ones held) changes."""
    current, releases = assignments(), {}
    new_f1 = plant_val_f1(target.experiment_id, target.round_number)
    names = named if named is not None else target.plants
    retired = set(db.session.scalars(db.select(Factory.name).where(
        Factory.name.in_(list(names)), Factory.decommissioned_at.is_not(None)))) if names else set()
    changes = []
    for name in names:
        row = current.get(name)
        if row is not None and row.release_id not in releases:
            old = db.session.get(Release, row.release_id)
            releases[row.release_id] = plant_val_f1(old.experiment_id, old.round_number) if old else {}
        pinned = bool(row and row.pinned)
        if name in retired:  # review: a decommissioned plant takes no model (it downloads none either)
            switches, why = False, "decommissioned: held"
        elif row is not None and row.release_id == target.release_id:
            switches, why = False, "already runs it"
        elif pinned and named is None:
            switches, why = False, "pinned: held (name it to switch it)"
        else:
            switches, why = True, "switches" + (" (pinned, named)" if pinned else "")
        changes.append(PlantChange(name, row.release_id if row else None,
                                   releases.get(row.release_id, {}).get(name) if row else None,
                                   new_f1.get(name), pinned, switches, why))
    return DeployPreview(target, tuple(changes))


def apply(plan: DeployPreview, actor: str, experiment_name: str) -> None:
    """Write the deploy's rows and audit event in the caller's transaction (the caller commits)."""
    if plan.target.release_id is None:
        raise ValueError("a deploy needs a stored release")
    for change in plan.plants:
        if change.switches:
            db.session.add(Deployment(factory_name=change.plant, release_id=plan.target.release_id,
                                      previous_release_id=change.current, pinned=change.pinned, action="deploy",
                                      actor=actor))
            record_audit(actor, "deployment.deployed", change.plant, release_id=plan.target.release_id,
                         previous_release_id=change.current, experiment_id=plan.target.experiment_id)
    record_audit(actor, "model.deployed", experiment_name, release_id=plan.target.release_id,
                 experiment_id=plan.target.experiment_id, round=plan.target.round_number,
                 switched=plan.switching, held=[p.plant for p in plan.plants if not p.switches])


def deploy(release: Release, named: tuple[str, ...] | None, actor: str) -> DeployPreview:
    """Deploy an existing release (a roll forward or back to any release of its plants); refused for a
    cancelled experiment."""
    refuse_unreleasable(release.experiment)
    plan = preview(target_of(release), named)
    apply(plan, actor, release.experiment.name)
    commit()
    log.info("deployed model #%d to %s (held: %s)", release.id, ", ".join(plan.switching) or "no plant",
             ", ".join(p.plant for p in plan.plants if not p.switches) or "none")
    return plan


def commit() -> None:
    db.session.commit()
    forget_assignments()


def stack(rows: list[Deployment]) -> list[int]:
    """The releases a plant's history has deployed and not rolled back, oldest first (its last is current)."""
    releases: list[int] = []
    for row in rows:
        if row.action == "rollback" and releases:
            releases.pop()
        if row.action in ("deploy", "rollback") and (not releases or releases[-1] != row.release_id):
            releases.append(row.release_id)
    return releases


def history(name: str) -> list[Deployment]:
    return list(db.session.scalars(db.select(Deployment).filter_by(factory_name=name).order_by(Deployment.id)))


def _current(name: str) -> list[Deployment]:
    """The plant's history, or PlantNotFound / NothingToRollBack naming it."""
    rows = history(plant_name(name, "name"))
    if not rows:
        if db.session.scalar(db.select(Factory.id).filter_by(name=name)) is None:
            raise PlantNotFound(f"no plant named {name!r}")
        raise NothingToRollBack(f"plant {name} has no model deployed")
    return rows


def _roll_back(name: str, rows: list[Deployment], actor: str) -> Deployment:
    releases, now = stack(rows), rows[-1]
    if len(releases) < 2:
        raise NothingToRollBack(f"plant {name} has run only model #{now.release_id}: no earlier one to roll back to")
    row = Deployment(factory_name=name, release_id=releases[-2], previous_release_id=now.release_id,
                     pinned=now.pinned, action="rollback", actor=actor)
    db.session.add(row)
    record_audit(actor, "deployment.rolled_back", name, release_id=releases[-2], previous_release_id=now.release_id)
    return row


def rollback(name: str, actor: str) -> Deployment:
    """The plant goes back to the release before its newest deploy (named: a pinned plant too)."""
    row = _roll_back(name, _current(name), actor)
    commit()
    log.info("plant %s rolled back from model #%d to #%d", name, row.previous_release_id, row.release_id)
    return row


def rollback_all(actor: str) -> dict:
    """Every plant not pinned that has an earlier release goes back to it."""
    done, held, nothing = [], [], []
    for name, row in sorted(assignments().items()):
        rows = history(name)
        if row.pinned:
            held.append(name)
        elif len(stack(rows)) < 2:
            nothing.append(name)
        else:
            done.append(_roll_back(name, rows, actor).to_dict())
    commit()
    log.info("rolled back %d plants (pinned, held: %s)", len(done), ", ".join(held) or "none")
    return {"rolled_back": done, "held_pinned": held, "nothing_earlier": nothing}


def set_pinned(name: str, pinned: bool, actor: str) -> Deployment:
    """Pin (or unpin) a plant on the release it is assigned; the same state again changes nothing."""
    now = _current(name)[-1]
    if now.pinned == pinned:
        return now
    row = Deployment(factory_name=name, release_id=now.release_id, previous_release_id=now.release_id,
                     pinned=pinned, action="pin" if pinned else "unpin", actor=actor)
    db.session.add(row)
    record_audit(actor, "deployment.pinned" if pinned else "deployment.unpinned", name, release_id=now.release_id)
    commit()
    log.info("plant %s %s on model #%d", name, "pinned" if pinned else "unpinned", now.release_id)
    return row
