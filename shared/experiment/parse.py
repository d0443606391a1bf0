"""An experiment's JSON body, validated as hostile into an ExperimentConfig (DESIGN §5): every problem is a
ValidationError that names its field and says why, all of a body's problems at once (its `problems`): first
every value against its row of the field table (shared.experiment.fields: type, range, choices and the
defaults of what the body leaves out), then the contradictions between them (shared.experiment.combinations)."""

from __future__ import annotations

import math
from dataclasses import fields

from shared.enums import PrivacyMechanism, PrivacyMode
from shared.errors import SecurityError
from shared.experiment.combinations import contradictions
from shared.experiment.config import ExperimentConfig, PrivacyConfig, RobustConfig, planned_steps
from shared.experiment.fields import DP_SGD_TRAINING, MAX_NAME, SETTING, SETTINGS, options
from shared.experiment.validation import ValidationError

KNOWN = sorted(f.name for f in fields(ExperimentConfig))
PARTS = {"privacy": "mode", "robust": "method"}
BY_HAND = ("name", "factories")  # checked below: their rules are not a type and a range


def parse_experiment(body: object) -> ExperimentConfig:
    """Validate a JSON body into an ExperimentConfig, or raise ValidationError naming every problem."""
    if not isinstance(body, dict):
        raise ValidationError("body", "must be a JSON object")
    unknown = sorted(set(body) - set(KNOWN))
    if unknown:
        raise ValidationError(unknown[0], f"unknown field; allowed fields are {', '.join(KNOWN)}")
    found: list[ValidationError] = []
    name = _name(body, found)
    given = _given(body, found)
    values = _values(given, found)
    values["name"], values["factories"] = name, _factories(body, found)
    if values["factories"] != "all" and values.get("min_factories", 0) > len(values["factories"]):
        found.append(ValidationError("min_factories", f"is {values['min_factories']} but only "
                                                      f"{len(values['factories'])} factories are listed"))
    if found:
        raise ValidationError.of(found)
    config = _config(values, frozenset(given), found)
    found.extend(contradictions(config))
    if found:
        raise ValidationError.of(found)
    return config


def _given(body: dict, found: list) -> dict[str, object]:
    """What the body names, by dotted name ("privacy.epsilon"); a nested part's options only where they apply:
    privacy's with a mode other than none (as always, ignored under none), robust's always."""
    given = {k: v for k, v in body.items() if k not in PARTS}
    for part, key in PARTS.items():
        obj = body.get(part, {key: "none"})
        if not isinstance(obj, dict):
            found.append(ValidationError(part, f"must be an object such as {{\"{key}\": \"none\"}}"))
            continue
        if key in obj:
            given[f"{part}.{key}"] = obj[key]
        if part == "privacy" and obj.get(key, "none") == PrivacyMode.NONE.value:
            continue
        unknown = sorted(set(obj) - {key, *options(part)})
        if unknown:
            found.append(ValidationError(f"{part}.{unknown[0]}", f"unknown option; allowed: "
                                                                 f"{', '.join(options(part))}"))
        given.update({f"{part}.{k}": v for k, v in obj.items() if k != key and k not in unknown})
    return given


def _values(given: dict[str, object], found: list) -> dict[str, object]:
    """Every setting: the body's, checked against its row, else the row's default (`given` rules last, so that
    they read the settings they depend on)."""
    values, named = {}, frozenset(given)
    for setting in SETTINGS:
        if setting.name in given and setting.name not in BY_HAND:
            try:
                values[setting.name] = setting.read(given[setting.name])
            except ValidationError as exc:
                found.append(exc)
    unnamed = [s for s in SETTINGS if s.name not in given]
    values.update({s.name: s.default for s in unnamed})
    values.update({s.name: s.default_for(values, named) for s in unnamed if s.given is not None})
    mode = values.get("privacy.mode")
    if mode not in (None, PrivacyMode.DP_SGD.value):
        asked = [name for name in DP_SGD_TRAINING if f"privacy.{name}" in given]
        if asked:
            found.append(ValidationError(f"privacy.{asked[0]}", "sets DP-SGD's training at the plants: only with "
                                                                "privacy.mode dp_sgd (the experiment's batch_size, "
                                                                "learning_rate and local_epochs apply)"))
    return values


def _name(body: dict, found: list) -> str:
    name = body.get("name")
    if not isinstance(name, str) or not name.strip():
        found.append(ValidationError("name", "is required: a short text naming the experiment"))
        return ""
    if len(name) > MAX_NAME:
        found.append(ValidationError("name", f"must be at most {MAX_NAME} characters"))
    return name.strip()


def _factories(body: dict, found: list) -> tuple[str, ...] | str:
    factories = body.get("factories", SETTING["factories"].default)
    if factories == "all":
        return factories
    if (not isinstance(factories, list) or not factories
            or not all(isinstance(f, str) and f.strip() for f in factories)):
        found.append(ValidationError("factories", 'must be "all" or a non-empty list of factory names'))
        return "all"
    if len(set(factories)) != len(factories):
        found.append(ValidationError("factories", "lists a factory twice"))
    return tuple(factories)


def _config(values: dict[str, object], named: frozenset[str], found: list) -> ExperimentConfig:
    top = {s.name: values[s.name] for s in SETTINGS if s.part is None}
    robust = RobustConfig(**{s.key: values[s.name] for s in SETTINGS if s.part == "robust"})
    privacy = PrivacyConfig()
    if values["privacy.mode"] != PrivacyMode.NONE.value:
        chosen = {s.key: values[s.name] for s in SETTINGS if s.part == "privacy"}
        privacy = PrivacyConfig(**{**chosen, **_noise(values, named, found)})
    return ExperimentConfig(**top, privacy=privacy, robust=robust)


def _noise(values: dict, named: frozenset[str], found: list) -> dict:
    """The noise multiplier and where it came from: the operator's, the default, or derived from the target
    epsilon (dp_sgd: each plant derives it over its own steps with Opacus, so None here)."""
    if "privacy.noise_multiplier" in named:
        return {"noise_multiplier_source": "operator"}
    if values["privacy.epsilon"] is None or values["privacy.mechanism"] != PrivacyMechanism.GAUSSIAN.value:
        return {"noise_multiplier_source": "default"}
    if values["privacy.mode"] == PrivacyMode.DP_SGD.value:
        return {"noise_multiplier_source": "target_epsilon", "noise_multiplier": None}
    steps = planned_steps(values["rounds"], values["sampling_rate"], values["min_factories"], values["factories"])
    try:
        sigma = _central_noise_multiplier(values, steps)
    except ValidationError as exc:
        found.append(exc)
        return {"noise_multiplier_source": "default"}
    return {"noise_multiplier_source": "target_epsilon", "noise_multiplier": sigma}


def _central_noise_multiplier(values: dict, steps: int) -> float:
    """The noise multiplier that keeps the planned steps (planned_steps) within the target epsilon. Draws are
    random: with q < 1 more of them may fall short than planned, and the budget then ends the experiment a
    round or two early (status budget_exhausted)."""
    from shared.privacy.accounting import noise_multiplier_for

    epsilon, delta, rate = values["privacy.epsilon"], values["privacy.delta"], values["sampling_rate"]
    what = f"{steps} round(s)" if rate >= 1.0 else f"{steps} draw(s) of plants"
    try:
        sigma = noise_multiplier_for(epsilon, delta, steps, rate)
        return math.ceil(sigma * 1e6) / 1e6  # rounded up: more noise, never more epsilon
    except SecurityError as exc:
        raise ValidationError("privacy.epsilon", f"{epsilon} is too small for {what} at delta {delta}: "
                                                 f"{exc}") from exc
