"""Plants that bring their own CSVs: sequences by machine and cycle, an LSTM, awkward columns."""

import numpy as np
import pandas as pd
import pytest

from tests.integration.conftest import plants_online
from factoryfl_testing.harness import run_predict

pytestmark = pytest.mark.integration


def plant_csv(path, seed, lines, machines=10, cycles=150, extra_column=False):
    """Degradation runs: vibration drifts up before a failure; awkward columns on purpose."""
    rng = np.random.default_rng(seed)
    frames = []
    for m in range(machines):
        t = np.arange(cycles)
        health = np.cumsum(rng.gamma(1.0, 0.02, cycles))
        vibration = 1.0 + health + rng.normal(0, 0.05, cycles)
        failure = (health > np.quantile(health, 0.96)).astype(int)  # the last few cycles: heavy imbalance
        frame = pd.DataFrame({"unit": f"U{seed}-{m}", "cycle": t, "vibration": vibration,
                              "pressure_pa": 1e5 + rng.normal(0, 5e3, cycles),  # wide value range
                              "firmware": 3, "line": rng.choice(lines, cycles),  # constant, categories
                              "status": np.where(failure == 1, "FAILURE", "normal")})
        if extra_column:
            frame["ambient_c"] = rng.normal(20, 3, cycles)
        frames.append(frame)
    pd.concat(frames).sample(frac=1.0, random_state=seed).to_csv(path, index=False)  # unordered rows
    return path


@pytest.fixture(scope="module")
def plants(workdir, dashboard):
    a = plant_csv(workdir / "a.csv", 1, ["north", "south"])
    b = plant_csv(workdir / "b.csv", 2, ["south", "east"], extra_column=True)
    # two plants, plain rounds: they trust the dashboard (it refuses such experiments over plants that verify)
    common = ["--label-column", "status", "--group-column", "unit", "--time-column", "cycle", "--trust-dashboard"]
    with plants_online(workdir, dashboard, [("csv_a", ["--data", str(a), *common]),
                                            ("csv_b", ["--data", str(b), *common])]) as agents:
        yield agents


def test_lstm_on_windows_from_two_csv_plants_completes_and_scores_new_data(plants, dashboard, workdir):
    body = {"name": "lstm windows", "model_type": "lstm", "sequence_length": 8, "rounds": 3, "local_epochs": 2,
            "min_factories": 2, "factories": ["csv_a", "csv_b"], "learning_rate": 0.01, "personalization": "none"}
    eid = dashboard.api("POST", "/experiments", json=body).json()["id"]
    dashboard.api("POST", f"/experiments/{eid}/start")
    e = dashboard.wait_experiment(eid, timeout=400)
    assert len(e["rounds"]) == 3
    # the federation trains on the columns both plants have; categories are the union
    assert e["features"] == ["vibration", "pressure_pa", "firmware", "line=east", "line=north", "line=south"]
    print("LSTM test AUC by round:", [round(r["metrics"]["test_auc"], 3) for r in e["rounds"]])
    assert e["rounds"][-1]["metrics"]["test_auc"] > 0.8

    bundle = workdir / "lstm.safetensors"
    bundle.write_bytes(dashboard.api("GET", f"/experiments/{eid}/model").content)
    new = plant_csv(workdir / "new.csv", 7, ["north"], machines=2, cycles=30)
    out = workdir / "lstm_scores.csv"
    scores = run_predict(bundle, new, out)
    assert list(scores.columns) == ["row", "unit", "cycle", "probability", "prediction"]
    assert len(scores) == 2 * (30 - 8 + 1)  # one per window end, per machine
    assert scores.groupby("unit")["cycle"].min().tolist() == [7, 7]
