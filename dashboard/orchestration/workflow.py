"""One federated round (DESIGN §6) as named stages over a typed RoundState:

    configure -> fit -> secure_sum -> aggregate -> evaluate

The engine selects the plants and loads a RoundPlan before (`select`), and records the RoundState after
(`record`); nothing here touches the database, so the same workflow runs on real plants (SyftChannel) and on
in-process plants (InProcessChannel: unit tests, bench/quality.py).

One call per plant per round: the training call also scores the incoming global model (round r-1's) on the
plant's validation and test splits, so its metrics arrive with round r's update; only the last round's model
needs an evaluation call of its own.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from dashboard.errors import RoundFailed
from dashboard.orchestration.channel import Participant, PhaseResult, PlantChannel
from dashboard.orchestration.evaluation import Evaluation, evaluate
from dashboard.orchestration.transcripts import transcript_of, with_round
from dashboard.orchestration.secure import secure_sum
from shared.aggregation.base import ClientUpdate
from shared.errors import FederatedLearningError
from shared.experiment import ExperimentConfig
from shared.experiment.training import plant_training, secure_setup, strategy_for
from shared.privacy.noise import NoiseSource
from shared.protocol import (EvaluateRequest, ModelPart, ModelProof, RoundRef, RoundTranscript, SecAggRequest,
                             TrainReply, TrainRequest)
from shared.strategies import Aggregated, FitConfig, ServerState, Strategy

log = logging.getLogger(__name__)
BUDGET_REFUSAL = "privacy budget exhausted"  # what a plant's DP ledger says when it refuses to train

Progress = Callable[[str], Callable[[str, bool], None] | None]


@dataclass(frozen=True)
class RoundPlan:
    """What the engine loads for a round: who takes part, from which model, under which settings."""

    ref: RoundRef
    config: ExperimentConfig
    model: ModelPart  # the incoming global model (round r-1's aggregate)
    participants: list[Participant]
    federation_size: int  # eligible plants (FedDyn's server term and SCAFFOLD's c divide by it)
    server_state: ServerState
    timeout: float
    pos_weight: float | None = None  # the federation's failure class weight from round 0 (None: each plant's own)
    revocations: object | None = None  # shared.membership.RevocationList: the newest the dashboard relays
    # plant -> how it derives the incoming model itself (shared.verification); empty when the round is unverifiable
    proofs: dict[str, ModelProof] = field(default_factory=dict)

    @property
    def final(self) -> bool:
        return self.ref.round >= self.config.rounds


@dataclass
class RoundState:
    """What the stages know so far; `incoming` is the incoming model's evaluation, `outgoing` the new
    model's (last round only)."""

    plan: RoundPlan
    aggregator: Strategy | None = None  # the round's strategy (configure)
    fit: FitConfig | None = None  # its part of every plant's training request
    secagg: SecAggRequest | None = None
    trained: dict[str, TrainReply] = field(default_factory=dict)
    dropouts: dict[str, str] = field(default_factory=dict)
    revealed_by: list[str] = field(default_factory=list)
    summed: object | None = None
    aggregated: Aggregated | None = None
    strategy: str = ""  # what aggregated, e.g. "fedavg", "median(fedprox)", "fedadam(fednova)"
    incoming: Evaluation | None = None
    outgoing: Evaluation | None = None
    transcript: RoundTranscript | None = None  # the secure sum as its members signed it (kept with the new model)

    @property
    def model(self) -> ModelPart:
        """The new global model (after `aggregate`)."""
        return ModelPart(features=self.plan.model.features, scaler=self.plan.model.scaler,
                         spec=self.plan.model.spec, weights=self.aggregated.weights)


class RoundWorkflow:
    STAGES = ("configure", "fit", "secure_sum", "aggregate", "evaluate")

    def __init__(self, channel: PlantChannel, noise: Callable[[], NoiseSource], progress: Progress | None = None):
        self.channel = channel
        self.noise = noise  # central DP noise: the OS's CSPRNG in production, a seeded source in a bench
        self.progress = progress or (lambda phase: None)

    def run(self, plan: RoundPlan) -> RoundState:
        state = RoundState(plan)
        for stage in self.STAGES:
            getattr(self, stage)(state)
        return state

    # --- the stages -----------------------------------------------------------------------------
    def configure(self, state: RoundState) -> None:
        """The round's strategy and its part of every training request (Flower's configure_fit), and under
        secure aggregation its setup for this cohort (the part that asks for a masked update)."""
        plan = state.plan
        try:
            state.aggregator = strategy_for(plan.config, plan.federation_size)
            state.fit = state.aggregator.configure_fit(plan.model.weights, plan.server_state)
            if plan.config.secure_aggregation:
                state.secagg = replace(secure_setup(plan.config, {p.name: p.public_key for p in plan.participants},
                                                    strategy=state.aggregator),
                                       certificates={p.name: p.certificate.to_wire() for p in plan.participants
                                                     if p.certificate is not None},
                                       revocations=plan.revocations.to_wire() if plan.revocations else None)
        except FederatedLearningError as exc:
            raise RoundFailed(str(exc), state) from exc

    def train_request(self, state: RoundState, index: int) -> TrainRequest:
        plan = state.plan
        if state.fit is None:  # asked before the round's stages ran (a test, a bench)
            self.configure(state)
        train = plant_training(plan.config, plan.ref.round, index, plan.pos_weight, state.fit)
        return TrainRequest(ref=plan.ref, model=plan.model, train=train, secagg=state.secagg, evaluate=True,
                            control=state.fit.control, proof=plan.proofs.get(plan.participants[index].name))

    def fit(self, state: RoundState) -> None:
        """Every plant trains from the incoming model (and scores it first); a failure is a dropout."""
        plan = state.plan
        order = {p.name: i for i, p in enumerate(plan.participants)}
        phase = self.channel.dispatch(plan.participants, lambda p: self.train_request(state, order[p.name]),
                                      plan.timeout, self.progress("training"))
        state.trained, state.dropouts = dict(phase.answers), dict(phase.dropouts)
        scored = {n: a.evaluation for n, a in phase.answers.items() if a.evaluation is not None}
        if scored:
            state.incoming = evaluate(scored)
        minimum = plan.config.min_factories
        if len(state.trained) < minimum:
            refused = sorted(n for n, why in state.dropouts.items() if BUDGET_REFUSAL in why)
            raise RoundFailed(f"only {len(state.trained)} of at least {minimum} plants returned an update", state,
                              refused)

    def secure_sum(self, state: RoundState) -> None:
        """Under secure aggregation the survivors reveal the shares that remove the masks from their sum."""
        if state.secagg is None:
            return
        plan = state.plan
        try:
            state.summed, phase = secure_sum(self.channel, plan.participants, plan.ref, state.secagg,
                                             state.trained, plan.timeout, self.progress("unmasking"))
        except FederatedLearningError as exc:
            raise RoundFailed(str(exc), state) from exc
        state.dropouts.update({k: f"unmasking: {v}" for k, v in phase.dropouts.items()})
        state.revealed_by = sorted(phase.answers)
        state.transcript = transcript_of(plan, state.secagg, state.trained, phase.answers)

    def aggregate(self, state: RoundState) -> None:
        plan = state.plan
        strategy = state.aggregator
        state.strategy, weights = strategy.name, plan.model.weights
        try:
            if state.summed is not None:
                state.aggregated = strategy.aggregate_sum(weights, state.summed, plan.server_state, self.noise())
            else:
                updates = [ClientUpdate(factory=n, weights=a.weights, num_samples=a.num_samples, steps=a.steps,
                                        control=a.control_delta) for n, a in sorted(state.trained.items())]
                state.aggregated = strategy.aggregate(weights, updates, plan.server_state, self.noise())
        except FederatedLearningError as exc:
            raise RoundFailed(str(exc), state) from exc

    def evaluate(self, state: RoundState) -> None:
        """The last round's model is scored by the plants that trained it (every other round's model is
        scored by the next round's training calls)."""
        if not state.plan.final:
            return
        trained = [p for p in state.plan.participants if p.name in state.trained]
        phase = self.channel.dispatch(trained, lambda p: EvaluateRequest(
            state.plan.ref, state.model, proof=with_round(state.plan.proofs.get(p.name), state.transcript)),
            state.plan.timeout, self.progress("evaluating"))
        state.dropouts.update({k: f"evaluation: {v}" for k, v in phase.dropouts.items()})
        if not phase.answers:
            raise RoundFailed("no plant could evaluate the new model", state)
        state.outgoing = evaluate(phase.answers)
