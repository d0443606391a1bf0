"""Algorithms and Byzantine robustness end to end: four real plants, one of them malicious on purpose."""

import pytest

from tests.integration.conftest import plants_online

pytestmark = pytest.mark.integration
HONEST = ["rb_default", "rb_heavy", "rb_hot"]
# robust rules, central DP and plain rounds need single updates or a draw at the dashboard: plants that trust it
# (--trust-dashboard; the dashboard refuses them over plants that verify membership: dashboard.services.trust)
PLANTS = [("rb_default", ["--simulate", "default", "--rows", "1500", "--seed", "11", "--trust-dashboard"]),
          ("rb_heavy", ["--simulate", "heavy_duty", "--rows", "1500", "--seed", "12", "--trust-dashboard"]),
          ("rb_hot", ["--simulate", "hot_climate", "--rows", "1500", "--seed", "13", "--trust-dashboard"]),
          ("rb_evil", ["--simulate", "default", "--rows", "1500", "--seed", "14", "--byzantine", "scale:-8",
                       "--trust-dashboard"])]


@pytest.fixture(scope="module")
def plants(workdir, dashboard):
    with plants_online(workdir, dashboard, PLANTS) as agents:
        yield agents


def run(dashboard, factories, **body):
    # personalization off: these tests share plants, and each experiment's personalization step would keep them
    # busy into the next test (tests/integration/test_rounds.py's run_experiment does the same)
    body = {"name": "robustness", "model_type": "cnn", "rounds": 3, "local_epochs": 1, "learning_rate": 0.01,
            "factories": factories, "min_factories": len(factories), "seed": 7, "personalization": "none", **body}
    resp = dashboard.api("POST", "/experiments", json=body)
    assert resp.status_code == 201, resp.text
    eid = resp.json()["id"]
    dashboard.api("POST", f"/experiments/{eid}/start")
    return dashboard.wait_experiment(eid, timeout=400)


def honest_metric(experiment, key):
    """Sample-weighted metric over the honest plants' own test data (comparable across runs)."""
    last = experiment["rounds"][-1]["per_factory"]
    pairs = [(last[p][key], last[p]["test_samples"]) for p in HONEST if last[p].get(key) is not None]
    return sum(v * n for v, n in pairs) / sum(n for _, n in pairs)


def test_the_malicious_plant_says_so_in_its_registration(plants, dashboard):
    assert dashboard.factories()["rb_evil"]["capabilities"]["byzantine"] == "scale:-8"
    assert "BYZANTINE MODE" in plants[3].log()


def test_median_resists_one_malicious_plant_where_fedavg_degrades(plants, dashboard):
    honest = run(dashboard, HONEST, algorithm="fedavg")  # named: the default is feddyn; median runs fedavg's mean
    attacked = run(dashboard, HONEST + ["rb_evil"], algorithm="fedavg")
    defended = run(dashboard, HONEST + ["rb_evil"], robust={"method": "median", "exclude_below": 0.0})
    auc = {name: honest_metric(e, "test_auc") for name, e in
           (("honest", honest), ("fedavg attacked", attacked), ("median attacked", defended))}
    f1 = {name: honest_metric(e, "test_f1") for name, e in
          (("honest", honest), ("fedavg attacked", attacked), ("median attacked", defended))}
    print("honest-plant test AUC:", {k: round(v, 3) for k, v in auc.items()},
          "F1:", {k: round(v, 3) for k, v in f1.items()})
    assert auc["fedavg attacked"] < auc["honest"] - 0.1
    assert auc["median attacked"] > auc["fedavg attacked"] + 0.1
    assert f1["median attacked"] >= f1["honest"] - 0.1
    reputation = defended["rounds"][-1]["aggregation"]["reputation"]
    assert reputation["rb_evil"] < min(reputation[p] for p in HONEST)
    assert "rb_evil" in defended["rounds"][0]["aggregation"]["outliers"]


@pytest.mark.parametrize("body, ran", [
    ({"algorithm": "fednova", "server_optimizer": "fedadam", "server_lr": 0.01}, "fednova+fedadam"),
    ({"algorithm": "feddyn", "feddyn_alpha": 0.01, "server_optimizer": "fedyogi"}, "feddyn+fedyogi"),
    ({"algorithm": "fedprox", "robust": {"method": "krum", "byzantine": 1}}, "fedprox+krum"),
    # c over the wire to the datasites, c_i in each plant's state folder (never with secure aggregation: refused)
    ({"algorithm": "scaffold", "server_optimizer": "fedavgm"}, "scaffold+fedavgm")])
def test_each_algorithm_runs_on_real_plants(plants, dashboard, body, ran):
    factories = HONEST + ["rb_evil"] if "robust" in body else HONEST
    e = run(dashboard, factories, rounds=2, **body)
    assert len(e["rounds"]) == 2
    assert all(r["metrics"]["test_auc"] is not None for r in e["rounds"])
    assert [r["aggregation"]["strategy"] for r in e["rounds"]] == [ran, ran]  # what aggregated, not what was asked


def test_central_dp_with_epsilon_8_stops_within_its_budget(plants, dashboard):
    body = {"privacy": {"mode": "central", "epsilon": 8.0, "delta": 1e-5, "max_grad_norm": 1.0,
                        "noise_multiplier": 1.2}}  # 3 rounds fit in epsilon 8 (3.84, 5.72, 7.25)
    resp = dashboard.api("POST", "/experiments", json={"name": "dp", "model_type": "cnn", "rounds": 50,
                                                       "local_epochs": 1, "factories": HONEST,
                                                       "min_factories": 3, **body})
    eid = resp.json()["id"]
    dashboard.api("POST", f"/experiments/{eid}/start")
    e = dashboard.wait_experiment(eid, statuses=("budget_exhausted",), timeout=400)
    spent = e["privacy_spent"]["epsilon"]
    epsilons = [r["metrics"]["privacy_epsilon"] for r in e["rounds"]]
    print(f"central DP: {len(e['rounds'])} rounds, epsilon by round {[round(x, 2) for x in epsilons]}")
    assert 0 < spent <= 8.0 and epsilons == sorted(epsilons) and epsilons[-1] == spent
    assert "budget exhausted" in e["message"]


@pytest.mark.parametrize("secure", [False, True], ids=["plain", "secure_aggregation"])
def test_one_of_four_plants_killed_mid_round_is_a_dropout_and_rejoins_after_restart(plants, dashboard, secure):
    """Kill 1 of 4 plants while a round trains: that round completes without it (with secure aggregation its
    pairwise masks are recovered: 3 survivors, threshold 3); restarted, it takes part again; every round is
    recorded exactly once."""
    import signal

    victim = plants[2]
    names = [p.name for p in plants]
    resp = dashboard.api("POST", "/experiments", json={
        "name": f"kill 1 of 4 ({'secure' if secure else 'plain'})", "model_type": "cnn", "rounds": 2,
        "local_epochs": 4, "factories": names, "min_factories": 3, "secure_aggregation": secure, "seed": 3,
        "personalization": "none"})
    eid = resp.json()["id"]
    dashboard.api("POST", f"/experiments/{eid}/start")
    dashboard.wait_for(lambda: dashboard.experiment(eid)["running_round"], 200, "round 1 to be running")
    victim.stop(signal.SIGKILL)
    dashboard.api("POST", f"/experiments/{eid}/pause")  # takes effect once round 1 ends: round 2 waits
    dashboard.wait_for(lambda: dashboard.experiment(eid)["current_round"] >= 1, 200, "round 1 to complete")
    victim.start().wait_ready()
    dashboard.wait_status(victim.name, ("online",))
    assert dashboard.api("POST", f"/experiments/{eid}/resume").json()["status"] == "running"
    e = dashboard.wait_experiment(eid, timeout=400)
    assert [r["number"] for r in e["rounds"]] == [1, 2]
    first, last = e["rounds"][0], e["rounds"][-1]
    assert victim.name in first["dropouts"] and victim.name not in first["participants"]
    assert len(first["participants"]) == 3 and sorted(last["participants"]) == sorted(names)
    assert bool((first["aggregation"] or {}).get("secure")) is secure
