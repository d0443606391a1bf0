"""Central DP that means what it says (issue 12): noise from the CSPRNG, q = 1 unless plants are really sampled,
Poisson sampling of plants with every draw accounted, a noise multiplier derived from a target epsilon, and the
sampling assumption shown next to epsilon."""

import random

import numpy as np
import pytest

from dashboard.extensions import db
from dashboard.models import Experiment
from dashboard.orchestration import budget, selection
from dashboard.orchestration.engine import RoundEngine
from shared.experiment.training import strategy_for
from shared.privacy.accounting import epsilon_spent, gaussian_step
from tests.dashboard.conftest import ADMIN, register


def create(client, headers, **body):
    return client.post("/api/experiments", json={"name": "dp", **body}, headers=headers)


def ready(app, eid: int) -> None:
    """Round 0 done (a global scaler), so that the engine's next step is a round."""
    with app.app_context():
        experiment = db.session.get(Experiment, eid)
        experiment.scaler, experiment.status = {"mean": [0.0, 0.0], "scale": [1.0, 1.0]}, "running"
        db.session.commit()


# --- the experiment's settings -----------------------------------------------------------------------------------

def test_sampling_rate_defaults_to_one_and_takes_values_in_zero_one(client, api):
    assert create(client, api).get_json()["config"]["sampling_rate"] == 1.0
    assert create(client, api, sampling_rate=0.25).get_json()["config"]["sampling_rate"] == 0.25
    for bad in (0, -0.5, 1.01, "half", True, None):
        resp = create(client, api, sampling_rate=bad)
        assert resp.status_code == 400 and resp.get_json()["detail"]["field"] == "sampling_rate", bad
        assert "sampling_rate" in resp.get_json()["error"]


@pytest.mark.parametrize("body", [{"privacy": {"mode": "none"}}, {"privacy": {"mode": "dp_sgd"}},
                                  {"secure_aggregation": True},
                                  {"privacy": {"mode": "central", "mechanism": "laplace"}}])
def test_plants_can_be_sampled_with_any_privacy_mode(client, api, body):
    resp = create(client, api, sampling_rate=0.5, **body)
    assert resp.status_code == 201, resp.get_json()


def test_a_target_epsilon_without_a_noise_multiplier_derives_it_over_the_rounds(client, api):
    privacy = create(client, api, rounds=20, privacy={"mode": "central", "epsilon": 4, "delta": 1e-6}
                     ).get_json()["config"]["privacy"]
    sigma = privacy["noise_multiplier"]
    assert privacy["noise_multiplier_source"] == "target_epsilon"
    assert 4 - 0.01 <= epsilon_spent([(sigma, 1.0)] * 20, 1e-6) <= 4  # every planned round fits
    sampled = create(client, api, rounds=20, sampling_rate=0.2, privacy={"mode": "central", "epsilon": 4,
                                                                         "delta": 1e-6}).get_json()["config"]["privacy"]
    assert sampled["noise_multiplier"] < sigma  # a draw at q = 0.2 costs less than a round of every plant
    assert epsilon_spent([gaussian_step(sampled["noise_multiplier"], 0.2)] * 20, 1e-6) <= 4


def test_with_listed_plants_the_derived_noise_covers_the_draws_that_fall_short_on_average(client, api):
    """3 plants at q = 0.6, at least 2: a draw runs a round with probability 0.648, so 3 rounds take 5 draws."""
    for name in ("a", "b", "c"):
        assert register(client, name).status_code == 201
    privacy = create(client, api, rounds=3, sampling_rate=0.6, min_factories=2, factories=["a", "b", "c"],
                     privacy={"mode": "central", "epsilon": 20}).get_json()["config"]["privacy"]
    spent = [epsilon_spent([("draw", privacy["noise_multiplier"], 0.6)] * n, 1e-5) for n in (5, 6)]
    assert 20 - 0.01 <= spent[0] <= 20 < spent[1]


def test_an_operator_noise_multiplier_is_kept_and_the_default_is_labelled(client, api):
    given = create(client, api, privacy={"mode": "central", "epsilon": 1, "noise_multiplier": 0.5}).get_json()
    assert given["config"]["privacy"]["noise_multiplier"] == 0.5  # too small for 5 rounds: the budget stops it
    assert given["config"]["privacy"]["noise_multiplier_source"] == "operator"
    default = create(client, api, privacy={"mode": "central"}).get_json()["config"]["privacy"]
    assert default["noise_multiplier"] == 1.0 and default["noise_multiplier_source"] == "default"
    dp_sgd = create(client, api, privacy={"mode": "dp_sgd", "epsilon": 4}).get_json()["config"]["privacy"]
    assert dp_sgd["noise_multiplier"] is None  # each plant derives it over its own steps


def test_a_target_epsilon_no_noise_can_reach_is_400_naming_epsilon(client, api):
    resp = create(client, api, rounds=1000, privacy={"mode": "central", "epsilon": 1e-4})
    assert resp.status_code == 400 and resp.get_json()["detail"]["field"] == "privacy.epsilon"
    assert "too small for 1000 round(s)" in resp.get_json()["error"]


def test_the_form_sends_the_sampling_rate_and_leaves_the_noise_multiplier_to_the_target(app, client):
    client.post("/login", data={"email": ADMIN[0], "password": ADMIN[1]})
    form = {"name": "f", "model_type": "cnn", "algorithm": "fedavg", "server_optimizer": "none", "rounds": "10",
            "privacy_mode": "central", "privacy_epsilon": "6", "robust_method": "none", "sampling_rate": "0.5",
            "min_factories": "2"}
    assert client.post("/experiments", data=form).status_code == 302
    with app.app_context():
        config = db.session.scalars(db.select(Experiment).filter_by(name="f")).one().config
    assert config["sampling_rate"] == 0.5 and config["privacy"]["noise_multiplier_source"] == "target_epsilon"
    resp = client.post("/experiments", data={**form, "sampling_rate": "2"})
    assert resp.status_code == 400 and 'data-field="sampling_rate"' in resp.text


# --- the engine: noise, accountant step, draw ----------------------------------------------------------------------

def test_two_engine_noise_draws_for_the_same_experiment_and_round_differ(app, client, api):
    """What run_round passes to aggregation as central DP noise: two draws for the same experiment, seed and
    round are independent (the old draw was np.random.default_rng([seed, experiment id, round]))."""
    from shared.strategies import ClientUpdate, ServerState

    eid = create(client, api, seed=3, privacy={"mode": "central", "noise_multiplier": 1.0, "max_grad_norm": 2.0}
                 ).get_json()["id"]
    with app.app_context():
        strategy = strategy_for(db.session.get(Experiment, eid).settings, 4)
        engine = RoundEngine(app)
        zeros = {"w": np.zeros(50_000, dtype=np.float32)}
        updates = [ClientUpdate(factory=f"p{i}", weights=zeros, num_samples=10, steps=1) for i in range(4)]
        models = [strategy.aggregate(zeros, updates, ServerState(), engine.dp_noise()).weights["w"] for _ in range(2)]
    expected = 1.0 * 2.0 / 4  # sigma C / m
    for model in models:
        assert model.std() == pytest.approx(expected, rel=0.02)
    assert abs(np.corrcoef(models[0], models[1])[0, 1]) < 0.03
    assert (models[0] - models[1]).std() == pytest.approx(np.sqrt(2) * expected, rel=0.02)


def test_a_dropout_is_not_sampling_the_accountant_records_q_1(app, client, api):
    """Three plants online, two trained (one dropped out): the round is a step at q = 1, not q = 2/3."""
    for name in ("plant_a", "plant_b", "plant_c"):
        register(client, name)
    eid = create(client, api, privacy={"mode": "central", "epsilon": 50, "noise_multiplier": 1.2}).get_json()["id"]
    with app.app_context():
        experiment = db.session.get(Experiment, eid)
        assert len(selection.eligible(experiment).plants) == 3
        step = budget.privacy_step(experiment)
        assert step == (1.2, 1.0)
        aggregate = {}
        budget.record_central(experiment, 1, step, aggregate)
        db.session.commit()
        assert experiment.privacy_history == [[1.2, 1.0]]
        assert aggregate["privacy_epsilon"] == pytest.approx(epsilon_spent([(1.2, 1.0)], 1e-5))
        assert aggregate["privacy_epsilon"] > epsilon_spent([(1.2, 2 / 3)], 1e-5)  # what was reported before
    spent = client.get(f"/api/experiments/{eid}", headers=api).get_json()["privacy_spent"]
    assert spent["sampling_rate"] == 1.0 and spent["amplified_by_sampling"] is False
    assert spent["rounds_accounted"] == 1 and spent["level"] == "plant"


def test_a_history_recorded_with_dropouts_as_sampling_is_reported_at_q_1(app, client, api):
    eid = create(client, api, privacy={"mode": "central", "noise_multiplier": 1.2}).get_json()["id"]
    with app.app_context():
        db.session.get(Experiment, eid).privacy_history = [[1.2, 0.5], [1.2, 0.75]]
        db.session.commit()
    spent = client.get(f"/api/experiments/{eid}", headers=api).get_json()["privacy_spent"]
    assert spent["epsilon"] == pytest.approx(epsilon_spent([(1.2, 1.0)] * 2, 1e-5))


def test_each_tick_draws_plants_with_probability_q_and_accounts_every_draw(app, client, api):
    """Three plants at q = 0.5, at least 2 per round: a round runs when the draw reaches 2 (probability 1/2);
    otherwise the experiment says so and draws again at the next tick. Every draw is in the accountant."""
    for name in ("plant_a", "plant_b", "plant_c"):
        register(client, name)
    eid = create(client, api, sampling_rate=0.5, min_factories=2,
                 privacy={"mode": "central", "noise_multiplier": 1.0}).get_json()["id"]
    ready(app, eid)
    rounds, messages, ticks = [], set(), 500
    with app.app_context():
        engine = RoundEngine(app, plant_sampler=random.Random(12))
        engine.run_round = lambda experiment, participants, federation: rounds.append([p.name for p in participants])
        for _ in range(ticks):
            engine.advance(eid)
            messages.add(db.session.get(Experiment, eid).message)
        history = db.session.get(Experiment, eid).privacy_history
    assert len(history) == ticks and all(step == ["draw", 1.0, 0.5] for step in history)
    assert len(rounds) / ticks == pytest.approx(0.5, abs=0.07)
    assert all(len(r) >= 2 for r in rounds)
    assert sum(len(r) == 3 for r in rounds) / len(rounds) == pytest.approx(0.25, abs=0.1)  # 1/8 of 1/2
    for name in ("plant_a", "plant_b", "plant_c"):  # given a round: 2 of 3 plants or all 3
        assert sum(name in r for r in rounds) / len(rounds) == pytest.approx(0.75, abs=0.1)
    short = [m for m in messages if m and m.startswith("drew")]
    assert short and all("fewer than min_factories 2: no round this tick" in m and "50%" in m
                         and "every draw counts against the privacy budget" in m for m in short)


def test_without_central_dp_a_draw_costs_nothing_and_every_plant_is_asked_at_q_1(app, client, api):
    for name in ("plant_a", "plant_b", "plant_c"):
        register(client, name)
    sampled = create(client, api, sampling_rate=0.5, min_factories=1).get_json()["id"]
    every = create(client, api, min_factories=1).get_json()["id"]
    ready(app, sampled)
    ready(app, every)
    rounds = []
    with app.app_context():
        engine = RoundEngine(app, plant_sampler=random.Random(5))
        engine.run_round = lambda experiment, participants, federation: rounds.append(
            (experiment.id, len(participants)))
        for _ in range(50):
            engine.advance(sampled)
            engine.advance(every)
        assert db.session.get(Experiment, sampled).privacy_history is None
    assert {n for e, n in rounds if e == every} == {3}
    assert {n for e, n in rounds if e == sampled} <= {1, 2, 3} and len([e for e, _ in rounds if e == sampled]) < 50


def test_the_budget_stops_the_next_draw_before_it_is_made(app, client, api):
    for name in ("plant_a", "plant_b"):
        register(client, name)
    eid = create(client, api, sampling_rate=0.5, min_factories=1,
                 privacy={"mode": "central", "noise_multiplier": 2.0, "epsilon": 6}).get_json()["id"]
    ready(app, eid)
    with app.app_context():
        engine = RoundEngine(app, plant_sampler=random.Random(1))
        engine.run_round = lambda experiment, participants, federation: None
        for _ in range(100):
            engine.advance(eid)
            if db.session.get(Experiment, eid).status != "running":
                break
        experiment = db.session.get(Experiment, eid)
        assert experiment.status == "budget_exhausted"
        assert "the next draw of plants would bring epsilon to" in experiment.message
        spent = epsilon_spent([tuple(s) for s in experiment.privacy_history], 1e-5)
    draws = len(experiment.privacy_history)
    assert draws >= 5 and spent <= 6 < epsilon_spent([("draw", 2.0, 0.5)] * (draws + 1), 1e-5)


# --- what operators see ---------------------------------------------------------------------------------------------

def test_privacy_spent_and_the_page_state_the_sampling_assumption(app, client, api):
    client.post("/login", data={"email": ADMIN[0], "password": ADMIN[1]})
    every = create(client, api, privacy={"mode": "central", "epsilon": 8}).get_json()
    sampled = create(client, api, sampling_rate=0.5, privacy={"mode": "central", "epsilon": 8}).get_json()
    assert every["privacy_spent"]["sampling_rate"] == 1.0 and not every["privacy_spent"]["amplified_by_sampling"]
    assert sampled["privacy_spent"]["sampling_rate"] == 0.5 and sampled["privacy_spent"]["amplified_by_sampling"]
    assert sampled["privacy_spent"]["noise_multiplier"] == sampled["config"]["privacy"]["noise_multiplier"]
    page = client.get(f"/experiments/{every['id']}").text
    assert "plant-level" in page and "sampling rate q = 1 (every plant every round; no amplification)" in page
    assert f"σ = {every['config']['privacy']['noise_multiplier']} (derived from the target ε over 10 rounds)" in page
    page = client.get(f"/experiments/{sampled['id']}").text
    assert "sampling rate q = 0.5: Poisson sampling of plants" in page and "every draw is accounted" in page
    laplace = create(client, api, sampling_rate=0.5, privacy={"mode": "central", "mechanism": "laplace"}).get_json()
    assert "which lowers no pure ε" in client.get(f"/experiments/{laplace['id']}").text
