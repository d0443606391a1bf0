"""The pre-flight check of an experiment (issue 27, item 2): before anything is stored or started, what each chosen
plant will refuse and why, read against what it reported (its policy, its trust mode, its data), and the body's
field errors all at once. Pure: the registry's facts come in as PlantFacts (dashboard.services.experiments reads
them); POST /api/experiments/preflight and the form's Check button show the answer.

What a plant reports only decides what the dashboard says early: the plant enforces its own policy on every
request (factory_agent.plant.policy holds the rules these mirror). One definition of each rule: the trust refusals
are shared.experiment.trust's, the unknown-plant rule below is also what creation refuses (`parse`)."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

from shared.enums import FactoryStatus, ModelType
from shared.errors import ModelError, ValidationError
from shared.experiment import parse_experiment
from shared.experiment.config import ExperimentConfig
from shared.experiment.training import local_training
from shared.experiment.trust import TRUST_FIELD, PlantTrust, reasons, smallest_round
from shared.model_cost import example_cost
from shared.model_spec import parameter_count
from shared.verification.chain import VERIFIABLE_ALGORITHMS, VERIFIABLE_OPTIMIZERS

SERVING = (FactoryStatus.ONLINE.value, FactoryStatus.BUSY.value)
MAX_LISTED = 8  # registered names an unknown-plant error lists when none is close
MAX_SUGGESTED = 20  # unknown names answered one by one; the rest are counted


@dataclass(frozen=True)
class PlantFacts:
    """One registered plant as its registration and heartbeats reported it."""

    name: str
    status: str
    trust: PlantTrust
    policy: dict = field(default_factory=dict)  # the plant's policy, flat scalars (PlantPolicy.to_dict)
    capabilities: dict = field(default_factory=dict)  # supported_models, num_samples, features, data_type
    decommissioned: bool = False

    @property
    def online(self) -> bool:
        return self.status in SERVING and not self.decommissioned

    @property
    def features(self) -> int | None:
        names = self.capabilities.get("features")
        return len(names) if isinstance(names, list) and names else None

    def shape(self) -> str:
        """Its data in a few words, as the form's plant list shows it."""
        rows, kind = self.capabilities.get("num_samples"), self.capabilities.get("data_type")
        parts = [f"{rows} rows" if isinstance(rows, int) else "rows unknown",
                 f"{self.features} features" if self.features else "features unknown",
                 "group/time column" if kind == "time_series" else "rows only (no group or time column)"]
        return ", ".join(parts)


@dataclass(frozen=True)
class Refusal:
    plant: str
    reason: str
    field: str  # the setting to change (shared.experiment's dotted name)

    def to_dict(self) -> dict:
        return {"plant": self.plant, "reason": self.reason, "field": self.field}


@dataclass(frozen=True)
class Preflight:
    errors: list[tuple[str, str]] = field(default_factory=list)  # (field, reason): every problem of the body
    refusals: list[Refusal] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors and not self.refusals

    def to_dict(self) -> dict:
        return {"ok": self.ok, "errors": [{"field": f, "reason": r} for f, r in self.errors],
                "refusals": [r.to_dict() for r in self.refusals], "warnings": list(self.warnings)}


def listed(body: object) -> list[str]:
    """The plant names a body lists (none for "all" or a malformed list: parsing names that problem)."""
    names = body.get("factories") if isinstance(body, dict) else None
    return [n for n in names if isinstance(n, str)] if isinstance(names, list) else []


def unknown_plants(names: list[str], registered: list[str]) -> list[ValidationError]:
    """A listed name the registry does not hold: a typo would wait forever for a plant that never comes. Each one
    is an error under "factories", with the closest registered name."""
    found, lower, known = [], {r.lower(): r for r in registered}, set(registered)  # case is a typo too
    unknown = [name for name in names if name not in known]
    for name in unknown[:MAX_SUGGESTED]:
        close = [lower[c] for c in difflib.get_close_matches(name[:200].lower(), list(lower), n=1, cutoff=0.6)]
        hint = (f"did you mean {close[0]!r}?" if close else
                f"registered: {', '.join(registered[:MAX_LISTED])}{' …' if len(registered) > MAX_LISTED else ''}"
                if registered else "no plant has registered yet")
        found.append(ValidationError(TRUST_FIELD, f"{name[:120]!r} is not a registered plant; {hint}"))
    if len(unknown) > MAX_SUGGESTED:
        found.append(ValidationError(TRUST_FIELD, f"and {len(unknown) - MAX_SUGGESTED} more names that are not "
                                                  "registered plants"))
    return found


def parse(body: object, registered: list[str]) -> ExperimentConfig:
    """The body validated (shared.experiment.parse_experiment) and its listed plants registered: every problem of
    both at once (ValidationError.problems). Creation and the pre-flight check both call this."""
    found = unknown_plants(listed(body), registered)
    try:
        config = parse_experiment(body)
    except ValidationError as exc:
        raise ValidationError.of([exc, *found]) from None
    if found:
        raise ValidationError.of(found)
    return config


def chosen(config: ExperimentConfig, plants: list[PlantFacts]) -> list[PlantFacts]:
    """The plants the experiment's rounds may draw: those it lists, or with "all" every plant online now."""
    if config.factories == "all":
        return [p for p in plants if p.online]
    return [p for p in plants if p.name in config.factories]


def check(config: ExperimentConfig, plants: list[PlantFacts]) -> Preflight:
    """What the chosen plants will refuse of this experiment (by plant and setting) and what will make it wait."""
    picked = chosen(config, plants)
    refusals = [Refusal(p.name, reason, TRUST_FIELD)
                for reason, group in reasons(config, [p.trust for p in picked]) for p in group]
    for plant in picked:
        refusals.extend(plant_refusals(config, plant, len(picked)))
    return Preflight(refusals=refusals, warnings=warnings(config, picked))


def warnings(config: ExperimentConfig, picked: list[PlantFacts]) -> list[str]:
    found = [f"{p.name} is {p.status}: rounds go on without it until it is back" for p in picked
             if not p.online and not p.decommissioned]
    found += [f"{p.name} does not report its trust mode (an older agent): it is treated as not trusting the "
              "dashboard" for p in picked if p.trust.mode == "unknown"]
    online = sum(p.online for p in picked)
    if config.factories == "all" and not picked:
        found.append("no plant is online now: the experiment waits for min_factories plants")
    elif online < config.min_factories:
        found.append(f"{online} of the chosen plants are online now; each round waits until min_factories "
                     f"({config.min_factories}) are")
    return found


def _number(policy: dict, key: str) -> float | None:
    value = policy.get(key)
    return None if isinstance(value, bool) or not isinstance(value, (int, float)) else value


def plant_refusals(config: ExperimentConfig, plant: PlantFacts, selected: int) -> list[Refusal]:
    """What one plant's reported policy and data refuse of this experiment."""
    out = []

    def refuse(field_name: str, reason: str) -> None:
        out.append(Refusal(plant.name, reason, field_name))

    if plant.decommissioned:
        refuse(TRUST_FIELD, "decommissioned: it takes part in nothing until an operator brings it back with a new "
                            "one-time enrolment token")
    policy = plant.policy
    if policy.get("require_secure_aggregation") is True and not config.secure_aggregation and plant.trust.trusts:
        refuse("secure_aggregation", "its policy requires secure aggregation (require_secure_aggregation)")
    privacy_refusals(config, policy, refuse)
    epochs = local_training(config)[0]
    most = _number(policy, "max_local_epochs")
    if most is not None and epochs > most:
        refuse("privacy.local_epochs" if config.privacy.dp_sgd else "local_epochs",
               f"{epochs} local epochs; its policy allows at most {most:g} (max_local_epochs)")
    if config.secure_aggregation and plant.trust.trusts and smallest_round(config, selected) < plant.trust.min_cohort:
        refuse("min_factories", f"its rounds may hold {smallest_round(config, selected)} plant(s); its policy masks "
                                f"only in cohorts of {plant.trust.min_cohort} or more (min_cohort)")
    verifies = plant.trust.verify_models and not plant.trust.trusts
    if verifies and config.algorithm not in VERIFIABLE_ALGORITHMS:
        refuse("algorithm", f"it verifies models (verify_models) and cannot replay {config.algorithm}: use one of "
                            f"{', '.join(VERIFIABLE_ALGORITHMS)}")
    if verifies and config.server_optimizer not in VERIFIABLE_OPTIMIZERS:
        refuse("server_optimizer", f"it verifies models (verify_models) and cannot replay {config.server_optimizer}")
    data_refusals(config, plant, refuse)
    return out


def privacy_refusals(config: ExperimentConfig, policy: dict, refuse) -> None:
    privacy = config.privacy
    if policy.get("require_dp") is True and not privacy.dp_sgd:
        refuse("privacy.mode", f"its policy requires record-level DP (DP-SGD) for every training round "
                               f"(require_dp); privacy.mode is {privacy.mode}")
    if not privacy.dp_sgd:
        return
    cap, lifetime = _number(policy, "max_epsilon"), _number(policy, "lifetime_epsilon")
    epsilon = privacy.epsilon
    if epsilon is not None and cap is not None and epsilon > cap:
        refuse("privacy.epsilon", f"a DP budget of epsilon {epsilon:g} over {config.rounds} rounds; its policy "
                                  f"allows at most {cap:g} per experiment (max_epsilon)")
    elif epsilon is not None and lifetime is not None and epsilon > lifetime:
        refuse("privacy.epsilon", f"a DP budget of epsilon {epsilon:g}; its whole lifetime budget is {lifetime:g} "
                                  "(lifetime_epsilon)")
    floor = _number(policy, "min_noise_multiplier")
    noise = privacy.noise_multiplier
    if epsilon is None and floor is not None and (noise or 0.0) < floor:
        refuse("privacy.noise_multiplier", f"noise multiplier {noise or 0.0:g} without a budget; its policy needs at "
                                           f"least {floor:g} (min_noise_multiplier)")
    delta = _number(policy, "dp_delta")
    if delta is not None and privacy.delta > delta:
        refuse("privacy.delta", f"delta {privacy.delta:g}; its policy allows at most {delta:g} (dp_delta)")


def data_refusals(config: ExperimentConfig, plant: PlantFacts, refuse) -> None:
    """Its data against the model: window models need a group or time column, and the model's size and cost
    within its policy (counted over the features it reported)."""
    supported = plant.capabilities.get("supported_models")
    if ModelType(config.model_type).is_sequence and isinstance(supported, list) and config.model_type not in supported:
        refuse("model_type", f"{config.model_type} trains on windows of cycles: its data has no group or time "
                             f"column (it trains {', '.join(map(str, supported))})")
        return
    if plant.features is None:
        return
    try:
        spec = config.model_spec(plant.features)
        parameters, flops = parameter_count(spec), example_cost(spec).flops
    except ModelError:
        return
    most, most_flops = _number(plant.policy, "max_model_parameters"), _number(plant.policy, "max_example_flops")
    if most is not None and parameters > most:
        refuse("hidden_size", f"the model has {parameters:,} parameters over its {plant.features} features; its "
                              f"policy allows at most {most:,.0f} (max_model_parameters)")
    elif most_flops is not None and flops > most_flops:
        refuse("hidden_size", f"one example takes {flops:.3g} floating-point operations; its policy allows at most "
                              f"{most_flops:.3g} (max_example_flops)")
    values, batch = _number(plant.policy, "max_dp_batch_values"), local_training(config)[1]
    if config.privacy.dp_sgd and values is not None and batch * parameters > values:
        refuse("privacy.batch_size", f"a DP-SGD batch of {batch} x {parameters:,} parameters holds {batch * parameters:,}"
                                     f" per-sample gradient values; its policy allows at most {values:,.0f} "
                                     "(max_dp_batch_values)")
