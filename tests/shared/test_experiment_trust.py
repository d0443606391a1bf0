"""shared.experiment.trust: the one rule of what plants that do not trust the dashboard refuse, and their badge."""

import pytest

from shared.experiment import parse_experiment
from shared.experiment.trust import DEFAULT_MIN_COHORT, PlantTrust, min_cohort_of, refusals

KEY = "0123456789abcdef"
SECURE = {"secure_aggregation": True, "min_factories": 3}


def verifying(name, **kw):
    return PlantTrust(name, trust_dashboard=False, federation_key=KEY, **kw)


def trusting(name, **kw):
    return PlantTrust(name, trust_dashboard=True, **kw)


def config(**body):
    return parse_experiment({"name": "t", **body})


def refusal(body, plants) -> str | None:
    found = refusals(config(**body), plants)
    assert len(found) <= 1 and all(f.field == "factories" for f in found)
    return found[0].message if found else None


def test_a_secure_verifiable_experiment_over_three_verifying_plants_is_accepted():
    assert refusal(SECURE, [verifying(n) for n in "abc"]) is None
    assert refusal({**SECURE, "robust": {"method": "norm_bound", "max_norm": 5.0}}, [verifying(n) for n in "abc"]) \
        is None


def test_plants_that_trust_the_dashboard_take_part_in_anything():
    for body in ({}, {"min_factories": 1, "factories": ["a"]}, {"robust": {"method": "median"}, "min_factories": 3},
                 {"privacy": {"mode": "central"}}, {"robust": {"method": "krum"}, "min_factories": 4}):
        assert refusal(body, [trusting(n) for n in "abcd"]) is None, body


@pytest.mark.parametrize("body,why", [
    ({}, "secure_aggregation is off"),
    ({"robust": {"method": "median"}, "min_factories": 3}, "robust.method median"),
    ({"robust": {"method": "trimmed_mean"}, "min_factories": 3}, "robust.method trimmed_mean"),
    ({"robust": {"method": "krum"}, "min_factories": 4}, "robust.method krum"),
    ({**SECURE, "privacy": {"mode": "central"}}, "privacy.mode central"),
    ({**SECURE, "min_factories": 2}, "may hold 2 plant(s)"),
])
def test_what_a_verifying_plant_refuses_is_refused_naming_the_plant_and_its_policy(body, why):
    message = refusal(body, [verifying("plant_v"), trusting("plant_t"), trusting("plant_u")])
    assert message is not None and why in message
    assert "plant_v (verifies membership (key 01234567…), min_cohort 3)" in message
    assert "plant_t" not in message and "--trust-dashboard" in message


def test_a_single_plant_experiment_is_refused_by_the_plants_own_min_cohort():
    message = refusal({"secure_aggregation": True, "min_factories": 2, "factories": ["a", "b"]},
                      [verifying("a"), verifying("b")])
    assert "may hold 2 plant(s)" in message and "a (verifies" in message and "b (verifies" in message
    # a plant whose policy allows cohorts of 2 takes part; one asking for 5 refuses a round of 4
    assert refusal({"secure_aggregation": True, "min_factories": 2}, [verifying("a", min_cohort=2),
                                                                     verifying("b", min_cohort=2)]) is None
    message = refusal({"secure_aggregation": True, "min_factories": 4},
                      [verifying(n) for n in "abc"] + [verifying("d", min_cohort=5)])
    assert "min_cohort 5" in message and "(d)" in message and "a (verifies" not in message
    # fewer plants selected than min_factories: the round is as small as the selection
    assert "may hold 2 plant(s)" in refusal({"secure_aggregation": True, "min_factories": 3},
                                            [verifying("a"), verifying("b")])


def test_an_agent_that_does_not_report_its_mode_counts_as_not_trusting():
    unknown = PlantTrust("old")
    assert unknown.mode == "unknown" and not unknown.trusts
    message = refusal({}, [unknown, trusting("b"), trusting("c")])
    assert "old (trust mode unknown: its agent does not report it" in message
    # it may hold a federation key: a secure, verifiable experiment is not refused for it
    assert refusal(SECURE, [unknown, verifying("b"), verifying("c")]) is None


def test_a_plant_without_a_federation_key_refuses_even_secure_rounds():
    bare = PlantTrust("bare", trust_dashboard=False)
    assert bare.label == "no federation key: refuses secure rounds" and bare.state == "state-failed"
    message = refusal(SECURE, [bare, verifying("b"), verifying("c")])
    assert "pinned no federation key" in message and "(bare)" in message and "b (verifies" not in message


def test_every_reason_is_named_at_once():
    message = refusal({"privacy": {"mode": "central"}, "min_factories": 1}, [verifying("a")])
    assert "secure_aggregation is off" in message and "privacy.mode central" in message


def test_badges_and_their_states():
    assert verifying("a").label == "verifies membership (key 01234567…)" and verifying("a").state == "state-running"
    assert trusting("a").label == "trusts the dashboard" and trusting("a").state == "state-paused"
    assert PlantTrust("a").state == "state-pending"
    both = PlantTrust("a", trust_dashboard=True, federation_key=KEY)  # the opt-out wins: it masks with anyone
    assert both.mode == "trusts"
    assert verifying("a").to_dict() == {"mode": "verifies", "label": "verifies membership (key 01234567…)",
                                        "trust_dashboard": False, "federation_key": KEY, "min_cohort": 3,
                                        "verify_models": False}
    models = PlantTrust("a", trust_dashboard=False, federation_key=KEY, verify_models=True)
    assert models.label == "verifies models and membership (key 01234567…)" and models.mode == "verifies"


@pytest.mark.parametrize("policy,expected", [
    (None, DEFAULT_MIN_COHORT), ({}, DEFAULT_MIN_COHORT), ({"min_cohort": 5}, 5), ({"min_cohort": 2}, 2),
    ({"min_cohort": 1}, DEFAULT_MIN_COHORT), ({"min_cohort": True}, DEFAULT_MIN_COHORT),
    ({"min_cohort": "9"}, DEFAULT_MIN_COHORT), ({"min_cohort": 10 ** 12}, DEFAULT_MIN_COHORT),
])
def test_the_plants_reported_min_cohort_is_used_when_sensible(policy, expected):
    assert min_cohort_of(policy) == expected
