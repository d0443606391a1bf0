"""The plant's own policy (DESIGN §9): what this data owner allows, whatever the dashboard asks.

The agent resolves it once at start-up (flag > FACTORY_* variable > `policy.yaml` in the state folder >
default), prints it, reports it at registration and writes the effective policy into the state folder,
where the datasite's `fl_step` reads it before every call. The checks are pure functions of the policy and
a typed request; the ledgers they need (masks, calls, privacy budget) live in `PlantState`.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from shared import model_cost
from shared.errors import ConfigurationError, PolicyRefusal
from shared.model_spec import ModelSpec
from shared.protocol import SecAggRequest, TrainRequest

log = logging.getLogger(__name__)

DEFAULT_EVALUATION_NOISE = 10.0  # 20 evaluations cost about epsilon 2 at delta 1e-5


@dataclass(frozen=True)
class PlantPolicy:
    require_secure_aggregation: bool = False  # refuse to release an update that is not masked
    require_dp: bool = False  # refuse training without record-level DP-SGD at this plant
    min_noise_multiplier: float = 0.5  # the least DP-SGD noise accepted (a smaller ask is raised to it)
    max_epsilon: float = 10.0  # the largest target epsilon one experiment may ask of this plant (DP-SGD)
    lifetime_epsilon: float = 20.0  # every DP-SGD release this plant ever makes, composed (RDP), at most this
    dp_delta: float = 1e-5  # the delta the lifetime budget is accounted at; no experiment may ask a larger one
    min_cohort: int = 3  # the fewest plants in a secure-aggregation round (README: with 2, each update follows from the next model)
    min_threshold: int = 2  # the smallest Shamir threshold accepted (and always more than half the cohort)
    max_model_parameters: int = 2_000_000
    max_local_epochs: int = 20
    max_personal_epochs: int = 120  # a personalization's fine-tune and local-only model together, in epochs
    # a personalization's smallest batch: its work is at most max_personal_epochs x ceil(n / this) steps (7.5 n by
    # default), below the heaviest training call's max_local_epochs x n at batch 1 (review L1)
    min_personal_batch: int = 16
    # DP-SGD holds one gradient per example of a batch: expected batch x model parameters, at most this many
    # values (200 MB of float32), so that no request's batch can exhaust the plant's memory
    max_dp_batch_values: int = 50_000_000
    # work bounded by cost, not parameters (shared.model_cost; README, Plant policy): a model may name at most this
    # many features the plant lacks (each read as 0, all work and no information; the 30-category cap of a CSV
    # column, and a few more)
    max_missing_features: int = 32
    # one example's forward pass (a row or a window), in floating-point operations: 200x the largest default model
    max_example_flops: float = 1e8
    # the activation values one batch holds (256 MiB of float32; a training batch twice its forward values):
    # evaluation runs in batches sized to it, a training batch above it is refused
    max_batch_values: int = 64_000_000
    # every pass of one request (training epochs x rows x 3, scoring rows x 1), in floating-point operations:
    # minutes of one CPU core; the bench's largest request, a 120-epoch personalization, is 2e12
    max_request_flops: float = 1e13
    max_attempts: int = 5  # attempts of one round; each attempt trains (and masks) at most once
    min_release_rows: int = 10  # no statistic, and no histogram group, over fewer rows than this
    scaler_tolerance: float = 10.0  # a global scaler may differ from this plant's own statistics by this factor
    max_calls_per_hour: int = 600
    # > 0: every evaluation is a Gaussian release with this noise multiplier, charged to the DP ledger; 0 with
    # require_dp means DEFAULT_EVALUATION_NOISE, 0 without it: exact evaluation (README, Threat model)
    evaluation_noise: float = 0.0
    # the dashboard's registry decides the secure-aggregation cohort (today's behaviour, for a plant whose owner runs
    # the dashboard); false: only members certified by the pinned federation key (shared.membership)
    trust_dashboard: bool = False
    # train, evaluate and personalize only models this plant derived itself from the experiment's public seed and
    # the members' signed transcripts of each secure sum (factory_agent.plant.verification; README, Verified
    # rounds); implies secure aggregation. On by default (issue 24: the dashboard does not choose what a plant
    # computes on); off under trust_dashboard, whose owner trusts the dashboard's models, or `--verify-models no`
    verify_models: bool = True
    # heartbeats name each alert's machine and peak probability (off: only its id, times and model leave the plant;
    # the detail stays at the plant's loopback GET /alerts/<id>; README, Plant floor)
    share_alert_details: bool = False

    def __post_init__(self) -> None:
        problems = []
        if self.min_threshold < 2:
            problems.append("min_threshold must be at least 2")
        if self.min_cohort < 2:
            problems.append("min_cohort must be at least 2 (a cohort of one is that plant's own update)")
        for name in ("max_model_parameters", "max_local_epochs", "max_personal_epochs", "min_personal_batch",
                     "max_attempts",
                     "min_release_rows", "max_calls_per_hour", "max_dp_batch_values"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be at least 1")
        for name in ("max_example_flops", "max_batch_values", "max_request_flops"):
            if not getattr(self, name) >= 1:
                problems.append(f"{name} must be at least 1")
        if self.max_missing_features < 0:
            problems.append("max_missing_features must not be negative")
        if not 0 < self.dp_delta < 1:
            problems.append("dp_delta must be between 0 and 1")
        for name in ("min_noise_multiplier", "max_epsilon", "lifetime_epsilon", "evaluation_noise"):
            if not getattr(self, name) >= 0:
                problems.append(f"{name} must not be negative")
        if not self.scaler_tolerance >= 1:
            problems.append("scaler_tolerance must be at least 1")
        if problems:
            raise ConfigurationError("plant policy: " + "; ".join(problems))

    @property
    def effective_evaluation_noise(self) -> float:
        """The noise multiplier of every evaluation this plant releases (0: exact)."""
        if self.evaluation_noise > 0:
            return self.evaluation_noise
        return DEFAULT_EVALUATION_NOISE if self.require_dp else 0.0

    @property
    def verifies_models(self) -> bool:
        """Whether every model this plant computes on must be one it derived itself."""
        return self.verify_models and not self.trust_dashboard

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict, source: str = "policy") -> "PlantPolicy":
        known = {f.name: f for f in fields(cls)}
        unknown = set(d) - set(known)
        if unknown:
            raise ConfigurationError(f"{source}: unknown setting(s) {sorted(unknown)}; known: {sorted(known)}")
        values = {}
        for name, value in d.items():
            kind = known[name].type
            try:
                values[name] = _coerce(value, kind)
            except (TypeError, ValueError) as exc:
                raise ConfigurationError(f"{source}: {name}={value!r} is not a {kind}") from exc
        return cls(**values)

    def describe(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.to_dict().items())


def _coerce(value, kind: str):
    if kind == "bool":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off"):
            return False
        raise ValueError(value)
    if isinstance(value, bool):
        raise TypeError(value)
    return int(value) if kind == "int" else float(value)


def load_policy(path: Path, overrides: dict) -> PlantPolicy:
    """Defaults, then the `policy.yaml` at `path` (factory_agent.plant.state.policy_file: in the state folder),
    then explicit flags / FACTORY_* variables."""
    import yaml

    values: dict = {}
    if path.exists():
        try:
            loaded = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigurationError(f"{path}: not valid YAML ({exc})") from exc
        if not isinstance(loaded, dict):
            raise ConfigurationError(f"{path}: expected a mapping of policy settings")
        values.update(loaded)
    values.update({k: v for k, v in overrides.items() if v is not None})
    return PlantPolicy.from_dict(values, source=str(path) if path.exists() else "policy flags")


# --- checks: each returns nothing or raises PolicyRefusal naming the rule ------------------------------

def check_secagg(policy: PlantPolicy, secagg: SecAggRequest, me: str, my_public_key: str,
                 trusted_peers: dict[str, str] | None = None) -> None:
    """The cohort this plant masks for, as the plant sees it: itself with its own key, enough plants, and a
    threshold above half the cohort, so that no minority of holders can open a single plant's masks. With the
    data owner's list of trusted peers, every other participant must be on it with that key: whoever holds
    the keys of t participants can open this plant's shares, so invented participants are a full unmask."""
    n = len(secagg.participants)
    if secagg.participants.get(me) != my_public_key:
        raise PolicyRefusal(f"the round's participant list does not hold this plant ({me}) with its own key")
    if trusted_peers is not None:
        strangers = sorted(name for name, key in secagg.participants.items()
                           if name != me and trusted_peers.get(name) != key)
        if strangers:
            raise PolicyRefusal(f"participant(s) {strangers[:5]} are not on this plant's trusted peers list "
                                "(trusted_peers.yaml) with the key given")
    if n < policy.min_cohort:
        raise PolicyRefusal(f"secure aggregation over {n} plants; this plant's policy needs at least "
                            f"{policy.min_cohort}")
    if not n // 2 < secagg.threshold <= n:
        raise PolicyRefusal(f"threshold {secagg.threshold} of {n}: it must be more than half the cohort "
                            f"({n // 2 + 1} or more) and at most {n}")
    if secagg.threshold < policy.min_threshold:
        raise PolicyRefusal(f"threshold {secagg.threshold} is below this plant's minimum {policy.min_threshold}")


def check_train(policy: PlantPolicy, request: TrainRequest, parameters: int) -> None:
    if (policy.require_secure_aggregation or policy.verifies_models) and request.secagg is None:
        raise PolicyRefusal("this plant's policy requires secure aggregation: it releases no unmasked update")
    if request.ref.attempt > policy.max_attempts:
        raise PolicyRefusal(f"attempt {request.ref.attempt} of round {request.ref.round}: this plant allows "
                            f"{policy.max_attempts} attempts per round")
    if request.train.epochs > policy.max_local_epochs:
        raise PolicyRefusal(f"{request.train.epochs} local epochs; this plant allows at most {policy.max_local_epochs}")
    check_model_size(policy, parameters)
    train = request.train
    if policy.require_dp and not train.dp_sgd:
        raise PolicyRefusal("this plant's policy requires record-level DP (DP-SGD) for every training round")
    if train.dp_sgd and train.dp_delta > policy.dp_delta:
        raise PolicyRefusal(f"delta {train.dp_delta} is above this plant's {policy.dp_delta}")
    if train.dp_sgd and request.model.spec.is_sequence:
        raise PolicyRefusal("record-level DP-SGD is for row models: a window of a sequence model holds up to "
                            f"{request.model.spec.sequence_length} rows, which one example's clipping does not cover")
    if train.dp_sgd and train.dp_target_epsilon is not None and train.dp_target_epsilon > policy.max_epsilon:
        raise PolicyRefusal(f"target epsilon {train.dp_target_epsilon} is above this plant's maximum "
                            f"{policy.max_epsilon}")
    if train.dp_sgd and train.dp_target_epsilon is None and train.dp_noise_multiplier < policy.min_noise_multiplier:
        raise PolicyRefusal(f"noise multiplier {train.dp_noise_multiplier} is below this plant's minimum "
                            f"{policy.min_noise_multiplier}")


def check_dp_batch(policy: PlantPolicy, expected_batch: int, parameters: int) -> None:
    """DP-SGD's per-sample gradients (expected batch x parameters values) within max_dp_batch_values."""
    if expected_batch * parameters > policy.max_dp_batch_values:
        raise PolicyRefusal(f"a DP-SGD batch of {expected_batch} examples x {parameters} parameters holds "
                            f"{expected_batch * parameters} per-sample gradient values; this plant allows at most "
                            f"{policy.max_dp_batch_values}: lower privacy.batch_size to "
                            f"{max(policy.max_dp_batch_values // parameters, 1)} or less")


def check_model_size(policy: PlantPolicy, parameters: int) -> None:
    if parameters > policy.max_model_parameters:
        raise PolicyRefusal(f"the model has {parameters} parameters; this plant allows at most "
                            f"{policy.max_model_parameters}")


def check_features(policy: PlantPolicy, requested, own) -> None:
    """A model over features this plant lacks reads each as 0: work without information, and the widest lever on
    a request's cost (issue 24: 4,096 absent features). At most max_missing_features of them."""
    mine = set(own)
    lacking = [name for name in requested if name not in mine]
    if len(lacking) > policy.max_missing_features:
        raise PolicyRefusal(f"the model names {len(lacking)} features this plant lacks (such as "
                            f"{', '.join(ascii(n)[:40] for n in lacking[:3])}); it allows at most "
                            f"{policy.max_missing_features} (max_missing_features)")


@dataclass(frozen=True)
class Work:
    """What a request asks the plant to run, in examples (rows, or windows of a sequence model): forward passes
    to score, training passes (epochs x examples) and the training batch (0: no training)."""

    scored: int
    trained: int = 0
    batch: int = 0


def check_work(policy: PlantPolicy, spec: ModelSpec, work: Work) -> None:
    """The request's cost (shared.model_cost) within the policy, told from the spec and the row counts alone:
    refused before any array or tensor is made."""
    cost = model_cost.example_cost(spec)
    if cost.flops > policy.max_example_flops:
        raise PolicyRefusal(f"one example through this model takes {cost.flops:.3g} floating-point operations; this "
                            f"plant allows at most {policy.max_example_flops:.3g} (max_example_flops)")
    if cost.values > policy.max_batch_values:
        raise PolicyRefusal(f"one example through this model holds {cost.values} activation values; this plant "
                            f"allows at most {policy.max_batch_values} in a batch (max_batch_values)")
    if work.batch and model_cost.batch_values(spec, work.batch, training=True) > policy.max_batch_values:
        largest = policy.max_batch_values // (cost.values * model_cost.TRAINING_VALUES)
        raise PolicyRefusal(f"a training batch of {work.batch} examples holds "
                            f"{model_cost.batch_values(spec, work.batch, training=True)} activation values; this "
                            f"plant allows at most {policy.max_batch_values} (max_batch_values): lower batch_size "
                            f"to {max(largest, 1)} or less")
    total = model_cost.evaluation_flops(spec, work.scored) + model_cost.training_flops(spec, work.trained, 1)
    if total > policy.max_request_flops:
        raise PolicyRefusal(f"the request takes {total:.3g} floating-point operations ({work.trained} training and "
                            f"{work.scored} scoring passes over examples); this plant allows at most "
                            f"{policy.max_request_flops:.3g} (max_request_flops)")


def evaluation_batch(policy: PlantPolicy, spec: ModelSpec, largest: int) -> int:
    """How many examples one scoring batch holds within max_batch_values (at most `largest`)."""
    return model_cost.evaluation_batch(spec, policy.max_batch_values, largest)


def check_rows(policy: PlantPolicy, rows: int, what: str) -> None:
    if rows < policy.min_release_rows:
        raise PolicyRefusal(f"{what} has {rows} rows; this plant releases nothing over fewer than "
                            f"{policy.min_release_rows}")


def releasable_count(policy: PlantPolicy, count: int, total: int) -> int | None:
    """A count of `total` rows (the failures of the training split) as the plant releases it: withheld (None)
    when it, or the rows it leaves out, number fewer than min_release_rows: one number over a handful of
    records would say too much about each of them."""
    if count < policy.min_release_rows or total - count < policy.min_release_rows:
        return None
    return count
