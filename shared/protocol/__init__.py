"""The closed protocol between the dashboard and a plant's vetted `fl_step` (DESIGN §6, §9).

Typed requests and replies, one package for both sides. A dict exists only on the wire (PySyft carries
plain dicts of numbers, strings and numpy arrays); `parse_request` turns the wire form into a typed request
and validates every field as hostile before the plant does any work (habit 17: the dashboard chooses these
values, the plant owns the guarantee). `parse_reply` does the same for the dashboard with a plant's answer.

Four operations:
- `stats`: aggregate feature statistics (count, sum, sum of squares) of the plant's training split;
- `train`: local training from the global weights; the update leaves masked under secure aggregation. With
  `evaluate`, the plant first scores the model it trains from (round r-1's) and returns those scores with the
  update: one call per plant per round (the last round's model gets an `evaluate` call of its own);
- `evaluate`: loss, ROC-AUC and coarse score histograms on the validation and test splits;
- `secagg_reveal`: the shares this plant holds for the round's survivors;
- `personalize`: once after the last round, the plant fine-tunes the final global model on its own data, trains a
  local-only model, and answers the three models' validation scores; both new models stay at the plant.

Modules: `fields` (validators of wire values, and the one plant-name rule), `parts` (what requests are built of),
`requests`, `replies`, `personalize` (the personalization request and reply); and, between the agent and the
dashboard's HTTP API, `registry` (Registration, Heartbeat, FloorReport) with its field readers `registry_fields`.
"""

from shared.protocol.fields import (MAX_FEATURES, MAX_ID, MAX_NAME, MAX_PLANTS, MAX_WEIGHT_ARRAYS,
                                    weights_of)
from shared.protocol.parts import WEIGHTINGS, ModelPart, RoundRef, ScalerMsg, SecAggRequest, TrainSettings
from shared.protocol.personalize import ModelScores, PersonalizeReply, PersonalizeRequest
from shared.protocol.replies import (DPReport, EvaluateReply, Reply, RevealReply, SplitEvaluation, StatsReply,
                                     TrainReply, parse_reply, refusal)
from shared.protocol.requests import (OPS, EvaluateRequest, Request, RevealRequest, StatsRequest, TrainRequest,
                                      parse_request)
from shared.protocol.transcript import Contribution, ModelProof, Reveal, RoundTranscript

__all__ = ["Contribution", "ModelProof", "Reveal", "RoundTranscript", "MAX_FEATURES", "MAX_ID", "MAX_NAME", "MAX_PLANTS", "MAX_WEIGHT_ARRAYS", "OPS", "WEIGHTINGS",
           "DPReport", "EvaluateReply", "EvaluateRequest", "ModelPart", "ModelScores",
           "PersonalizeReply", "PersonalizeRequest", "Reply", "Request", "RevealReply",
           "RevealRequest", "RoundRef", "ScalerMsg", "SecAggRequest", "SplitEvaluation", "StatsReply",
           "StatsRequest", "TrainReply", "TrainRequest", "TrainSettings", "parse_reply", "parse_request",
           "refusal", "weights_of"]
