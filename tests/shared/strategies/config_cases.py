"""Experiment bodies whose settings the golden tests pin (test_config_golden.py), and the recorder that wrote
config_golden.json from the code before shared.experiment existed (commit f9a9f4c: parse_experiment, the stored
dict, client_training_config, update_clip, aggregation_settings, secure_setup, model_spec and the training
request run_round built). Run this module to record it again (only from code whose behaviour is known good):

    .venv/bin/python -m tests.shared.strategies.config_cases
"""

from __future__ import annotations

import json
from pathlib import Path

GOLDEN = Path(__file__).with_name("config_golden.json")
KEYS = {"alpha": "a" * 64, "beta": "b" * 64, "gamma": "c" * 64}
FEDERATION = 4
ROUND, INDEX, FEATURES = 2, 1, 7

CENTRAL = {"mode": "central", "noise_multiplier": 1.2}
VALID = [
    {}, {"name": "  spaced  ", "seed": 7, "round_timeout": 30, "max_grad_norm": 2.5},
    {"model_type": "lstm", "sequence_length": 12, "hidden_size": 32}, {"model_type": "hybrid"},
    {"algorithm": "fedprox", "mu": 0.2}, {"algorithm": "fednova"}, {"algorithm": "feddyn", "feddyn_alpha": 0.05},
    {"server_optimizer": "fedadam", "server_lr": 0.05}, {"server_optimizer": "fedyogi"},
    {"algorithm": "feddyn", "server_optimizer": "fedyogi"},
    {"robust": {"method": "median"}}, {"robust": {"method": "trimmed_mean", "trim_ratio": 0.25}},
    {"robust": {"method": "krum", "byzantine": 1, "multi_krum": 2}, "min_factories": 4},
    {"robust": {"method": "norm_bound", "max_norm": 2.0, "outlier_method": "iqr", "exclude_below": 0.1}},
    {"robust": {"method": "norm_bound"}},
    {"algorithm": "fedprox", "robust": {"method": "median"}},
    {"secure_aggregation": True}, {"secure_aggregation": True, "algorithm": "fednova", "server_optimizer": "fedadam"},
    {"secure_aggregation": True, "algorithm": "feddyn"},
    {"secure_aggregation": True, "robust": {"method": "norm_bound", "max_norm": 5.0}},
    {"secure_aggregation": True, "privacy": {"mode": "central", "noise_multiplier": 1.0, "epsilon": 8}},
    {"privacy": CENTRAL}, {"privacy": {"mode": "central", "epsilon": 4, "delta": 1e-6}, "rounds": 20},
    {"privacy": {"mode": "central", "epsilon": 20}, "rounds": 3, "sampling_rate": 0.6, "factories": ["a", "b", "c"]},
    {"privacy": {"mode": "central", "epsilon": 4}, "sampling_rate": 0.2, "rounds": 20},
    {"privacy": {"mode": "central", "mechanism": "laplace", "round_epsilon": 0.5, "epsilon": 2}},
    {"privacy": {"mode": "central", "max_grad_norm": 3.0}, "robust": {"method": "norm_bound", "max_norm": 2.0}},
    {"privacy": {"mode": "dp_sgd"}}, {"privacy": {"mode": "dp_sgd", "epsilon": 4, "max_grad_norm": 0.7}},
    {"privacy": {"mode": "dp_sgd", "noise_multiplier": 0.9}, "algorithm": "fednova"},
    {"factories": ["a", "b"], "min_factories": 2, "sampling_rate": 0.5},
]
INVALID = [
    [], {"model_type": "transformer"}, {"rounds": 0}, {"rounds": "5"}, {"learning_rate": -1}, {"batch_size": True},
    {"factories": []}, {"factories": ["a", "a"]}, {"factories": ["a"], "min_factories": 2},
    {"secure_aggregation": True, "robust": {"method": "median"}},
    {"secure_aggregation": True, "robust": {"method": "krum"}, "min_factories": 4},
    {"secure_aggregation": True, "robust": {"method": "norm_bound"}}, {"secure_aggregation": True, "min_factories": 1},
    {"secure_aggregation": "yes"}, {"privacy": "none"}, {"robust": "none"},
    {"privacy": {"mode": "quantum"}}, {"privacy": {"mode": "central", "mechanism": "cauchy"}},
    {"privacy": {"mode": "dp_sgd", "mechanism": "laplace"}},
    {"privacy": {"mode": "central", "mechanism": "laplace", "epsilon": 1, "round_epsilon": 2}},
    {"privacy": {"mode": "dp_sgd"}, "model_type": "lstm"}, {"privacy": {"mode": "dp_sgd"}, "algorithm": "fedprox"},
    {"privacy": {"mode": "central", "colour": 1}}, {"privacy": {"mode": "central", "delta": 0.5}},
    {"privacy": {"mode": "central", "epsilon": 1e-4}, "rounds": 1000},
    {"privacy": {"mode": "central"}, "robust": {"method": "median"}},
    {"robust": {"method": "krum", "byzantine": 2}, "min_factories": 4},
    {"robust": {"method": "trimmed_mean", "trim_ratio": 0.6}}, {"robust": {"method": "median", "colour": 1}},
    {"robust": {"method": "median", "outlier_method": "vibes"}}, {"robust": {"method": "sorcery"}},
    {"colour": "blue"}, {"name": ""}, {"name": "x" * 201}, {"sampling_rate": 0}, {"hidden_size": 3},
    {"round_timeout": 0}, {"seed": -1}, {"mu": -1}, {"server_lr": 11}, {"feddyn_alpha": 0},
]


def body_of(extra) -> object:
    return {"name": "exp", **extra} if isinstance(extra, dict) and "name" not in extra else extra


def _record() -> dict:  # pragma: no cover - run by hand, at the commit named above
    from dataclasses import asdict

    from dashboard.experiment_config import ValidationError, model_spec, parse_experiment
    from dashboard.orchestration.rounds import (Participant, aggregation_settings, client_training_config,
                                                secure_setup, update_clip)
    from dashboard.orchestration.syft_clients import PlantAddress
    from shared.aggregation.pipeline import secure_weighting
    from shared.protocol import TrainSettings

    valid = []
    for extra in VALID:
        stored = parse_experiment(body_of(extra)).to_dict()
        extra_train = client_training_config(stored)
        settings = aggregation_settings(stored, FEDERATION)
        train = TrainSettings.from_wire({
            "epochs": stored["local_epochs"], "batch_size": stored["batch_size"],
            "learning_rate": stored["learning_rate"], "max_grad_norm": stored["max_grad_norm"],
            "seed": stored["seed"] * 100_003 + ROUND * 101 + INDEX, **extra_train})
        entry = {"body": body_of(extra), "stored": stored, "client_training_config": extra_train,
                 "update_clip": update_clip(stored), "aggregation_settings": asdict(settings),
                 "secure_weighting": secure_weighting(settings), "train": train.to_wire(),
                 "model_spec": model_spec(stored, FEATURES).to_dict()}
        if stored["secure_aggregation"]:
            participants = [Participant(PlantAddress(name, "localhost", 1, "e", "p", "t"), key)
                            for name, key in KEYS.items()]
            entry["secure_setup"] = secure_setup(stored, participants, settings).to_wire()
        valid.append(entry)
    invalid = []
    for extra in INVALID:
        try:
            parse_experiment(body_of(extra))
        except ValidationError as exc:
            invalid.append({"body": body_of(extra), "field": exc.field, "message": exc.message})
        else:
            raise AssertionError(f"{extra} was accepted")
    return {"valid": valid, "invalid": invalid}


if __name__ == "__main__":  # pragma: no cover
    GOLDEN.write_text(json.dumps(_record(), indent=1) + "\n")
