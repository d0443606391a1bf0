"""Trained models: the model of an experiment's round as a bundle, and released models (DESIGN §10).

- `build_bundle`: a round's model version with the experiment's schema and scaler, exactly what
  `GET /api/experiments/<id>/model?round=N` serves (without a round: the best round by pooled validation F1,
  else the latest model version);
- `release` keeps one round's bundle, its bytes and SHA-256, and deploys it to a chosen set of the plants that
  trained it (dashboard.services.deployments: per plant, decision 0022); plants learn what they are assigned
  from their heartbeat's answer (dashboard.registry.floor); `release_preview` is its confirmation;
- `registry` lists every release with its state (in use at N plants / superseded / never used);
  `bundle_for_plant` hands a release's bytes to a plant of its experiment, authenticated by its heartbeat token.

Which plants a release is for: the plants recorded as participants of the experiment's completed rounds, the
ones that trained it. A name the configuration merely lists is not enough: it may belong to no plant yet, and
whoever registered it first would receive the bundle.
"""

from __future__ import annotations

import hashlib
import logging

from dashboard.auth.roles import Forbidden, Unauthorized
from dashboard.extensions import db
from dashboard.models import Deployment, Experiment, Factory, ModelVersion, Release, Round, record_audit
from dashboard.models.base import isoformat, utcnow
from dashboard.models.operators import token_digest
from dashboard.auth.security import constant_time_equal
from dashboard.services import deployments
from dashboard.services.experiments import MAX_ID, NotFound
from shared.bundle import ModelBundle
from shared.data.scaler import Scaler
from shared.data.schema import FeatureSchema
from shared.enums import RoundStatus
from shared.experiment.stopping import best_round as best_of
from shared.serialization import weights_from_bytes
from dashboard.errors import NothingToRelease, ReleaseNotFound

log = logging.getLogger(__name__)


def build_bundle(experiment: Experiment, round_number: int | None) -> tuple[bytes, int]:
    """The bundle of round `round_number` (default: the best round by pooled validation F1, else the latest
    model version) and that round's number."""
    query = db.select(ModelVersion).filter_by(experiment_id=experiment.id)
    if round_number is None:
        round_number = best_round_number(experiment)
    if round_number is None:
        version = db.session.scalar(query.order_by(ModelVersion.round_number.desc()).limit(1))
    else:
        version = db.session.scalar(query.filter_by(round_number=round_number))
    if version is None or experiment.schema is None:
        raise NotFound(f"experiment {experiment.id} has no model" +
                       (f" for round {round_number}" if round_number is not None else " yet"))
    schema = FeatureSchema.from_dict(experiment.schema)
    spec = experiment.settings.model_spec(len(schema.feature_names))  # the very spec the rounds trained
    round_row = db.session.scalar(db.select(Round).filter_by(experiment_id=experiment.id,
                                                             number=version.round_number,
                                                             status=RoundStatus.COMPLETED.value))
    bundle = ModelBundle(spec=spec, schema=schema, scaler=Scaler.from_dict(experiment.scaler),
                         weights=weights_from_bytes(version.weights), threshold=version.threshold,
                         source={"experiment_id": experiment.id, "experiment": experiment.name,
                                 "round": version.round_number, "created_at": isoformat(version.created_at),
                                 "metrics": round_row.metrics if round_row else {}})
    return bundle.to_bytes(), version.round_number


def best_round_number(experiment: Experiment) -> int | None:
    """The completed round with the best pooled validation F1 (ties go to the later round; a round without
    validation metrics is not eligible: shared.experiment.stopping), or None."""
    return best_of(experiment.validation_scores())


def best_round(experiment: Experiment) -> Round:
    """The completed round `best_round_number` names; NothingToRelease when no round has validation metrics."""
    number = best_round_number(experiment)
    if number is None:
        raise NothingToRelease(f"experiment {experiment.id} has no completed round with validation metrics "
                               "(val_f1) to release")
    return next(r for r in experiment.rounds if r.number == number and r.status == RoundStatus.COMPLETED.value)


def experiment_plants(experiment: Experiment) -> list[str]:
    """The plants that took part in the experiment's completed rounds."""
    plants: set[str] = set()
    for row in experiment.rounds:
        if row.status == RoundStatus.COMPLETED.value:
            plants.update(row.participants or [])
    return sorted(plants)


def _completed(experiment: Experiment, round_number: int | None) -> Round:
    """The round to release (default: `best_round`), after refusing a cancelled experiment or one without a
    completed round."""
    deployments.refuse_unreleasable(experiment)
    if round_number is None:
        return best_round(experiment)
    completed = next((r for r in experiment.rounds if r.number == round_number
                      and r.status == RoundStatus.COMPLETED.value), None)
    if completed is None:
        raise NothingToRelease(f"experiment {experiment.id} has no completed round {round_number}")
    return completed


def release(experiment: Experiment, round_number: int | None, actor: str,
            plants: list | None = None) -> tuple[Release, deployments.DeployPreview]:
    """Release a round's bundle (default: `best_round`) and deploy it to `plants` (default: every plant that
    trained it, pinned ones held: dashboard.services.deployments)."""
    completed = _completed(experiment, round_number)
    named = deployments.chosen_plants(plants, tuple(experiment_plants(experiment)))
    blob, number = build_bundle(experiment, completed.number)  # the very bundle the download endpoint serves
    row = Release(experiment_id=experiment.id, round_number=number, sha256=hashlib.sha256(blob).hexdigest(),
                  size=len(blob), bundle=blob, metrics=dict(completed.metrics or {}), threshold=completed.threshold,
                  plants=experiment_plants(experiment), released_by=actor, released_at=utcnow())
    db.session.add(row)
    db.session.flush()
    record_audit(actor, "model.released", experiment.name, release_id=row.id, experiment_id=experiment.id,
                 round=number, sha256=row.sha256)
    plan = deployments.preview(deployments.target_of(row), named)
    deployments.apply(plan, actor, experiment.name)
    deployments.commit()
    log.info("released experiment %d round %d as model #%d (sha256 %s…) for %s", experiment.id, number, row.id,
             row.sha256[:12], ", ".join(plan.switching) or "no plant yet")
    return row, plan


def release_preview(experiment: Experiment, round_number: int | None,
                    plants: list | None = None) -> deployments.DeployPreview:
    """What releasing round `round_number` (default: the best) to `plants` would change, for the operator to
    confirm; refused as `release` would."""
    chosen = _completed(experiment, round_number)
    allowed = tuple(experiment_plants(experiment))
    target = deployments.Target(None, experiment.id, chosen.number, allowed, (chosen.metrics or {}).get("val_f1"))
    return deployments.preview(target, deployments.chosen_plants(plants, allowed))


def get_release(release_id: int) -> Release:
    row = db.session.get(Release, release_id) if 0 < release_id <= MAX_ID else None
    if row is None:
        raise ReleaseNotFound(f"no release with id {release_id}")
    return row


def registry(limit: int = 500) -> list[dict]:
    """Every release, newest first, with its experiment's name and the plants that report using it."""
    rows = db.session.scalars(db.select(Release).order_by(Release.id.desc()).limit(limit)).all()
    using: dict[int, list[str]] = {}
    for name, model_id in db.session.execute(db.select(Factory.name, Factory.released_model_id)
                                             .where(Factory.released_model_id.is_not(None)).order_by(Factory.name)):
        using.setdefault(model_id, []).append(name)
    names = dict(db.session.execute(db.select(Experiment.id, Experiment.name)
                                    .where(Experiment.id.in_({r.experiment_id for r in rows}))).all())
    assigned: dict[int, list[str]] = {}
    for name, row in sorted(deployments.assignments().items()):
        assigned.setdefault(row.release_id, []).append(name)
    ever = set(db.session.scalars(db.select(Deployment.release_id).distinct()))
    return [{**r.to_dict(), "experiment": names.get(r.experiment_id), "plants_using": using.get(r.id, []),
             "plants_assigned": assigned.get(r.id, []),
             **release_state(assigned.get(r.id, []), using.get(r.id, []), r.id in ever)} for r in rows]


def release_state(assigned: list[str], using: list[str], ever_deployed: bool) -> dict:
    """One state per release: in use (assigned to, or reported by, N plants), superseded (deployed once, no
    longer), or never used."""
    count = len(set(assigned) | set(using))
    if count:
        return {"state": "in_use", "state_text": f"in use at {count} plant{'s' if count != 1 else ''}"}
    if ever_deployed:
        return {"state": "superseded", "state_text": "superseded"}
    return {"state": "never_used", "state_text": "never used"}


def bundle_for_plant(release_id: int, heartbeat_token: str | None) -> Release:
    """The release's bytes for the plant whose heartbeat token this is, if it is one of its experiment's plants."""
    if not heartbeat_token:
        raise Unauthorized("send the plant's heartbeat token: Authorization: Bearer <heartbeat token>")
    digest = token_digest(heartbeat_token)
    plant = db.session.execute(db.select(Factory.name, Factory.heartbeat_token_hash, Factory.decommissioned_at)
                               .where(Factory.heartbeat_token_hash == digest)).first()
    if plant is None or not constant_time_equal(digest, plant.heartbeat_token_hash):
        raise Unauthorized("wrong heartbeat token")
    if plant.decommissioned_at is not None:  # even with a token a racing re-registration wrote (review)
        raise Forbidden(f"plant {plant.name} is decommissioned: it downloads no model")
    row = get_release(release_id)
    if plant.name not in (row.plants or ()):
        log.warning("plant %s asked for release #%d of experiment %d, which is not its experiment's: refused",
                    plant.name, row.id, row.experiment_id)
        raise Forbidden(f"release {release_id} is not for plant {plant.name}")
    return row
