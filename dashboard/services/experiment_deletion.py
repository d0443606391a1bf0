"""Deleting an experiment (issue 27 item 6): what goes and what stays, said before it is done, and the refusals.

Removed: the experiment's settings, its rounds with each plant's results and metrics, its model versions (the
weights of every round), its personalization scores, and its releases that no plant uses (their bundles).
Kept: the audit log, whole: every event about the experiment stays findable by its id (GET /api/audit?experiment=),
including the deletion itself, which records the name, the settings, the rounds and best scores, and the SHA-256 of
every release removed. Refused (409): an experiment that is running or paused (cancel it or let it finish), one
with a round in flight, and one with a release that a plant is assigned (its newest deployment, decision 0022) or
reports using (roll it back or deploy another model first): what plants score with is never pulled from under
them, nor one a plant was rolled back to (removing it would change what that plant rolls back to next). The
deployment history of a removed release goes with it (the audit keeps each deploy and roll back).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from dashboard.extensions import db
from dashboard.models import (Deployment, Experiment, Factory, ModelVersion, PersonalResult, Release, Round,
                              record_audit)
from shared.enums import ExperimentStatus, RoundStatus
from shared.errors import ExperimentError
from shared.experiment.stopping import best_round, validation_f1

log = logging.getLogger(__name__)

KEPT = ("the audit log: every event about this experiment, found by its id, and the deletion itself",)
REFUSED_STATUSES = frozenset({ExperimentStatus.RUNNING.value, ExperimentStatus.PAUSED.value})


@dataclass(frozen=True)
class DeletionPlan:
    """What deleting the experiment would do, or why it is refused (`refusal`, None when it may go)."""

    experiment_id: int
    name: str
    rounds: int
    model_versions: int
    releases: list[str]  # SHA-256 of each release removed
    personal_results: int
    refusal: str | None = None
    kept: tuple[str, ...] = field(default=KEPT)

    def removed(self) -> list[str]:
        """The confirmation page's lines."""
        return [f"its settings and {self.rounds} round(s) with each plant's results and metrics",
                f"{self.model_versions} model version(s) (the weights of each round)",
                f"{len(self.releases)} release(s) that no plant uses, with their bundles",
                f"{self.personal_results} personalization score(s)"]

    def to_dict(self) -> dict:
        return {"experiment_id": self.experiment_id, "name": self.name, "refusal": self.refusal,
                "removed": {"rounds": self.rounds, "model_versions": self.model_versions,
                            "releases": self.releases, "personal_results": self.personal_results},
                "kept": list(self.kept)}


def _count(model, **filters) -> int:
    return db.session.scalar(db.select(db.func.count()).select_from(model).filter_by(**filters))


def _refusal(experiment: Experiment, releases: list[Release]) -> str | None:
    if experiment.status in REFUSED_STATUSES:
        return f"it is {experiment.status}: cancel it or let it finish first"
    if _count(Round, experiment_id=experiment.id, status=RoundStatus.RUNNING.value):
        return "a round of it is in flight"
    from dashboard.services.deployments import assignments, stack

    ids = [r.id for r in releases]
    assigned = sorted(name for name, d in assignments().items() if d.release_id in ids)
    if assigned:
        return (f"plant(s) {', '.join(assigned)} are assigned one of its releases: roll them back or deploy another "
                "model first")
    # removing its releases' deployment rows must leave every plant's roll-back history as it was, less those
    # releases: a roll back to one of them, once gone, would otherwise stop undoing the deploy it undid, and a later
    # roll back could return the plant to a model it was rolled back from (review)
    histories: dict[str, list[Deployment]] = {}
    for row in db.session.scalars(db.select(Deployment).order_by(Deployment.id)):
        histories.setdefault(row.factory_name, []).append(row)
    held = sorted(name for name, rows in histories.items()
                  if [r for r in stack(rows) if r not in ids] != stack([r for r in rows if r.release_id not in ids]))
    if held:
        return (f"plant(s) {', '.join(held)} were rolled back to one of its releases: removing it would change what "
                "they roll back to")
    using = db.session.scalars(db.select(Factory.name).where(Factory.released_model_id.in_(ids))).all() if ids else []
    if using:
        return f"plant(s) {', '.join(sorted(using))} report using one of its releases"
    return None


def plan(experiment: Experiment) -> DeletionPlan:
    releases = list(db.session.scalars(db.select(Release).filter_by(experiment_id=experiment.id)).all())
    return DeletionPlan(experiment.id, experiment.name,
                        rounds=sum(1 for r in experiment.rounds if r.status == RoundStatus.COMPLETED.value),
                        model_versions=_count(ModelVersion, experiment_id=experiment.id),
                        releases=[r.sha256 for r in releases],
                        personal_results=_count(PersonalResult, experiment_id=experiment.id),
                        refusal=_refusal(experiment, releases))


def delete_experiment(experiment: Experiment, actor: str) -> DeletionPlan:
    """Delete `experiment` and what `plan` says goes, audited with what the audit then alone remembers;
    ExperimentError (409) with the refusal otherwise. Commits."""
    done = plan(experiment)
    if done.refusal:
        raise ExperimentError(f"cannot delete experiment {experiment.id}: {done.refusal}")
    scores = experiment.validation_scores()
    best = best_round(scores)
    best_metrics = next((r.metrics for r in experiment.rounds if r.number == best
                         and r.status == RoundStatus.COMPLETED.value), None) or {}
    record_audit(actor, "experiment.deleted", experiment.name, experiment_id=experiment.id, config=experiment.config,
                 status=experiment.status, rounds=done.rounds, best_round=best,
                 best_val_f1=validation_f1(best_metrics) if best is not None else None,
                 best_test_f1=best_metrics.get("test_f1"), releases=done.releases)
    ids = db.select(Release.id).where(Release.experiment_id == experiment.id)
    db.session.execute(db.update(Deployment).where(Deployment.previous_release_id.in_(ids))
                       .values(previous_release_id=None))
    db.session.execute(db.delete(Deployment).where(Deployment.release_id.in_(ids)))
    for model in (Release, ModelVersion, PersonalResult):  # the ORM cascade covers rounds and their results
        db.session.execute(db.delete(model).where(model.experiment_id == experiment.id))
    db.session.delete(experiment)
    db.session.commit()
    log.info("%s deleted experiment %s (%s)", actor, done.experiment_id, done.name)
    return done
