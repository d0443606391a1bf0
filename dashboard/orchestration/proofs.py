"""The proofs the dashboard relays so that plants can verify the models they compute on (shared.verification):
each secure round's transcript (dashboard.orchestration.transcripts), kept beside the model it made
(ModelVersion.transcript), and for each plant the transcripts of the rounds it may not have derived yet. The
dashboard chooses nothing here that a plant takes on trust: a transcript that does not check is refused there."""

from __future__ import annotations

from dashboard.extensions import db
from dashboard.models import Experiment, ModelVersion, Round
from shared.enums import RoundStatus
from shared.experiment.training import verifiable_strategy
from shared.protocol import ModelProof, RoundTranscript


def proofs_for(experiment: Experiment, names: list[str], up_to: int) -> dict[str, ModelProof]:
    """Per plant, the seed, the strategy and the transcripts of rounds from the last one it trained in up to
    `up_to` (a plant skips those it derived before); {} when the experiment's rounds cannot be verified."""
    config = experiment.settings
    strategy = verifiable_strategy(config)
    if strategy is None:
        return {}
    rows = db.session.scalars(db.select(Round).filter_by(experiment_id=experiment.id,
                                                         status=RoundStatus.COMPLETED.value)).all()
    last_trained = {}
    for row in rows:
        for name in row.participants or []:
            last_trained[name] = max(last_trained.get(name, 0), row.number)
    versions = db.session.scalars(db.select(ModelVersion).filter(
        ModelVersion.experiment_id == experiment.id, ModelVersion.round_number >= 1,
        ModelVersion.round_number <= up_to).order_by(ModelVersion.round_number)).all()
    transcripts = {v.round_number: RoundTranscript.from_bytes(v.transcript) for v in versions
                   if v.transcript is not None}
    proofs = {}
    for name in names:
        start = max(last_trained.get(name, 1), 1)
        proofs[name] = ModelProof(seed=config.seed, strategy=strategy, transcripts=tuple(
            transcripts[r] for r in sorted(transcripts) if r >= start))
    return proofs
