"""The field table (shared.experiment.fields) is the one place of each setting's default and range: the OpenAPI
document and the form state none of their own, a body's problems come all at once, and a default that depends
on other settings is one rule on one row."""

from __future__ import annotations

import ast
from dataclasses import replace
from pathlib import Path

import pytest

from shared.experiment import ExperimentConfig, ValidationError, parse_experiment
from shared.experiment import fields as table
from shared.experiment import parse as parsing
from shared.experiment.fields import SETTING, SETTINGS

ROOT = Path(__file__).resolve().parents[2]


def numbers_in(path: str, scope: str) -> list[object]:
    """The numeric literals inside the function or class `scope` of a module."""
    tree = ast.parse((ROOT / path).read_text())
    node = next(n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.ClassDef)) and n.name == scope)
    return [n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and type(n.value) in (int, float)]


# what a scope may write: not a setting's default or range (a name's minimum length, an index, the rate of rows
# stored before lr_decay existed, a row model's window of 1)
@pytest.mark.parametrize("path,scope,allowed", [("dashboard/api/openapi.py", "_experiment_schema", [1]),
                                                ("dashboard/ui/forms.py", "ExperimentForm", []),
                                                ("dashboard/ui/forms.py", "_field", []),
                                                ("shared/experiment/parse.py", "_values", [0]),
                                                ("shared/experiment/config.py", "ExperimentConfig", [1.0, 1]),
                                                ("shared/experiment/config.py", "PrivacyConfig", []),
                                                ("shared/experiment/config.py", "RobustConfig", [])])
def test_no_default_or_range_is_written_outside_the_table(path, scope, allowed):
    assert numbers_in(path, scope) == allowed, f"{path}:{scope} states numbers of its own"


def test_the_openapi_document_shows_the_tables_ranges_defaults_and_conditions():
    from dashboard.api.openapi import _experiment_schema

    props = _experiment_schema()["properties"]
    for setting in SETTINGS:
        schema = props[setting.part]["properties"][setting.key] if setting.part else props[setting.name]
        if setting.kind in (int, float) and setting.low is not None:
            assert (schema["minimum"], schema["maximum"]) == (setting.low, setting.high), setting.name
        assert schema["description"] == (setting.hover or setting.help)
        assert ("x-shown-when" in schema) == bool(setting.shown_when), setting.name
    assert props["mu"]["x-shown-when"] == {"algorithm": ["fedprox"]}
    assert props["privacy"]["properties"]["batch_size"]["x-shown-when"] == {"privacy.mode": ["dp_sgd"]}


def test_a_body_gets_all_its_problems_at_once():
    with pytest.raises(ValidationError) as caught:
        parse_experiment({"name": "", "rounds": 0, "lr_decay": 2, "privacy": {"mode": "central", "delta": 1}})
    assert [field for field, _ in caught.value.problems] == ["name", "rounds", "lr_decay", "privacy.delta"]
    assert caught.value.field == "name"  # the first, as the API has always named it
    with pytest.raises(ValidationError) as caught:  # contradictions too, once every value is valid
        parse_experiment({"name": "x", "algorithm": "scaffold", "secure_aggregation": True,
                                "robust": {"method": "median"}, "min_factories": 1})
    assert [f for f, _ in caught.value.problems] == ["robust.method", "min_factories", "algorithm", "algorithm"]


def test_a_default_that_depends_on_the_body_is_one_rule_on_its_row(monkeypatch):
    """Issue 26 item 3: explicit settings are never changed by defaults. The rule a measurement decides
    (e.g. lr_decay 0.9 only when the body names neither algorithm nor learning_rate) is one `given`."""
    rule = replace(SETTING["lr_decay"], given=lambda values, named: 0.9 if not named & {"algorithm", "learning_rate"}
                   else 1.0)
    rows = tuple(rule if s.name == "lr_decay" else s for s in SETTINGS)
    monkeypatch.setattr(parsing, "SETTINGS", rows)
    assert parse_experiment({"name": "x"}).lr_decay == 0.9
    assert parse_experiment({"name": "x", "algorithm": "fedavg", "learning_rate": 0.001}).lr_decay == 1.0
    assert parse_experiment({"name": "x", "algorithm": "fedavg", "lr_decay": 0.5}).lr_decay == 0.5


def test_todays_dependent_defaults_come_from_the_table():
    assert parse_experiment({"name": "x"}).algorithm == SETTING["algorithm"].default == "feddyn"
    assert parse_experiment({"name": "x", "privacy": {"mode": "dp_sgd"}}).algorithm == "fedavg"
    assert parse_experiment({"name": "x", "server_optimizer": "fedavgm"}).server_lr == 1.0
    dp = parse_experiment({"name": "x", "privacy": {"mode": "dp_sgd"}})
    assert dp.privacy.max_grad_norm == table.DP_SGD_MAX_GRAD_NORM and dp.personalization == "none"
    # a body that names a value keeps it (today's lr_decay and class_weight apply to every body: cmapss decides)
    named = parse_experiment({"name": "x", "algorithm": "fedavg", "learning_rate": 0.001, "rounds": 10,
                                    "batch_size": 128})
    assert (named.algorithm, named.learning_rate, named.batch_size) == ("fedavg", 0.001, 128)
