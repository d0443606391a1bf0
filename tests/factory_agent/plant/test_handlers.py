"""The plant's request handlers against hostile requests, in process (the same attacks run against a real
datasite in tests/integration/test_attacks.py)."""

import logging

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from factory_agent.plant.handlers import handle
from factoryfl_testing.membership import administrator, certify, enrol
from factory_agent.plant.policy import PlantPolicy
from factory_agent.plant.state import PlantState
from shared.data.csv_loader import load_frame
from shared.data.scaler import Scaler, feature_stats
from shared.data.simulator import FAILURE_MODE_COLUMNS, simulate
from shared.models import ModelSpec, build_model, get_weights
from shared.protocol import (EvaluateRequest, ModelPart, RevealRequest, RoundRef, ScalerMsg, SecAggRequest,
                             StatsRequest, TrainRequest, TrainSettings, parse_reply)
from shared.secagg.keys import public_hex
from shared.secagg.quantize import fraction_bits

NAME = "plant_a"


@pytest.fixture(scope="module")
def data():
    d = load_frame(simulate("default", 800, seed=3), "machine_failure", FAILURE_MODE_COLUMNS, "machine_id", "cycle")
    return d, np.stack([d.split, d.groups], 1)


# the checks every request meets before (and besides) model verification: they still hold for a plant that opts
# out of verifying (verify_models false or trust_dashboard) and are tested on one; verification itself, the
# default, is tests/factory_agent/plant/test_verification.py
UNVERIFIED = {"verify_models": False}


@pytest.fixture
def plant(data, tmp_path):
    d, index = data
    state = PlantState(tmp_path / "state")
    state.save_profile(NAME, d.schema.feature_names)
    state.save_policy(PlantPolicy(**UNVERIFIED))
    admin = administrator(tmp_path / "federation")
    own_certificate = enrol(admin, state, NAME)

    class Plant:
        names = tuple(d.schema.feature_names)
        x = d.features[index[:, 0] == 0]
        scaler = Scaler.from_stats(feature_stats(x))
        spec = ModelSpec("cnn", len(d.schema.feature_names))
        weights = get_weights(build_model(spec, seed=0))

        @staticmethod
        def call(request, raw=None):
            return handle(d.features, d.labels, index, raw if raw is not None else request.to_wire(), state)

        @staticmethod
        def policy(**changes):
            state.save_policy(PlantPolicy(**{**UNVERIFIED, **changes}))

        def model(self, scaler=None, weights=None):
            s = scaler or self.scaler
            return ModelPart(self.names, ScalerMsg(s.mean, s.scale), self.spec, weights or self.weights)

    Plant.state, Plant.admin, Plant.certificate = state, admin, own_certificate
    return Plant()


def secagg(state, others=2, threshold=None):
    """This plant and `others` genuine members (certified by the plant's federation key, test_membership has the
    forged ones)."""
    from shared.membership.admin import Administrator

    admin = Administrator(state.directory.parent / "federation")
    keys = {NAME: state.secagg_public_key()}
    keys.update({f"peer_{i}": public_hex(X25519PrivateKey.generate()) for i in range(others)})
    certificates = {name: certify(admin, name, key).to_wire() for name, key in keys.items() if name != NAME}
    certificates[NAME] = certify(admin, NAME, keys[NAME], state.identity_public_key()).to_wire()
    n = len(keys)
    return SecAggRequest(participants=keys, threshold=threshold or n // 2 + 1, fraction_bits=fraction_bits(n, 100.0),
                         weighting="samples", clip=100.0, certificates=certificates)


def refused(answer: dict, *words: str) -> None:
    assert answer["ok"] is False, answer
    for word in words:
        assert word in answer["error"], answer["error"]


def test_statistics_are_sums_only_never_a_minimum_or_a_maximum(plant):
    answer = plant.call(StatsRequest(1, plant.names))
    assert answer["ok"], answer
    assert {"count", "sum", "sum_sq"} <= set(answer) and not {"min", "max"} & set(answer)
    assert answer["count"] == len(plant.x)


def test_statistics_count_the_training_splits_failures_and_withhold_a_count_of_few(plant, data):
    d, index = data
    failures = int(d.labels[index[:, 0] == 0].sum())
    assert failures >= 10
    answer = plant.call(StatsRequest(1, plant.names))
    assert answer["positives"] == failures
    assert parse_reply(StatsRequest(1, plant.names), answer).positives == failures
    plant.policy(min_release_rows=failures + 1)  # fewer failures than the plant releases a number over
    withheld = plant.call(StatsRequest(2, plant.names))
    assert withheld["ok"] and withheld["positives"] is None and withheld["count"] == len(plant.x)


def test_a_path_in_the_experiment_id_is_refused_before_any_work(plant, caplog):
    wire = StatsRequest(1, plant.names).to_wire()
    with caplog.at_level(logging.WARNING):
        refused(plant.call(None, {**wire, "experiment": "../../etc"}), "experiment must be an integer")
        refused(plant.call(None, {**wire, "experiment": -3}), "experiment")
    assert "experiment must be an integer" in caplog.text
    assert not list(plant.state.directory.parent.glob("etc*"))


def test_unknown_operations_and_fields_are_refused(plant):
    refused(plant.call(None, {"op": "dump_rows"}), "unknown operation")
    refused(plant.call(None, {**StatsRequest(1, plant.names).to_wire(), "plant_features": ["x"]}), "unknown field")
    refused(plant.call(None, {**TrainRequest(RoundRef(1, 1), plant.model(), TrainSettings()).to_wire(),
                              "train": {"epochs": 1, "shell": "rm -rf /"}}), "unknown setting")


def test_a_crafted_scaler_that_turns_the_update_into_a_counting_query_is_refused(plant, caplog):
    crafted = Scaler(mean=plant.scaler.mean.copy(), scale=plant.scaler.scale.copy())
    crafted.mean[0] = float(np.median(plant.x[:, 0]))
    crafted.scale[0] = 1e-6  # after clipping to +-10: the indicator x_0 > median
    with caplog.at_level(logging.WARNING):
        refused(plant.call(TrainRequest(RoundRef(1, 1), plant.model(crafted), TrainSettings())),
                "scaler does not fit", "feature #0")
    assert "REFUSED train" in caplog.text


def test_an_experiment_cannot_change_its_scaler_after_its_first_call(plant):
    assert plant.call(EvaluateRequest(RoundRef(4, 0), plant.model()))["ok"]
    other = Scaler(mean=plant.scaler.mean * 1.01, scale=plant.scaler.scale)
    refused(plant.call(EvaluateRequest(RoundRef(4, 1), plant.model(other))), "changed its features, scaler")


def test_each_attempt_trains_once(plant):
    request = TrainRequest(RoundRef(2, 1), plant.model(), TrainSettings())
    assert plant.call(request)["ok"]
    refused(plant.call(request), "already called 1 time")


def test_a_second_masking_under_one_context_is_refused(plant):
    setup = secagg(plant.state)
    first = plant.call(TrainRequest(RoundRef(3, 1), plant.model(), TrainSettings(), setup))
    assert first["ok"] and "weights" not in first and first["masked"].dtype == np.uint64
    # the same context with a learning rate near 0: the difference would unmask the first update
    again = TrainRequest(RoundRef(3, 1), plant.model(), TrainSettings(learning_rate=1e-9), setup)
    refused(plant.call(again), "train was already called")
    plant.state.record_call  # the mask ledger refuses even when the call cap would not (say after a policy change)
    plant.policy(max_calls_per_hour=10 ** 6)
    with pytest.raises(Exception, match="already masked"):
        plant.state.claim_mask("3:1:1", setup.to_wire())


def test_the_default_policy_computes_on_no_model_it_did_not_verify(plant):
    plant.state.save_policy(PlantPolicy())  # no setting at all: the default verifies models
    assert PlantPolicy().verifies_models
    refused(plant.call(TrainRequest(RoundRef(1, 1), plant.model(), TrainSettings())), "requires secure aggregation")
    refused(plant.call(EvaluateRequest(RoundRef(1, 1), plant.model())), "verified itself", "no proof")


def test_an_unmasked_update_is_refused_when_the_policy_requires_secure_aggregation(plant):
    plant.policy(require_secure_aggregation=True)
    refused(plant.call(TrainRequest(RoundRef(5, 1), plant.model(), TrainSettings())), "requires secure aggregation")
    assert plant.call(TrainRequest(RoundRef(5, 1, 2), plant.model(), TrainSettings(), secagg(plant.state)))["ok"]


@pytest.mark.parametrize("others,threshold,words", [
    (3, 2, "more than half"),  # 2 of 4: two colluding holders could open one plant's masks
    (2, 1, "more than half"),
    (2, 4, "at most 3"),
])
def test_a_threshold_at_or_below_half_the_cohort_is_refused(plant, others, threshold, words):
    setup = secagg(plant.state, others, threshold)
    refused(plant.call(TrainRequest(RoundRef(6, 1), plant.model(), TrainSettings(), setup)), words)


def test_a_cohort_below_the_plants_minimum_is_refused(plant):
    plant.policy(min_cohort=4)
    refused(plant.call(TrainRequest(RoundRef(7, 1), plant.model(), TrainSettings(), secagg(plant.state, 2))),
            "at least 4")


def test_a_participant_list_that_holds_another_key_for_this_plant_is_refused(plant):
    setup = secagg(plant.state)
    forged = SecAggRequest({**setup.participants, NAME: public_hex(X25519PrivateKey.generate())}, setup.threshold,
                           setup.fraction_bits, setup.weighting, setup.clip)
    refused(plant.call(TrainRequest(RoundRef(8, 1), plant.model(), TrainSettings(), forged)), "its own key")


def test_a_reveal_is_only_for_an_attempt_the_plant_masked_under_the_same_setup(plant):
    setup = secagg(plant.state)
    names = sorted(setup.participants)
    refused(plant.call(RevealRequest(RoundRef(9, 1), setup, tuple(names), {})), "did not mask")
    assert plant.call(TrainRequest(RoundRef(9, 1), plant.model(), TrainSettings(), setup))["ok"]
    smaller = SecAggRequest({k: v for k, v in setup.participants.items() if k != names[-1]}, 2, setup.fraction_bits,
                            setup.weighting, setup.clip)
    refused(plant.call(RevealRequest(RoundRef(9, 1), smaller, tuple(sorted(smaller.participants)), {})),
            "other participants")


def test_a_model_larger_than_the_policy_allows_is_refused(plant):
    plant.policy(max_model_parameters=100)
    refused(plant.call(TrainRequest(RoundRef(10, 1), plant.model(), TrainSettings())), "at most 100")
    plant.policy(max_local_epochs=2)
    refused(plant.call(TrainRequest(RoundRef(10, 1, 2), plant.model(), TrainSettings(epochs=3))), "at most 2")


def test_the_hourly_call_cap_holds(plant):
    plant.policy(max_calls_per_hour=2)
    assert plant.call(StatsRequest(11, plant.names))["ok"]
    assert plant.call(StatsRequest(12, plant.names))["ok"]
    refused(plant.call(StatsRequest(13, plant.names)), "in the last hour")


def test_training_without_dp_is_refused_when_the_policy_requires_it(plant):
    plant.policy(require_dp=True)
    refused(plant.call(TrainRequest(RoundRef(14, 1), plant.model(), TrainSettings())), "requires record-level DP")


def test_the_noise_multiplier_comes_from_the_target_epsilon_when_only_epsilon_is_given(plant):
    settings = TrainSettings(epochs=1, batch_size=64, dp_target_epsilon=4.0, dp_rounds=5)
    answer = plant.call(TrainRequest(RoundRef(15, 1), plant.model(), settings))
    assert answer["ok"], answer
    reply = parse_reply(TrainRequest(RoundRef(15, 1), plant.model(), settings), answer)
    assert reply.dp.noise_multiplier > PlantPolicy().min_noise_multiplier
    from shared.privacy.accounting import epsilon_of

    # the noise is the least that keeps all five planned rounds like this one within epsilon 4
    assert epsilon_of(reply.dp.history * 5, 1e-5) == pytest.approx(4.0, rel=0.02)
    assert 0 < reply.dp.epsilon < 4.0


def test_a_new_experiment_does_not_reset_the_plants_lifetime_privacy_budget(plant):
    plant.policy(lifetime_epsilon=3.0, max_epsilon=100.0)
    settings = TrainSettings(epochs=1, batch_size=64, dp_noise_multiplier=1.5, dp_target_epsilon=100.0)
    spent, experiment = [], 20
    while True:
        answer = plant.call(TrainRequest(RoundRef(experiment, 1), plant.model(), settings))
        if not answer["ok"]:
            break
        spent.append(answer["dp"]["lifetime_epsilon"])
        experiment += 1  # each round under a fresh experiment id, as an attacker would
    refused(answer, "lifetime epsilon", "budget 3.0")
    assert spent and spent == sorted(spent) and spent[-1] <= 3.0


def test_a_noise_multiplier_below_the_policy_minimum_is_refused(plant):
    settings = TrainSettings(dp_noise_multiplier=0.1)
    refused(plant.call(TrainRequest(RoundRef(30, 1), plant.model(), settings)), "below this plant's minimum")


def test_an_evaluation_releases_no_bin_of_fewer_rows_than_the_minimum(plant):
    plant.policy(min_release_rows=25)
    answer = plant.call(EvaluateRequest(RoundRef(31, 0), plant.model()))
    assert answer["ok"], answer
    for split in ("val", "test"):
        part = answer[split]
        counts = part["hist_pos"] + part["hist_neg"]
        assert part["n"] == 0 or counts[counts > 0].min() >= 25


def test_a_plant_reveals_for_one_attempt_of_a_round_only(plant):
    # two unmasked sums of one round over different cohorts would differ by single updates
    plant.state.record_reveal("40:1:1", ["a", "b", "c"])
    with pytest.raises(Exception, match="one attempt of a round"):
        plant.state.record_reveal("40:1:2", ["a", "b"])
    plant.state.record_reveal("40:2:1", ["a", "b"])  # another round is fine
    plant.state.record_reveal("4:1:2", ["a", "b"])  # and another experiment whose id is a prefix


def test_a_plant_trains_from_given_global_weights_in_one_round_only(plant):
    assert plant.call(TrainRequest(RoundRef(41, 1), plant.model(), TrainSettings()))["ok"]
    assert plant.call(TrainRequest(RoundRef(41, 1, 2), plant.model(), TrainSettings()))["ok"]  # a retry
    refused(plant.call(TrainRequest(RoundRef(41, 2), plant.model(), TrainSettings())), "in one round only")


def test_only_trusted_peers_when_the_data_owner_lists_them(plant):
    setup = secagg(plant.state)
    peers = {name: key for name, key in setup.participants.items() if name != NAME}
    first = sorted(peers)[0]
    (plant.state.directory / "trusted_peers.yaml").write_text(f"{first}: {peers[first]}\n")
    refused(plant.call(TrainRequest(RoundRef(42, 1), plant.model(), TrainSettings(), setup)),
            "not on this plant's trusted peers list")
    (plant.state.directory / "trusted_peers.yaml").write_text("\n".join(f"{k}: {v}" for k, v in peers.items()))
    answer = plant.call(TrainRequest(RoundRef(42, 1, 2), plant.model(), TrainSettings(), setup))
    assert answer["ok"] and answer["train_loss"] is None  # masked, and no training loss under secure aggregation


def test_a_huge_model_spec_is_refused_without_building_it(plant):
    import time as clock

    names = tuple(f"f{i}" for i in range(4096))
    spec = ModelSpec("lstm", 4096, sequence_length=2, hidden_size=4096, num_layers=8)
    huge = ModelPart(names, ScalerMsg(np.zeros(4096), np.ones(4096)), spec, {"w": np.zeros(1)})
    started = clock.monotonic()
    refused(plant.call(TrainRequest(RoundRef(43, 1), huge, TrainSettings())), "parameters")
    assert clock.monotonic() - started < 5


@pytest.mark.parametrize("changes,words", [
    ({"hidden_size": 4096, "num_layers": 8, "cross_layers": 8}, "parameters"),  # within the spec's bounds, too big
    ({"hidden_size": 4096, "num_layers": 9}, "num_layers"),
    ({"cross_layers": 9}, "cross_layers"),
    ({"hidden_size": 2 ** 31}, "hidden_size"),
])
def test_a_hostile_mlp_spec_is_refused_without_building_it(plant, changes, words):
    import time as clock

    spec = ModelSpec("mlp", len(plant.names), **changes)
    huge = ModelPart(plant.names, ScalerMsg(plant.scaler.mean, plant.scaler.scale), spec, {"w": np.zeros(1)})
    started = clock.monotonic()
    refused(plant.call(TrainRequest(RoundRef(47, 1), huge, TrainSettings())), words)
    assert clock.monotonic() - started < 5


def test_an_mlp_trains_under_dp_sgd_at_the_plant(plant):
    spec = ModelSpec("mlp", len(plant.names), hidden_size=16)
    model = ModelPart(plant.names, ScalerMsg(plant.scaler.mean, plant.scaler.scale), spec,
                      get_weights(build_model(spec, seed=0)))
    answer = plant.call(TrainRequest(RoundRef(48, 1), model, TrainSettings(dp_noise_multiplier=1.0)))
    assert answer["ok"] and answer["dp"]["epsilon"] > 0
    assert set(answer["weights"]) == set(model.weights)


def test_no_experiment_goes_above_max_epsilon_even_without_a_target(plant):
    plant.policy(max_epsilon=1.0, min_noise_multiplier=0.3, lifetime_epsilon=1000.0)
    settings = TrainSettings(epochs=5, batch_size=64, dp_noise_multiplier=0.3)
    refused(plant.call(TrainRequest(RoundRef(44, 1), plant.model(), settings)), "> target 1.0")


def test_dp_sgd_is_refused_for_sequence_models(plant):
    spec = ModelSpec("lstm", len(plant.names), sequence_length=4)
    model = ModelPart(plant.names, ScalerMsg(plant.scaler.mean, plant.scaler.scale), spec,
                      get_weights(build_model(spec, seed=0)))
    refused(plant.call(TrainRequest(RoundRef(45, 1), model, TrainSettings(dp_noise_multiplier=1.0))),
            "DP-SGD is for row models")


def test_per_attempt_caps_outlive_the_hourly_window(plant):
    request = TrainRequest(RoundRef(46, 1), plant.model(), TrainSettings())
    assert plant.call(request)["ok"]
    import sqlite3

    with sqlite3.connect(plant.state.ledger_path) as db:  # an hour later: the hourly window is empty
        db.execute("DELETE FROM calls")
    refused(plant.call(request), "already called 1 time")


def test_a_forged_operation_name_cannot_forge_a_log_line(plant, caplog):
    with caplog.at_level(logging.WARNING):
        plant.call(None, {"op": "x\n2099-01-01 INFO approved everything"})
    assert "\n2099-01-01" not in caplog.text


def test_a_private_evaluation_is_noisy_and_charged_to_the_plants_ledger(plant):
    plant.policy(evaluation_noise=5.0)
    answers = [plant.call(EvaluateRequest(RoundRef(50, 0, attempt), plant.model())) for attempt in (1, 2)]
    assert all(a["ok"] for a in answers), answers
    a, b = answers
    # two releases of the same model on the same rows differ: the noise is fresh each time
    assert not np.array_equal(a["val"]["hist_neg"], b["val"]["hist_neg"]) or a["val"]["loss"] != b["val"]["loss"]
    import sqlite3

    with sqlite3.connect(plant.state.ledger_path) as db:
        steps = db.execute("SELECT noise_multiplier, sample_rate, steps FROM dp_ledger WHERE experiment = 50").fetchall()
    assert steps == [(5.0, 1.0, 1), (5.0, 1.0, 1)]


def test_require_dp_makes_evaluation_private_too(plant):
    plant.policy(require_dp=True)
    assert PlantPolicy(require_dp=True).effective_evaluation_noise > 0
    assert plant.call(EvaluateRequest(RoundRef(51, 0), plant.model()))["ok"]
    import sqlite3

    with sqlite3.connect(plant.state.ledger_path) as db:
        assert db.execute("SELECT COUNT(*) FROM dp_ledger WHERE experiment = 51").fetchone()[0] == 1


# --- the evaluation inside a training call (one call per plant per round) ---------------------------------

def ledger_steps(plant, experiment: int) -> list:
    import sqlite3

    with sqlite3.connect(plant.state.ledger_path) as db:
        return db.execute("SELECT noise_multiplier, sample_rate, steps FROM dp_ledger WHERE experiment = ?",
                          (experiment,)).fetchall()


def test_a_training_call_scores_the_model_it_trains_from_as_an_evaluate_call_would(plant):
    request = TrainRequest(RoundRef(60, 1), plant.model(), TrainSettings(), evaluate=True)
    reply = parse_reply(request, plant.call(request))
    alone = parse_reply(EvaluateRequest(RoundRef(60, 0, 2), plant.model()),
                        plant.call(EvaluateRequest(RoundRef(60, 0, 2), plant.model())))
    assert reply.weights is not None and reply.evaluation is not None
    for mine, theirs in ((reply.evaluation.val, alone.val), (reply.evaluation.test, alone.test)):
        assert mine.n == theirs.n and mine.loss == pytest.approx(theirs.loss) and mine.auc == theirs.auc
        assert np.array_equal(mine.hist_pos, theirs.hist_pos) and np.array_equal(mine.hist_neg, theirs.hist_neg)


def test_a_training_call_carries_no_evaluation_unless_asked(plant):
    answer = plant.call(TrainRequest(RoundRef(61, 1), plant.model(), TrainSettings()))
    assert answer["ok"] and "evaluation" not in answer


def test_the_evaluation_in_a_training_call_uses_the_evaluate_calls_key_once(plant):
    # training round 2 scores round 1's model: the same ledger key as EvaluateRequest(round 1, same attempt)
    assert plant.call(TrainRequest(RoundRef(62, 2), plant.model(), TrainSettings(), evaluate=True))["ok"]
    refused(plant.call(EvaluateRequest(RoundRef(62, 1), plant.model())), "evaluate was already called 1 time")
    # and the other way round: an evaluate call first, then a training call that asks for the same scores
    assert plant.call(EvaluateRequest(RoundRef(63, 0), plant.model()))["ok"]
    refused(plant.call(TrainRequest(RoundRef(63, 1), plant.model(), TrainSettings(), evaluate=True)),
            "evaluate was already called 1 time", "round 0 attempt 1")


def test_a_refused_evaluation_spends_nothing_of_the_training_attempt(plant):
    assert plant.call(EvaluateRequest(RoundRef(64, 0), plant.model()))["ok"]
    refused(plant.call(TrainRequest(RoundRef(64, 1), plant.model(), TrainSettings(), evaluate=True)), "evaluate")
    assert plant.call(TrainRequest(RoundRef(64, 1), plant.model(), TrainSettings()))["ok"]  # same attempt


def test_every_attempt_of_a_round_yields_at_most_one_evaluation_and_no_more_attempts_than_the_policy(plant):
    plant.policy(max_attempts=2)
    for attempt in (1, 2):
        request = TrainRequest(RoundRef(65, 1, attempt), plant.model(), TrainSettings(), evaluate=True)
        assert plant.call(request)["ok"]
        refused(plant.call(request), "already called")  # a replay of the attempt: no second evaluation
    refused(plant.call(TrainRequest(RoundRef(65, 1, 3), plant.model(), TrainSettings(), evaluate=True)),
            "this plant allows 2")
    refused(plant.call(EvaluateRequest(RoundRef(65, 0, 3), plant.model())), "this plant allows 2")


def test_a_training_call_with_an_evaluation_counts_two_calls_against_the_hourly_cap(plant):
    plant.policy(max_calls_per_hour=1)
    refused(plant.call(TrainRequest(RoundRef(66, 1), plant.model(), TrainSettings(), evaluate=True)),
            "in the last hour")


def test_the_evaluation_in_a_training_call_is_noisy_and_charged_like_an_evaluate_call(plant):
    plant.policy(evaluation_noise=5.0)
    assert plant.call(TrainRequest(RoundRef(67, 1), plant.model(), TrainSettings()))["ok"]
    assert ledger_steps(plant, 67) == []  # no evaluation asked: nothing charged
    weights = get_weights(build_model(plant.spec, seed=1))
    answer = plant.call(TrainRequest(RoundRef(67, 2), plant.model(weights=weights), TrainSettings(), evaluate=True))
    assert answer["ok"], answer
    assert ledger_steps(plant, 67) == [(5.0, 1.0, 1)]


def test_the_evaluation_in_a_training_call_stops_at_the_privacy_budget(plant):
    plant.policy(evaluation_noise=0.5, max_epsilon=1.0, lifetime_epsilon=1000.0)
    refused(plant.call(TrainRequest(RoundRef(68, 1), plant.model(), TrainSettings(), evaluate=True)),
            "privacy budget exhausted")
    assert plant.call(TrainRequest(RoundRef(68, 1, 2), plant.model(), TrainSettings()))["ok"]


def test_the_evaluation_in_a_training_call_releases_no_bin_of_fewer_rows_than_the_minimum(plant):
    plant.policy(min_release_rows=25)
    answer = plant.call(TrainRequest(RoundRef(69, 1), plant.model(), TrainSettings(), evaluate=True))
    assert answer["ok"], answer
    for split in ("val", "test"):
        part = answer["evaluation"][split]
        counts = part["hist_pos"] + part["hist_neg"]
        assert part["n"] == 0 or counts[counts > 0].min() >= 25


def test_a_byzantine_plant_in_process_corrupts_its_update_but_scores_honestly(plant, data, monkeypatch):
    from factory_agent.plant.state import BYZANTINE_ENV

    monkeypatch.delenv(BYZANTINE_ENV, raising=False)
    d, index = data
    settings = TrainSettings(seed=5)
    honest = plant.call(TrainRequest(RoundRef(70, 1), plant.model(), settings, evaluate=True))
    flipped = handle(d.features, d.labels, index, TrainRequest(RoundRef(71, 1), plant.model(), settings,
                                                               evaluate=True).to_wire(), plant.state, "sign_flip")
    assert honest["ok"] and flipped["ok"], flipped
    for name, w in honest["weights"].items():
        g = plant.weights[name]
        assert np.allclose(flipped["weights"][name], g - (w - g), atol=1e-5)
    assert flipped["evaluation"]["val"]["loss"] == pytest.approx(honest["evaluation"]["val"]["loss"])
    import os

    assert BYZANTINE_ENV not in os.environ  # the attack was an argument, not the process's environment


# --- DP-SGD's batch, steps and noise as a hostile dashboard asks for them: the plant caps or refuses -------------

def _dp_reply(plant, ref, settings):
    request = TrainRequest(ref, plant.model(), settings)
    answer = plant.call(request)
    assert answer["ok"], answer
    return parse_reply(request, answer)


def test_a_batch_larger_than_the_plant_is_one_full_batch_accounted_at_rate_one(plant):
    from shared.privacy.accounting import epsilon_of

    settings = TrainSettings(epochs=2, batch_size=65536, dp_target_epsilon=2.0, dp_rounds=3)
    reply = _dp_reply(plant, RoundRef(60, 1), settings)
    assert reply.dp.history == [[reply.dp.noise_multiplier, 1.0, 2]]  # q capped at 1, one step per epoch
    assert reply.steps == 2
    assert epsilon_of(reply.dp.history * 3, 1e-5) <= 2.0  # the three planned rounds fit the target at q = 1


def test_a_tiny_noise_multiplier_with_a_target_is_raised_to_the_policy_minimum(plant):
    plant.policy(min_noise_multiplier=0.8)
    settings = TrainSettings(epochs=1, batch_size=512, dp_noise_multiplier=0.01, dp_target_epsilon=8.0)
    assert _dp_reply(plant, RoundRef(61, 1), settings).dp.noise_multiplier == 0.8


def test_a_dashboard_that_understates_the_rounds_gets_one_round_then_a_refusal(plant):
    # dp_rounds=1 for what is really a multi-round experiment: the plant's noise covers one round only, so the
    # first round spends about the whole target and the plant's ledger refuses the second
    settings = TrainSettings(epochs=1, batch_size=512, dp_target_epsilon=1.0, dp_rounds=1)
    first = _dp_reply(plant, RoundRef(62, 1), settings)
    assert 0.9 < first.dp.epsilon <= 1.0
    lifetime = first.dp.lifetime_epsilon
    moved = {k: v + 0.01 if v.dtype.kind == "f" else v for k, v in plant.weights.items()}  # round 1's model
    refused(plant.call(TrainRequest(RoundRef(62, 2), plant.model(weights=moved), settings)),
            "privacy budget exhausted", "> target 1.0")
    third = _dp_reply(plant, RoundRef(63, 1), TrainSettings(epochs=1, batch_size=512, dp_target_epsilon=0.5))
    assert third.dp.lifetime_epsilon > lifetime  # the refused round was never charged, nor trained: only this one


def test_more_steps_than_the_budget_allows_at_a_fixed_noise_are_refused_before_training(plant):
    plant.policy(max_epsilon=4.0, min_noise_multiplier=0.5)
    settings = TrainSettings(epochs=20, batch_size=8, dp_noise_multiplier=0.5, dp_target_epsilon=4.0)
    refused(plant.call(TrainRequest(RoundRef(64, 1), plant.model(), settings)), "privacy budget exhausted")
    retry = _dp_reply(plant, RoundRef(64, 1, 2), TrainSettings(epochs=1, batch_size=512, dp_target_epsilon=4.0))
    assert len(retry.dp.history) == 1  # the refused attempt was never written to the plant's ledger


def test_a_target_above_the_policy_maximum_is_refused_whatever_the_batch(plant):
    plant.policy(max_epsilon=2.0)
    settings = TrainSettings(epochs=1, batch_size=65536, dp_target_epsilon=50.0)
    refused(plant.call(TrainRequest(RoundRef(65, 1), plant.model(), settings)), "above this plant's maximum 2.0")


def test_a_dp_batch_whose_per_sample_gradients_would_exhaust_memory_is_refused_before_training(plant):
    from factory_agent.plant.inputs import parameters

    size = parameters(plant.spec)
    plant.policy(max_dp_batch_values=100 * size)
    settings = TrainSettings(epochs=1, batch_size=65536, dp_target_epsilon=4.0)
    refused(plant.call(TrainRequest(RoundRef(66, 1), plant.model(), settings)), "per-sample gradient values",
            "lower privacy.batch_size to 100")
    assert _dp_reply(plant, RoundRef(66, 1, 2), TrainSettings(epochs=1, batch_size=100, dp_target_epsilon=4.0)).dp


def test_the_dp_batch_memory_cap_is_a_policy_setting_with_a_flag():
    from factory_agent.config import POLICY_FLAGS

    assert "max_dp_batch_values" in POLICY_FLAGS
    with pytest.raises(Exception, match="max_dp_batch_values must be at least 1"):
        PlantPolicy(max_dp_batch_values=0)


def test_pysyfts_second_run_on_the_empty_mocks_does_no_work_counts_nothing_and_logs_nothing(plant, caplog):
    """PySyft 0.9.5 runs approved code again on the assets' mocks, each an ActionObject of ActionDataEmpty
    (`Asset.no_mock()`), with the same request (factory_agent.plant.twin_run): answered without work, without a
    ledger entry and without a log line; a genuine replay is still refused and logged."""
    from factory_agent.https_datasite import import_syft
    from factory_agent.plant.twin_run import TWIN_RUN_ANSWER

    import_syft()
    from syft.service.action.action_object import ActionObject

    empty = ActionObject.empty()  # what Asset.no_mock() stores, and what the second run receives per asset
    evaluate = EvaluateRequest(RoundRef(7, 0), plant.model())  # the model train (7, 1) scores
    train = TrainRequest(RoundRef(7, 1), plant.model(), TrainSettings(), evaluate=True)
    with caplog.at_level(logging.DEBUG, logger="factory_agent"):
        assert plant.call(StatsRequest(7, plant.names))["ok"]
        for request in (StatsRequest(7, plant.names), evaluate, train):
            assert handle(empty, empty, empty, request.to_wire(), plant.state) == {"ok": False, "error": TWIN_RUN_ANSWER}
    assert not [r for r in caplog.records if r.levelno >= logging.INFO], caplog.text
    assert plant.call(train)["ok"]  # the second runs claimed nothing: this is the attempt's first training call
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        refused(plant.call(evaluate), "evaluate was already called 1 time(s) for experiment 7 round 0 attempt 1")
        refused(plant.call(train), "already called 1 time(s) for experiment 7 round 0 attempt 1")  # its evaluation
    assert caplog.text.count("REFUSED") == 2


# --- work bounded by cost (issue 24) --------------------------------------------------------------------------

def _absent_feature_model(plant, absent: int | None = None, channels: int = 256) -> ModelPart:
    """The cost attack of issue 24: the plant's features and `absent` it lacks (default: up to the protocol's
    4,096 features), a wide CNN (honest scaler)."""
    absent = 4096 - len(plant.names) if absent is None else absent
    names = plant.names + tuple(f"absent_{i}" for i in range(absent))
    mean = np.concatenate([plant.scaler.mean, np.zeros(absent)])
    scale = np.concatenate([plant.scaler.scale, np.ones(absent)])
    spec = ModelSpec("cnn", len(names), channels=channels, hidden_size=16)
    return ModelPart(names, ScalerMsg(mean, scale), spec, get_weights(build_model(spec, seed=0)))


def test_the_cost_attack_is_refused_before_any_array_is_made(plant):
    import tracemalloc

    attack = _absent_feature_model(plant)
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        answer = plant.call(EvaluateRequest(RoundRef(80, 1), attack))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    refused(answer, f"names {4096 - len(plant.names)} features this plant lacks", "max_missing_features")
    # the aligned copy alone would be rows x 4,096 float32 (13 MB here); the refusal makes none
    assert peak < 4_000_000, peak
    refused(plant.call(StatsRequest(81, attack.features)), "features this plant lacks")


def test_a_model_too_heavy_per_row_is_refused_even_over_the_plants_own_features(plant):
    plant.policy(max_missing_features=4096)
    answer = plant.call(EvaluateRequest(RoundRef(82, 1), _absent_feature_model(plant)))
    refused(answer, "max_example_flops")


def test_evaluation_runs_in_batches_sized_to_the_policy_and_scores_the_same(plant, monkeypatch):
    from shared import model_cost
    from shared.plant_arrays import PlantArrays

    sizes, batch = [], PlantArrays.batch

    def recorded(self, positions, spec):  # the real batch, its size noted
        sizes.append(len(positions))
        return batch(self, positions, spec)

    monkeypatch.setattr(PlantArrays, "batch", recorded)
    whole = plant.call(EvaluateRequest(RoundRef(83, 1), plant.model()))
    assert max(sizes) > 7
    sizes.clear()
    plant.policy(max_batch_values=7 * model_cost.example_cost(plant.spec).values)  # 7 rows per batch
    batched = plant.call(EvaluateRequest(RoundRef(83, 2), plant.model()))
    assert max(sizes) == 7
    assert whole["ok"] and batched["ok"], (whole, batched)
    for split in ("val", "test"):
        assert batched[split]["n"] == whole[split]["n"] > 7
        assert batched[split]["loss"] == pytest.approx(whole[split]["loss"], rel=1e-5)
        np.testing.assert_array_equal(batched[split]["hist_pos"], whole[split]["hist_pos"])


def test_a_training_batch_over_the_plants_value_limit_is_refused(plant):
    from shared import model_cost

    per = model_cost.example_cost(plant.spec).values * model_cost.TRAINING_VALUES
    plant.policy(max_batch_values=32 * per, require_secure_aggregation=False)
    answer = plant.call(TrainRequest(RoundRef(84, 1), plant.model(), TrainSettings(epochs=1, batch_size=64)))
    refused(answer, "lower batch_size to 32 or less")
