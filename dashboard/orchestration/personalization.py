"""The personalization step (issue #15 item 4), once after an experiment's last round (or when early stopping ends
it): every plant that trained in the last round gets a PersonalizeRequest on the best round's global model (by
pooled validation F1) and answers its three models' scores (shared.protocol.personalize). Nothing here touches
the database: the engine records the answers (dashboard.orchestration.recording.record_personalization); the
in-process federation (factoryfl_testing) runs the same step."""

from __future__ import annotations

import logging
from dataclasses import replace

from dashboard.orchestration.channel import Participant, PhaseResult, PlantChannel
from shared.experiment.training import personal_training
from shared.enums import Personalization
from shared.experiment import ExperimentConfig
from shared.protocol import ModelPart, ModelProof, PersonalizeReply, PersonalizeRequest

log = logging.getLogger(__name__)


def wanted(config: ExperimentConfig) -> bool:
    return config.personalization != Personalization.NONE.value


def personalize_request(config: ExperimentConfig, experiment: int, model: ModelPart,
                        pos_weight: float | None) -> PersonalizeRequest:
    """The one request every plant gets: the model, the mode, the fine-tune's settings, the local-only epochs."""
    train, local_epochs = personal_training(config, pos_weight)
    return PersonalizeRequest(experiment=experiment, model=model, mode=config.personalization, train=train,
                              local_epochs=local_epochs)


def personalize(channel: PlantChannel, participants: list[Participant], request: PersonalizeRequest,
                timeout: float, proofs: dict[str, ModelProof] | None = None) -> PhaseResult:
    """Ask every participant (with its proof of the model, when the experiment's rounds are verifiable); a plant
    that refuses or fails is a dropout (its reason kept), not an error. The answers are typed PersonalizeReply
    (the channel parsed them against the request)."""
    proofs = proofs or {}
    phase = channel.dispatch(participants, lambda p: replace(request, proof=proofs.get(p.name)), timeout)
    for name, why in phase.dropouts.items():
        log.warning("experiment %d: %s did not personalize: %s", request.experiment, name, why)
    return phase


def accepted(answers: dict[str, object], participants: set[str]) -> dict[str, PersonalizeReply]:
    """The answers the dashboard records: typed replies from plants that took part in the experiment; anything
    else (a name that never trained in it, a reply of another kind) is dropped and logged."""
    out = {}
    for name, reply in answers.items():
        if name not in participants:
            log.warning("refused a personalization result for %r: that plant took no part in the experiment",
                        str(name)[:120])
            continue
        if not isinstance(reply, PersonalizeReply):
            log.warning("refused a personalization result for %r: not a personalization reply", str(name)[:120])
            continue
        out[name] = reply
    return out
