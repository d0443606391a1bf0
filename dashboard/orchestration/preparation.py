"""Round 0 of an experiment: the merged feature schema, the plants' feature statistics combined into the
global scaler every plant uses, the failure class's weight pooled from the plants' counts (kept beside the
scaler, as "pos_weight"), and the initial model (version 0). Its scores arrive with round 1's training
calls, which evaluate the model they train from."""

from __future__ import annotations

import logging

from dashboard.extensions import db
from dashboard.models import Experiment, Factory, ModelVersion
from dashboard.orchestration.channel import Participant, PlantChannel
from shared.data.scaler import FeatureStats, Scaler, combine_stats
from shared.data.schema import FeatureSchema, merge_schemas
from shared.errors import AggregationError
from shared.models import build_model, get_weights
from shared.protocol import StatsReply, StatsRequest
from shared.serialization import weights_to_bytes
from shared.training import pooled_pos_weight

log = logging.getLogger(__name__)


def merged_schema(capabilities: list[dict]) -> FeatureSchema:
    return merge_schemas([FeatureSchema.from_dict(c["schema"]) for c in capabilities])


def global_scaler(answers: dict[str, StatsReply]) -> Scaler:
    """The plants' feature statistics, combined into the scaler every plant uses."""
    if not answers:
        raise AggregationError("no plant returned feature statistics")
    return Scaler.from_stats(combine_stats([FeatureStats(a.count, a.sum, a.sum_sq) for a in answers.values()]))


def class_weight(answers: dict[str, StatsReply]) -> float | None:
    """The federation's failure weight (negatives / positives of the plants' training rows, capped) over the
    plants that released their count of failures; None when none did (each plant then uses its own ratio)."""
    return pooled_pos_weight([(a.count, a.positives) for a in answers.values() if a.positives is not None])


def prepare(channel: PlantChannel, experiment: Experiment, factories: list[Factory],
            participants: list[Participant], timeout: float) -> str | None:
    """Round 0; returns what it waits for when too few plants answered, else None."""
    config = experiment.settings
    schema = merged_schema([f.capabilities for f in factories])
    names = schema.feature_names
    request = StatsRequest(experiment.id, tuple(names))
    phase = channel.dispatch(participants, lambda p: request, timeout)
    if len(phase.answers) < config.min_factories:
        return f"feature statistics: only {len(phase.answers)} plant(s) answered; dropouts: {phase.dropouts}"
    scaler = global_scaler(phase.answers)
    weights = get_weights(build_model(config.model_spec(len(names)), seed=config.seed))
    pos_weight = class_weight(phase.answers)
    experiment.schema, experiment.scaler = schema.to_dict(), {**scaler.to_dict(), "pos_weight": pos_weight}
    db.session.add(ModelVersion(experiment_id=experiment.id, round_number=0, weights=weights_to_bytes(weights),
                                threshold=0.5))
    experiment.message = (f"global scaler from {sum(a.count for a in phase.answers.values())} "
                          f"training rows of {len(phase.answers)} plants; {len(names)} features; failure class "
                          f"weight {'%.2f' % pos_weight if pos_weight else 'withheld by every plant (each its own)'}")
    db.session.commit()
    log.info("experiment %d: %s", experiment.id, experiment.message)
    return None
