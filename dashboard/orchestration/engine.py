"""The round engine: claims an experiment's next round in the database, runs its steps
(select, the round workflow of dashboard.orchestration.workflow, record).

A claim is a lease (claim_owner, claim_until) taken with one conditional UPDATE, atomic on SQLite and
Postgres alike, and renewed while the round runs; a scheduler that dies loses its lease within
DASHBOARD_LEASE_SECONDS (default 60) and another (or the restarted one) aborts the half-done round and runs
it again. Rounds are recorded only on completion, so no round is ever counted twice.
"""

from __future__ import annotations

import logging
import os
import random
import secrets
import socket
import threading
import uuid
from collections.abc import Callable
from datetime import timedelta

import numpy as np
from sqlalchemy import or_, update

from dashboard.extensions import db
from dashboard.models import Experiment, ModelVersion, Round, record_audit
from dashboard.models.base import utcnow
from dashboard.orchestration import budget, personalization, recording, selection
from dashboard.orchestration.channel import Participant, PlantChannel, SyftChannel
from dashboard.orchestration.preparation import prepare
from dashboard.orchestration.proofs import proofs_for
from dashboard.orchestration.syft_clients import ConnectionPool, DatasiteTrust
from dashboard.orchestration.workflow import RoundFailed, RoundPlan, RoundWorkflow
from dashboard.registry import membership
from shared.data.schema import FeatureSchema
from shared.enums import ExperimentStatus, RoundStatus
from shared.errors import SecurityError
from shared.experiment.stopping import best_round
from shared.privacy.noise import NoiseSource, SystemRandomNoise
from shared.protocol import ModelPart, RoundRef, ScalerMsg
from shared.serialization import weights_from_bytes

log = logging.getLogger(__name__)


class RoundEngine:
    def __init__(self, app, owner: str | None = None, *, dp_noise=SystemRandomNoise,
                 plant_sampler: random.Random | None = None, channel: PlantChannel | None = None):
        self.app = app
        # what protects plants (central DP noise, the draw of plants) comes from the operating system's CSPRNG,
        # never from the experiment's seed (STYLE habit 16); a test may pass its own
        self.dp_noise: Callable[[], NoiseSource] = dp_noise
        self.plant_sampler = plant_sampler or secrets.SystemRandom()
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.channel = channel or SyftChannel(ConnectionPool(app.config["APPROVAL_TIMEOUT"],
                                                             DatasiteTrust.from_config(app.config)))
        self.lease = app.config["LEASE_SECONDS"]

    # --- claiming -----------------------------------------------------------------------------
    def claim(self, experiment_id: int) -> bool:
        now = utcnow()
        result = db.session.execute(
            update(Experiment)
            .where(Experiment.id == experiment_id, Experiment.status == ExperimentStatus.RUNNING.value,
                   or_(Experiment.claim_owner.is_(None), Experiment.claim_until < now,
                       Experiment.claim_owner == self.owner))
            .values(claim_owner=self.owner, claim_until=now + timedelta(seconds=self.lease)))
        db.session.commit()
        return result.rowcount == 1

    def release(self, experiment_id: int) -> None:
        db.session.execute(update(Experiment).where(Experiment.id == experiment_id,
                                                    Experiment.claim_owner == self.owner)
                           .values(claim_owner=None, claim_until=None))
        db.session.commit()

    def _renew_lease(self, experiment_id: int, stop: threading.Event) -> None:
        with self.app.app_context():
            while not stop.wait(self.lease / 4):
                db.session.execute(update(Experiment).where(Experiment.id == experiment_id,
                                                            Experiment.claim_owner == self.owner)
                                   .values(claim_until=utcnow() + timedelta(seconds=self.lease)))
                db.session.commit()

    def abort_stale_rounds(self) -> None:
        """Rounds left running by a scheduler that died (its lease expired) are aborted, to be run again."""
        now = utcnow()
        stale = db.session.scalars(
            db.select(Round).join(Experiment).where(
                Round.status == RoundStatus.RUNNING.value,
                or_(Experiment.claim_owner.is_(None), Experiment.claim_until < now))).all()
        for r in stale:
            r.status, r.finished_at = RoundStatus.ABORTED.value, now
            r.error = "interrupted (dashboard restarted or scheduler lost); the round runs again"
            log.warning("experiment %d round %d was interrupted: it runs again", r.experiment_id, r.number)
        db.session.commit()

    # --- the tick -----------------------------------------------------------------------------
    def tick(self) -> None:
        self.abort_stale_rounds()
        ids = db.session.scalars(db.select(Experiment.id).filter_by(status=ExperimentStatus.RUNNING.value)
                                 .order_by(Experiment.id)).all()
        for experiment_id in ids:
            if not self.claim(experiment_id):
                continue
            stop = threading.Event()
            renewer = threading.Thread(target=self._renew_lease, args=(experiment_id, stop), daemon=True)
            renewer.start()
            try:
                self.advance(experiment_id)
            except Exception as exc:  # a bug, not a plant's failure: stop this experiment loudly, keep the others
                db.session.rollback()
                log.exception("experiment %d: round engine error", experiment_id)
                recording.fail_experiment(db.session.get(Experiment, experiment_id),
                                          f"internal error in the round engine ({type(exc).__name__}: {exc}); "
                                          "see the dashboard log")
            finally:
                stop.set()
                renewer.join()
                self.release(experiment_id)
                self._record_plant_events()

    def _record_plant_events(self) -> None:
        for plant, action, detail in self.channel.drain_events():
            record_audit("scheduler", action, plant, **detail)
        db.session.commit()

    # --- one step of an experiment: select, then prepare (round 0) or run a round ----------------
    def _wait(self, experiment: Experiment, message: str) -> None:
        if experiment.message != message:
            log.info("experiment %d: %s", experiment.id, message)
        experiment.message = message
        db.session.commit()

    def _timeout(self, experiment: Experiment) -> float:
        return experiment.settings.round_timeout or self.app.config["ROUND_TIMEOUT"]

    def advance(self, experiment_id: int) -> None:
        experiment = db.session.get(Experiment, experiment_id)
        found = selection.eligible(experiment)
        if len(found.plants) < experiment.settings.min_factories:
            self._wait(experiment, selection.waiting_message(experiment, found))
            return
        if experiment.scaler is None:
            waiting = prepare(self.channel, experiment, found.plants,
                              [selection.participant(f) for f in found.plants], self._timeout(experiment))
            if waiting:
                self._wait(experiment, waiting)
            return
        drawn, why = selection.draw(experiment, found.plants, self.plant_sampler)
        if why:
            self._wait(experiment, why)
        if drawn is not None:
            self.run_round(experiment, [selection.participant(f) for f in drawn], len(found.plants))

    def plan(self, experiment: Experiment, participants: list[Participant], federation: int, attempt: int,
             model_round: int | None = None) -> RoundPlan:
        """What the workflow needs, loaded from the database: the incoming model (or round `model_round`'s),
        settings, server state."""
        config, number = experiment.settings, experiment.current_round + 1
        version = db.session.scalar(db.select(ModelVersion).filter_by(
            experiment_id=experiment.id, round_number=number - 1 if model_round is None else model_round))
        names = FeatureSchema.from_dict(experiment.schema).feature_names
        scaler = ScalerMsg(np.asarray(experiment.scaler["mean"]), np.asarray(experiment.scaler["scale"]))
        model = ModelPart(features=tuple(names), scaler=scaler, spec=config.model_spec(len(names)),
                          weights=weights_from_bytes(version.weights))
        incoming = number - 1 if model_round is None else model_round
        return RoundPlan(ref=RoundRef(experiment.id, number, attempt), config=config, model=model,
                         participants=participants, federation_size=federation,
                         proofs=proofs_for(experiment, [p.name for p in participants], incoming),
                         server_state=recording.load_server_state(experiment), timeout=self._timeout(experiment),
                         pos_weight=experiment.scaler.get("pos_weight"),
                         revocations=membership.revocations() if config.secure_aggregation else None)

    def run_round(self, experiment: Experiment, participants: list[Participant], federation: int) -> None:
        step = budget.privacy_step(experiment)
        per_round = step is not None and step[0] != "draw"  # a draw was accounted when drawn
        if (per_round and not budget.allows(experiment, step)) or not budget.dp_sgd_allows(experiment):
            return
        row = recording.start_round(experiment, [p.name for p in participants])
        workflow = RoundWorkflow(self.channel, self.dp_noise, self._progress(row))
        try:
            state = workflow.run(self.plan(experiment, participants, federation, row.attempt))
        except RoundFailed as failed:
            recording.record_evaluation(experiment, row.number - 1, failed.state.incoming)
            db.session.commit()
            self._round_failed(experiment, row, failed)
            return
        recording.record_evaluation(experiment, row.number - 1, state.incoming)
        db.session.commit()  # before the cancellation check refreshes the experiment
        if recording.abort_if_cancelled(experiment, row):
            return
        recording.record_round(experiment, row, state, step)
        log.info("experiment %d round %d done in %.1f s: %d plants, dropouts=%s", experiment.id, row.number,
                 row.duration_s, len(state.trained), sorted(state.dropouts) or "none")
        if experiment.status == ExperimentStatus.COMPLETED.value and personalization.wanted(experiment.settings):
            self.personalize(experiment, [p for p in participants if p.name in state.trained])

    def personalize(self, experiment: Experiment, participants: list[Participant]) -> None:
        """After the last round: the plants personalize the best round's model (its failures are the plants'
        dropouts, never the experiment's)."""
        number = best_round(experiment.validation_scores()) or experiment.current_round
        plan = self.plan(experiment, participants, len(participants), 1, model_round=number)
        request = personalization.personalize_request(experiment.settings, experiment.id, plan.model,
                                                      plan.pos_weight)
        phase = personalization.personalize(self.channel, participants, request, plan.timeout, plan.proofs)
        recorded = recording.record_personalization(experiment, number, phase.answers)
        if not recorded:
            experiment.message = "completed; no plant personalized: " + "; ".join(
                f"{name}: {why}" for name, why in sorted(phase.dropouts.items()))[:1000]
            db.session.commit()
        log.info("experiment %d personalized at %d plant(s) from round %d; dropouts=%s", experiment.id,
                 len(recorded), number, sorted(phase.dropouts) or "none")

    def _round_failed(self, experiment: Experiment, row: Round, failed: RoundFailed) -> None:
        dropouts = failed.state.dropouts
        if failed.budget_refusals:  # DP-SGD: the plants' own ledgers said no
            row.status, row.finished_at = RoundStatus.FAILED.value, utcnow()
            row.dropouts, row.error, row.participants = dropouts, dropouts[failed.budget_refusals[0]], []
            budget.exhaust(experiment, SecurityError(f"{', '.join(failed.budget_refusals)} refused round "
                                                     f"{row.number}: {dropouts[failed.budget_refusals[0]]}"),
                           budget.dp_sgd_spent(experiment))
            return
        recording.fail_round(experiment, row, dropouts, str(failed))

    def _progress(self, row: Round) -> Callable:
        """Live progress on the round's row: the phase, and who has answered or failed so far."""
        def phase(name: str):
            row.progress = {"phase": name, "answered": [], "failed": []}
            db.session.commit()

            def on_answer(plant: str, ok: bool) -> None:
                progress = dict(row.progress)
                key = "answered" if ok else "failed"
                progress[key] = progress[key] + [plant]
                row.progress = progress
                db.session.commit()
            return on_answer
        return phase
