"""A whole experiment on in-process plants: round 0 (schema, federated scaler, pooled class weight, initial
model) and every round through the dashboard's own RoundWorkflow, with the state the engine would keep in its
database held here instead, early stopping included (shared.experiment.stopping, as the engine's record stage
decides it). bench/quality.py and the workflow's unit tests run on it.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from dashboard.orchestration.evaluation import Evaluation, evaluate
from dashboard.orchestration.personalization import accepted, personalize, personalize_request
from dashboard.orchestration.preparation import class_weight, global_scaler, merged_schema
from dashboard.orchestration.workflow import RoundPlan, RoundState, RoundWorkflow
from factoryfl_testing.inprocess import InProcessChannel
from shared.errors import AggregationError
from shared.experiment import ExperimentConfig
from shared.experiment.stopping import best_round, stopped_early, validation_f1
from shared.models import build_model, get_weights
from shared.privacy.noise import NoiseSource
from shared.experiment.training import verifiable_strategy
from shared.protocol import (EvaluateRequest, ModelPart, ModelProof, PersonalizeReply, RoundRef, ScalerMsg,
                             StatsRequest)
from shared.strategies import ServerState

log = logging.getLogger(__name__)
_IDS = itertools.count(1)  # each run its own experiment id: plants keep per-experiment ledgers and terms


@dataclass
class Run:
    """One experiment's course: each round's state, each round's model and the evaluation of each round's model."""

    experiment: int
    rounds: list[RoundState] = field(default_factory=list)
    evaluations: dict[int, Evaluation] = field(default_factory=dict)  # round -> its model's scores (0: initial)
    models: dict[int, ModelPart] = field(default_factory=dict)  # round -> its global model (0: initial)
    pos_weight: float | None = None  # the pooled failure class weight of round 0
    stopped_at: int | None = None  # the round after which early stopping ended the experiment
    personalized_from: int | None = None  # the round whose model the plants personalized

    @property
    def model(self) -> ModelPart | None:
        """The last global model."""
        return self.models[max(self.models)] if self.models else None

    @property
    def final(self) -> Evaluation:
        return self.evaluations[max(self.evaluations)]

    def validation_scores(self) -> dict[int, float]:
        """Round (>= 1) -> its model's pooled validation F1, as the engine reads them from its rounds."""
        scores = {r: validation_f1(e.aggregate) for r, e in self.evaluations.items() if r >= 1}
        return {r: s for r, s in scores.items() if s is not None}

    @property
    def best_round(self) -> int | None:
        return best_round(self.validation_scores())


class InProcessFederation:
    """The plants of `channel` as one federation: the dashboard's preparation and round workflow, no database."""

    def __init__(self, channel: InProcessChannel, noise: Callable[[], NoiseSource] | None = None,
                 timeout: float = 3600.0, verified: bool = False):
        """`verified`: relay each plant the proof of the model it computes on, as the engine does
        (dashboard.orchestration.proofs), for plants whose policy verifies models."""
        self.channel = channel
        self.noise = noise or (lambda: np.random.default_rng(0))
        self.timeout = timeout
        self.verified = verified

    def prepare(self, config: ExperimentConfig, experiment: int | None = None) -> ModelPart:
        """Round 0: the merged schema, the global scaler from the plants' statistics, the initial model."""
        return self.round_zero(config, experiment)[0]

    def round_zero(self, config: ExperimentConfig, experiment: int | None = None) -> tuple[ModelPart, float | None]:
        """(the initial model, the pooled failure class weight), as dashboard.orchestration.preparation makes them."""
        experiment = experiment or next(_IDS)
        plants = self.channel.plants.values()
        schema = merged_schema([{"schema": p.data.schema.to_dict()} for p in plants])
        names = tuple(schema.feature_names)
        phase = self.channel.dispatch(self.channel.participants(), lambda p: StatsRequest(experiment, names),
                                      self.timeout)
        if not phase.answers:
            raise AggregationError(f"no plant returned statistics: {phase.dropouts}")
        scaler = global_scaler(phase.answers)
        spec = config.model_spec(len(names))
        return ModelPart(features=names, scaler=ScalerMsg(scaler.mean, scaler.scale), spec=spec,
                         weights=get_weights(build_model(spec, seed=config.seed))), class_weight(phase.answers)

    def run(self, config: ExperimentConfig, names: list[str] | None = None) -> Run:
        """Every round of `config` on the plants `names` (default: all), as the engine runs them."""
        run = Run(next(_IDS))
        model, run.pos_weight = self.round_zero(config, run.experiment)
        run.models[0] = model
        participants = self.channel.participants(names)
        state = ServerState()
        workflow = RoundWorkflow(self.channel, self.noise)
        for number in range(1, config.rounds + 1):
            plan = RoundPlan(ref=RoundRef(run.experiment, number), config=config, model=model,
                             participants=participants, federation_size=len(participants), server_state=state,
                             timeout=self.timeout, pos_weight=run.pos_weight,
                             proofs=self.proofs(run, config, participants, number - 1))
            round_state = workflow.run(plan)
            run.rounds.append(round_state)
            if round_state.incoming is not None:
                run.evaluations[number - 1] = round_state.incoming
            if round_state.outgoing is not None:
                run.evaluations[number] = round_state.outgoing
            model, state = round_state.model, round_state.aggregated.state
            run.models[number] = model
            if number < config.rounds and stopped_early(run.validation_scores(), config.patience):
                run.stopped_at = number
                break
        return run

    def proofs(self, run: Run, config: ExperimentConfig, participants: list, up_to: int) -> dict[str, ModelProof]:
        """Each plant's proof of round `up_to`'s model: every transcript so far (a plant skips those it derived)."""
        strategy = verifiable_strategy(config) if self.verified else None
        if strategy is None:
            return {}
        transcripts = tuple(s.transcript for s in run.rounds if s.transcript is not None and s.plan.ref.round <= up_to)
        return {p.name: ModelProof(seed=config.seed, strategy=strategy, transcripts=transcripts) for p in participants}

    def personalize(self, run: Run, config: ExperimentConfig, names: list[str] | None = None
                    ) -> dict[str, PersonalizeReply]:
        """The personalization step after `run`, as the engine runs it: the plants that trained in the last round
        personalize the best round's model (by pooled validation F1; the last round's without scores); plant ->
        its reply (a plant that refused is left out, as a dropout)."""
        number = run.best_round or max(run.models)
        trained = set(run.rounds[-1].trained) if run.rounds else set()
        participants = [p for p in self.channel.participants(names) if p.name in trained]
        request = personalize_request(config, run.experiment, run.models[number], run.pos_weight)
        phase = personalize(self.channel, participants, request, self.timeout,
                            self.proofs(run, config, participants, number))
        run.personalized_from = number
        return accepted(phase.answers, trained)

    def score(self, model: ModelPart, names: list[str] | None = None) -> Evaluation:
        """Any model's scores on the plants `names` (a fresh experiment id: the plants answer it once)."""
        ref = RoundRef(next(_IDS), 1)
        phase = self.channel.dispatch(self.channel.participants(names), lambda p: EvaluateRequest(ref, model),
                                      self.timeout)
        if not phase.answers:
            raise AggregationError(f"no plant could score the model: {phase.dropouts}")
        return evaluate(phase.answers)
