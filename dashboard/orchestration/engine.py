"""The round engine: claims an experiment's next round in the database, runs its steps
(dashboard.orchestration.rounds) and records the outcome.

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

from dashboard.experiment_config import model_spec
from dashboard.extensions import db
from dashboard.models import Experiment, Factory, ModelVersion, Round, RoundResult, record_audit
from dashboard.models.base import utcnow
from dashboard.orchestration import rounds as steps
from dashboard.orchestration.syft_clients import ConnectionPool, DatasiteTrust, PlantAddress, transport_of
from dashboard.security import decrypt
from shared.aggregation.pipeline import AggregationState, aggregate_secure
from shared.data.schema import FeatureSchema
from shared.enums import ExperimentStatus, FactoryStatus, RoundStatus
from shared.errors import FederatedLearningError, SecurityError
from shared.privacy.accounting import epsilon_spent, gaussian_step, plant_level_steps, within_budget
from shared.privacy.dp_sgd import epsilon_of as dp_epsilon_of
from shared.privacy.noise import NoiseSource, SystemRandomNoise
from shared.privacy.sampling import poisson_sample, probability_of_at_least
from shared.protocol import (EvaluateRequest, ModelPart, RoundRef, ScalerMsg, StatsRequest, TrainRequest,
                             TrainSettings)
from shared.models import build_model, get_weights
from shared.serialization import weights_from_bytes, weights_to_bytes

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 3


class RoundEngine:
    def __init__(self, app, owner: str | None = None, *, dp_noise=SystemRandomNoise,
                 plant_sampler: random.Random | None = None):
        self.app = app
        # what protects plants (central DP noise, the draw of plants) comes from the operating system's CSPRNG,
        # never from the experiment's seed (STYLE habit 16); a test may pass its own
        self.dp_noise: Callable[[], NoiseSource] = dp_noise
        self.plant_sampler = plant_sampler or secrets.SystemRandom()
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.pool = ConnectionPool(app.config["APPROVAL_TIMEOUT"], DatasiteTrust.from_config(app.config))
        self.lease = app.config["LEASE_SECONDS"]
        self._unsuited: list[str] = []

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
                self._fail_experiment(experiment_id, f"internal error in the round engine ({type(exc).__name__}: "
                                                     f"{exc}); see the dashboard log")
            finally:
                stop.set()
                renewer.join()
                self.release(experiment_id)
                self._record_plant_events()

    def _record_plant_events(self) -> None:
        for plant, action, detail in self.pool.drain_events():
            record_audit("scheduler", action, plant, **detail)
        db.session.commit()

    def _fail_experiment(self, experiment_id: int, message: str) -> None:
        experiment = db.session.get(Experiment, experiment_id)
        experiment.status, experiment.finished_at, experiment.message = (ExperimentStatus.FAILED.value, utcnow(),
                                                                         message)
        for stale in db.session.scalars(db.select(Round).filter_by(experiment_id=experiment_id,
                                                                   status=RoundStatus.RUNNING.value)):
            stale.status, stale.finished_at, stale.error = RoundStatus.ABORTED.value, utcnow(), message
        record_audit("scheduler", "experiment.failed", experiment.name, reason=message)
        db.session.commit()

    # --- one step of an experiment ------------------------------------------------------------
    def _eligible(self, experiment: Experiment) -> list[Factory]:
        config = experiment.config
        query = db.select(Factory).where(Factory.status.in_([FactoryStatus.ONLINE.value, FactoryStatus.BUSY.value]))
        if config["factories"] != "all":
            query = query.where(Factory.name.in_(config["factories"]))
        factories = db.session.scalars(query.order_by(Factory.name)).all()
        eligible = [f for f in factories
                    if config["model_type"] in (f.capabilities or {}).get("supported_models", ["cnn"])
                    and (f.capabilities or {}).get("schema")
                    and (f.secagg_public_key or not config.get("secure_aggregation"))]
        self._unsuited = [f.name for f in factories if f not in eligible]
        return eligible

    def _participant(self, factory: Factory) -> steps.Participant:
        address = PlantAddress(name=factory.name, hostname=factory.hostname, port=factory.port,
                               email=factory.orchestrator_email,
                               password=decrypt(factory.orchestrator_password_enc),
                               registered_at=factory.registered_at.isoformat(), transport=transport_of(factory))
        return steps.Participant(address=address, public_key=factory.secagg_public_key)

    def _wait(self, experiment: Experiment, message: str) -> None:
        if experiment.message != message:
            log.info("experiment %d: %s", experiment.id, message)
        experiment.message = message
        db.session.commit()

    def _timeout(self, experiment: Experiment) -> float:
        return experiment.config.get("round_timeout") or self.app.config["ROUND_TIMEOUT"]

    def advance(self, experiment_id: int) -> None:
        experiment = db.session.get(Experiment, experiment_id)
        config = experiment.config
        factories = self._eligible(experiment)
        if len(factories) < config["min_factories"]:
            needs = ("a secure-aggregation key or " if config.get("secure_aggregation") else "") + \
                f"the group/time columns a {config['model_type']} model needs"
            unsuited = f"; online but without {needs}: {', '.join(self._unsuited)}" if self._unsuited else ""
            self._wait(experiment, f"waiting for plants: {len(factories)} of at least {config['min_factories']} "
                                   f"online ({', '.join(f.name for f in factories) or 'none'}){unsuited}")
            return
        if experiment.scaler is None:
            self.prepare(experiment, factories, [self._participant(f) for f in factories])
            return
        drawn = self._draw(experiment, factories)
        if drawn is not None:
            self.run_round(experiment, [self._participant(f) for f in drawn])

    def _draw(self, experiment: Experiment, factories: list[Factory]) -> list[Factory] | None:
        """This round's plants: every eligible one, or at sampling_rate q < 1 a Poisson draw (each plant
        independently with probability q, from the CSPRNG); None when no round runs this tick."""
        config = experiment.config
        rate = config.get("sampling_rate", 1.0)
        if rate >= 1.0:
            return factories
        step = self._privacy_step(experiment)
        accounted = step is not None and step[0] == "draw"
        if accounted:
            if not self._budget_allows(experiment, step):
                return None
            # Every draw is accounted, before anyone trains, whether a round follows or not: its bound
            # (shared.privacy.accounting) covers a round that runs only when min_factories plants were drawn,
            # which a bound for the rounds alone would not. For a draw that falls short it is an over-count
            # (nothing was released), and an over-count is always valid.
            experiment.privacy_history = [*(experiment.privacy_history or []), list(step)]
            db.session.commit()
        drawn = poisson_sample(factories, rate, self.plant_sampler)
        if len(drawn) < config["min_factories"]:
            chance = probability_of_at_least(config["min_factories"], len(factories), rate)
            self._wait(experiment, f"drew {len(drawn)} of {len(factories)} eligible plants at sampling rate {rate} "
                                   f"({', '.join(f.name for f in drawn) or 'none'}), fewer than min_factories "
                                   f"{config['min_factories']}: no round this tick, a new draw at the next "
                                   f"(a draw reaches {config['min_factories']} with probability {chance:.0%})"
                                   + ("; every draw counts against the privacy budget" if accounted else ""))
            return None
        return drawn

    def prepare(self, experiment: Experiment, factories: list[Factory], participants) -> None:
        """Round 0: the merged feature schema, federated feature statistics -> global scaler, initial model."""
        schema = steps.merged_schema([f.capabilities for f in factories])
        names = schema.feature_names
        phase = steps.dispatch(self.pool, participants, lambda p: StatsRequest(experiment.id, tuple(names)),
                               self._timeout(experiment))
        if len(phase.answers) < experiment.config["min_factories"]:
            self._wait(experiment, f"feature statistics: only {len(phase.answers)} plant(s) answered; "
                                   f"dropouts: {phase.dropouts}")
            return
        scaler = steps.global_scaler(phase.answers)
        spec = model_spec(experiment.config, len(names))
        weights = get_weights(build_model(spec, seed=experiment.config["seed"]))
        # the initial model's scores: the baseline every round is compared with
        initial = ModelPart(features=tuple(names), scaler=ScalerMsg(scaler.mean, scaler.scale), spec=spec,
                            weights=weights)
        baseline = steps.dispatch(self.pool, participants,
                                  lambda p: EvaluateRequest(RoundRef(experiment.id, 0), initial), self._timeout(experiment))
        threshold, metrics = 0.5, {}
        if baseline.answers:
            threshold, metrics, _ = steps.evaluation_metrics(baseline.answers, {})
        experiment.schema, experiment.scaler, experiment.baseline = schema.to_dict(), scaler.to_dict(), metrics
        db.session.add(ModelVersion(experiment_id=experiment.id, round_number=0, weights=weights_to_bytes(weights),
                                    threshold=threshold))
        experiment.message = (f"global scaler from {sum(a.count for a in phase.answers.values())} "
                              f"training rows of {len(phase.answers)} plants; {len(names)} features")
        db.session.commit()
        log.info("experiment %d: %s; initial test_f1=%s", experiment.id, experiment.message,
                 _fmt(metrics.get("test_f1")))

    def _privacy_step(self, experiment: Experiment) -> tuple | None:
        """Central DP: what the accountant records (shared.privacy.accounting), or None without central DP.
        (sigma, 1.0) for each round when every eligible plant is asked: a dropout is not sampling, whatever
        share of the plants it leaves. ("draw", sigma, q) for each Poisson draw of plants at sampling_rate
        q < 1. ("laplace", epsilon) for each round: a draw lowers no pure-DP epsilon, and a draw that falls
        short releases nothing."""
        privacy = experiment.config.get("privacy") or {}
        if privacy.get("mode") != "central":
            return None
        if privacy.get("mechanism") == "laplace":
            return "laplace", privacy["round_epsilon"]
        return gaussian_step(privacy["noise_multiplier"], experiment.config.get("sampling_rate", 1.0))

    def _budget_allows(self, experiment: Experiment, step: tuple | None) -> bool:
        privacy = experiment.config.get("privacy") or {}
        if step is None or privacy.get("epsilon") is None:
            return True
        history = plant_level_steps(experiment.privacy_history)
        ok, projected = within_budget(history, step, privacy["delta"], privacy["epsilon"])
        if not ok:
            spent = epsilon_spent(history, privacy["delta"])
            what = "the next draw of plants" if step[0] == "draw" else f"round {experiment.current_round + 1}"
            self._exhaust(experiment, SecurityError(
                f"privacy budget exhausted: {what} would bring epsilon to "
                f"{projected:.3f} > target {privacy['epsilon']} (spent {spent:.3f} at delta {privacy['delta']})"), spent)
        return ok

    def _dp_sgd_budget_allows(self, experiment: Experiment) -> bool:
        """DP-SGD: would one more round like the last take any plant past the target? (Each plant also refuses
        such a round itself; this stops the experiment before plants spend anything on a round that cannot
        count.)"""
        privacy = experiment.config.get("privacy") or {}
        if privacy.get("mode") != "dp_sgd" or privacy.get("epsilon") is None:
            return True
        epochs = experiment.config["local_epochs"]
        for plant, history in sorted((experiment.privacy_history or {}).items()):
            sigma, rate = history[-1][0], history[-1][1]
            projected = dp_epsilon_of(history + [[sigma, rate, epochs * round(1 / rate)]], privacy["delta"])
            if projected > privacy["epsilon"]:
                spent = dp_epsilon_of(history, privacy["delta"])
                self._exhaust(experiment, SecurityError(
                    f"privacy budget exhausted: round {experiment.current_round + 1} would bring {plant}'s epsilon "
                    f"to {projected:.3f} > target {privacy['epsilon']} (spent {spent:.3f} at delta {privacy['delta']})"),
                    spent)
                return False
        return True

    def _exhaust(self, experiment: Experiment, reason: SecurityError, spent: float) -> None:
        privacy = experiment.config["privacy"]
        experiment.status, experiment.finished_at = ExperimentStatus.BUDGET_EXHAUSTED.value, utcnow()
        experiment.message = str(reason)
        record_audit("scheduler", "privacy.budget_exhausted", experiment.name, epsilon_spent=spent,
                     target_epsilon=privacy["epsilon"], experiment_id=experiment.id)
        db.session.commit()
        log.warning("experiment %d: %s", experiment.id, reason)

    def _record_dp_sgd(self, experiment: Experiment, number: int, answers: dict[str, dict], per_factory: dict,
                       aggregate: dict) -> None:
        """Each plant's accountant history and epsilon (it reports them; the plant's own ledger is the truth)."""
        histories = dict(experiment.privacy_history or {})
        for name, answer in answers.items():
            if answer.dp is not None:
                histories[name] = answer.dp.history
                per_factory.setdefault(name, {}).update(dp_epsilon=answer.dp.epsilon,
                                                        dp_noise_multiplier=answer.dp.noise_multiplier,
                                                        dp_lifetime_epsilon=answer.dp.lifetime_epsilon)
        experiment.privacy_history = histories
        delta = experiment.config["privacy"]["delta"]
        by_plant = {name: dp_epsilon_of(h, delta) for name, h in histories.items()}
        aggregate["privacy_epsilon"] = max(by_plant.values(), default=0.0)
        record_audit("scheduler", "privacy.spent", experiment.name, round=number, mode="dp_sgd", delta=delta,
                     epsilon_by_plant=by_plant)

    def run_round(self, experiment: Experiment, participants) -> None:
        config = experiment.config
        privacy_step = self._privacy_step(experiment)
        per_round = privacy_step is not None and privacy_step[0] != "draw"  # a draw was accounted when drawn
        if per_round and not self._budget_allows(experiment, privacy_step):
            return
        if not self._dp_sgd_budget_allows(experiment):
            return
        number = experiment.current_round + 1
        attempt = 1 + db.session.query(Round).filter_by(experiment_id=experiment.id, number=number).count()
        round_row = Round(experiment_id=experiment.id, number=number, attempt=attempt,
                          participants=[p.address.name for p in participants])
        db.session.add(round_row)
        experiment.message = f"round {number} running on {len(participants)} plants"
        db.session.commit()

        version = db.session.scalar(db.select(ModelVersion).filter_by(experiment_id=experiment.id,
                                                                      round_number=number - 1))
        global_weights = weights_from_bytes(version.weights)
        names = FeatureSchema.from_dict(experiment.schema).feature_names
        spec = model_spec(config, len(names))
        client_extra = steps.client_training_config(config)
        ref = RoundRef(experiment.id, number, attempt)
        scaler = ScalerMsg(np.asarray(experiment.scaler["mean"]), np.asarray(experiment.scaler["scale"]))
        current = ModelPart(features=tuple(names), scaler=scaler, spec=spec, weights=global_weights)
        order = {p.address.name: i for i, p in enumerate(participants)}
        timeout = self._timeout(experiment)
        federation = len(self._eligible(experiment))
        settings = steps.aggregation_settings(config, federation)
        secagg = None
        if config.get("secure_aggregation"):
            try:
                secagg = steps.secure_setup(config, participants, settings)
            except FederatedLearningError as exc:
                self._fail_round(experiment, round_row, {}, str(exc))
                return

        def progress(phase: str):
            round_row.progress = {"phase": phase, "answered": [], "failed": []}
            db.session.commit()

            def on_answer(name: str, ok: bool) -> None:
                state = dict(round_row.progress)
                state["answered" if ok else "failed"] = state["answered" if ok else "failed"] + [name]
                round_row.progress = state
                db.session.commit()
            return on_answer

        def train_request(p: steps.Participant) -> TrainRequest:
            settings = TrainSettings.from_wire({
                "epochs": config["local_epochs"], "batch_size": config["batch_size"],
                "learning_rate": config["learning_rate"], "max_grad_norm": config["max_grad_norm"],
                "seed": config["seed"] * 100_003 + number * 101 + order[p.address.name], **client_extra})
            return TrainRequest(ref=ref, model=current, train=settings, secagg=secagg)

        train = steps.dispatch(self.pool, participants, train_request, timeout, progress("training"))
        dropouts = dict(train.dropouts)
        refused = sorted(n for n, why in dropouts.items() if "privacy budget exhausted" in why)
        if len(train.answers) < config["min_factories"] and refused:  # DP-SGD: the plants' own ledgers said no
            round_row.status, round_row.finished_at = RoundStatus.FAILED.value, utcnow()
            round_row.dropouts, round_row.error, round_row.participants = dropouts, dropouts[refused[0]], []
            delta = config["privacy"]["delta"]
            histories = experiment.privacy_history if isinstance(experiment.privacy_history, dict) else {}
            spent = max((dp_epsilon_of(h, delta) for h in histories.values()), default=0.0)
            self._exhaust(experiment, SecurityError(f"{', '.join(refused)} refused round {number}: "
                                                    f"{dropouts[refused[0]]}"), spent)
            return
        if len(train.answers) < config["min_factories"]:
            self._fail_round(experiment, round_row, dropouts,
                             f"only {len(train.answers)} of at least {config['min_factories']} plants returned an update")
            return
        noise = self.dp_noise()  # the OS's CSPRNG: knowing the experiment's id and seed does not reproduce it
        try:
            if secagg:
                summed, reveal = steps.secure_sum(self.pool, participants, ref, secagg, train.answers, timeout,
                                                  progress("unmasking"))
                dropouts.update({k: f"unmasking: {v}" for k, v in reveal.dropouts.items()})
                new_weights, agg_state, report = aggregate_secure(settings, global_weights, summed,
                                                                  load_state(experiment), noise)
            else:
                new_weights, agg_state, report = steps.aggregate_updates(settings, global_weights, train.answers,
                                                                         load_state(experiment), noise)
        except FederatedLearningError as exc:
            self._fail_round(experiment, round_row, dropouts, str(exc))
            return
        trained = [p for p in participants if p.address.name in train.answers]
        scored = ModelPart(features=current.features, scaler=scaler, spec=spec, weights=new_weights)
        evaluation = steps.dispatch(self.pool, trained, lambda p: EvaluateRequest(ref, scored), timeout,
                                    progress("evaluating"))
        dropouts.update({k: f"evaluation: {v}" for k, v in evaluation.dropouts.items()})
        if not evaluation.answers:
            self._fail_round(experiment, round_row, dropouts, "no plant could evaluate the new model")
            return
        threshold, aggregate, per_factory = steps.evaluation_metrics(evaluation.answers, train.answers)

        db.session.refresh(experiment)
        if experiment.status == ExperimentStatus.CANCELLED.value:
            round_row.status, round_row.finished_at = RoundStatus.ABORTED.value, utcnow()
            round_row.error = "experiment cancelled during the round"
            db.session.commit()
            return
        round_row.participants = sorted(train.answers)
        round_row.dropouts = dropouts
        round_row.metrics = aggregate
        round_row.threshold = threshold
        round_row.aggregation = {"norms": report.norms, "outliers": report.outliers, "excluded": report.excluded,
                                 "reputation": report.reputation}
        if secagg:  # what the dashboard saw: masked vectors and their sum; say how it was unmasked
            round_row.aggregation.update(secure=True, threshold=secagg.threshold, survivors=sorted(train.answers),
                                         revealed_by=sorted(reveal.answers), fraction_bits=secagg.fraction_bits,
                                         clip=secagg.clip)
        save_state(experiment, agg_state)
        if privacy_step is not None:
            self._record_central_privacy(experiment, number, privacy_step, aggregate)
            round_row.metrics = aggregate
        if (config.get("privacy") or {}).get("mode") == "dp_sgd":
            self._record_dp_sgd(experiment, number, train.answers, per_factory, aggregate)
            round_row.metrics = dict(aggregate)
        for name, answer in train.answers.items():
            db.session.add(RoundResult(round=round_row, factory_name=name, num_samples=answer.num_samples,
                                       steps=answer.steps, train_seconds=answer.train_seconds,
                                       metrics=per_factory.get(name, {"train_loss": answer.train_loss})))
        db.session.add(ModelVersion(experiment_id=experiment.id, round_number=number,
                                    weights=weights_to_bytes(new_weights), threshold=threshold))
        round_row.status, round_row.finished_at = RoundStatus.COMPLETED.value, utcnow()
        experiment.current_round = number
        experiment.message = None
        if number >= config["rounds"]:
            experiment.status, experiment.finished_at = ExperimentStatus.COMPLETED.value, utcnow()
            record_audit("scheduler", "experiment.completed", experiment.name, experiment_id=experiment.id)
        db.session.commit()
        log.info("experiment %d round %d done in %.1f s: test_f1=%s dropouts=%s", experiment.id, number,
                 round_row.duration_s, _fmt(aggregate.get("test_f1")), sorted(dropouts) or "none")

    def _record_central_privacy(self, experiment: Experiment, number: int, step: tuple, aggregate: dict) -> None:
        """The accountant's entry for a round that ran, and epsilon so far in the round's metrics. The step does
        not depend on who dropped out: at q = 1 every plant was asked (a dropout is not sampling); a draw at
        q < 1 was accounted when it was made."""
        privacy = experiment.config["privacy"]
        if step[0] != "draw":
            experiment.privacy_history = [*(experiment.privacy_history or []), list(step)]
        spent = epsilon_spent(plant_level_steps(experiment.privacy_history), privacy["delta"])
        aggregate["privacy_epsilon"] = spent
        record_audit("scheduler", "privacy.spent", experiment.name, round=number, epsilon=spent,
                     delta=privacy["delta"], mechanism=privacy.get("mechanism", "gaussian"), step=list(step),
                     sampling_rate=experiment.config.get("sampling_rate", 1.0))

    def _fail_round(self, experiment: Experiment, round_row: Round, dropouts: dict, reason: str) -> None:
        round_row.status, round_row.finished_at = RoundStatus.FAILED.value, utcnow()
        round_row.dropouts, round_row.error = dropouts, reason
        round_row.participants = []
        log.warning("experiment %d round %d attempt %d failed: %s", experiment.id, round_row.number,
                    round_row.attempt, reason)
        if round_row.attempt >= MAX_ATTEMPTS:
            experiment.status, experiment.finished_at = ExperimentStatus.FAILED.value, utcnow()
            experiment.message = f"round {round_row.number} failed {MAX_ATTEMPTS} times; last: {reason}"
            record_audit("scheduler", "experiment.failed", experiment.name, reason=reason)
        else:
            experiment.message = f"round {round_row.number} failed ({reason}); retrying"
        db.session.commit()


def load_state(experiment: Experiment) -> AggregationState:
    arrays = weights_from_bytes(experiment.server_state) if experiment.server_state else {}
    return AggregationState(m=arrays.get("m"), v=arrays.get("v"), h=arrays.get("h"),
                            reputation=dict(experiment.reputation or {}))


def save_state(experiment: Experiment, state: AggregationState) -> None:
    arrays = {k: v for k, v in (("m", state.m), ("v", state.v), ("h", state.h)) if v is not None}
    experiment.server_state = weights_to_bytes(arrays) if arrays else None
    experiment.reputation = state.reputation


def _fmt(value) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)
