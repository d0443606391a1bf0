import time

import numpy as np
import pandas as pd
import pytest

from factory_agent.floor.drift import FeatureTotals
from factory_agent.floor.scoring import FloorScorer, NoModelYet
from shared.data.simulator import simulate
from shared.predict import score_frame
from tests.factory_agent.floor.conftest import install, make_bundle


def test_nothing_is_scored_before_a_released_model_arrives(scorer, readings):
    with pytest.raises(NoModelYet, match="release one"):
        scorer.score(readings, "stream")
    assert scorer.heartbeat_fields() == {}


def test_scores_are_exactly_shared_predicts_and_the_heartbeat_carries_only_counts(scorer, delivery, readings):
    bundle = make_bundle(threshold=0.0)  # every reading at or above the threshold: every machine alerts
    model = install(delivery, bundle, model_id=3)
    batch = scorer.score(readings, "stream")
    pd.testing.assert_frame_equal(batch.scores, score_frame(bundle, readings))
    assert list(batch.scores.columns) == ["row", "machine_id", "cycle", "probability", "prediction"]
    fields = scorer.heartbeat_fields()
    assert fields["released_model"] == {"id": 3, "sha256": model.sha256, "kind": "global"}
    assert fields["scored_rows"] == len(readings) and fields["alerts_open"] == readings["machine_id"].nunique()
    assert isinstance(fields["drift"], float) and fields["drift"] >= 0
    assert set(fields) == {"released_model", "scored_rows", "alerts_open", "drift", "drift_baseline",
                           "alerts_opened", "alerts"}  # never a row
    assert fields["alerts_opened"] == readings["machine_id"].nunique() and fields["drift_baseline"] is None
    # by default an alert leaves the plant as its id, times and model only: no machine, no probability
    assert all(set(a) == {"id", "opened_at", "cleared_at", "model_id"} and a["model_id"] == 3
               for a in fields["alerts"])


def test_alerts_clear_when_a_later_model_scores_the_machines_below_its_threshold(scorer, delivery, store, readings):
    install(delivery, make_bundle(threshold=0.0), model_id=1)
    opened = scorer.score(readings, "stream").changes
    assert {c.machine for c in opened if c.opened} == set(readings["machine_id"])
    install(delivery, make_bundle(threshold=1.0), model_id=2)  # nothing reaches 1.0
    cleared = scorer.score(readings, "stream").changes
    assert {c.machine for c in cleared if not c.opened} == set(readings["machine_id"])
    assert store.counts() == (2 * len(readings), 0)
    history = store.alerts()
    assert len(history) == readings["machine_id"].nunique() and all(a["cleared_at"] for a in history)


def test_sequence_models_score_window_ends_per_machine(scorer, delivery, readings):
    install(delivery, make_bundle("lstm", threshold=0.5))
    batch = scorer.score(readings, "api")
    assert len(batch.scores) == len(readings) - 4 * (5 - 1)  # 4 machines, windows of 5
    assert scorer.heartbeat_fields()["scored_rows"] == len(batch.scores)


def test_scoring_throughput_at_the_plant(scorer, delivery, capsys):
    """Rows per second through the whole floor path (score, alerts, drift totals, SQLite), CNN on one CPU core."""
    install(delivery, make_bundle(threshold=0.5))
    frame = simulate("default", 20_000, seed=5, machines=40)
    scorer.score(frame.head(100), "warm-up")
    started = time.perf_counter()
    scorer.score(frame, "bench")
    rate = len(frame) / (time.perf_counter() - started)
    with capsys.disabled():
        print(f"\nplant floor throughput: {rate:,.0f} rows/s (20,000 rows, CNN, scores and alerts stored)")
    assert rate > 2_000


def test_alerts_opened_and_cleared_between_heartbeats_are_counted_with_their_peak(delivery, store):
    scorer = FloorScorer(delivery, store, drift_window=1000, share_alert_details=True)
    install(delivery, make_bundle(threshold=0.0), model_id=1)
    readings = simulate("default", 30, seed=2, machines=1)
    scorer.score(readings, "stream")
    install(delivery, make_bundle(threshold=1.0), model_id=2)
    scorer.score(readings, "stream")  # opened and cleared before any heartbeat
    fields = scorer.heartbeat_fields()
    assert fields["alerts_open"] == 0 and fields["alerts_opened"] == 1
    (alert,) = fields["alerts"]
    assert alert["cleared_at"] >= alert["opened_at"] and alert["machine"] == readings["machine_id"].iloc[0]
    stored = store.alert(alert["id"])
    assert alert["peak"] == round(stored["peak_probability"], 6) and stored["peak_probability"] >= \
        stored["opened_probability"]
    assert store.alert(alert["id"] + 1) is None


def test_the_drift_baseline_is_the_plants_validation_split_against_the_models_scaler(delivery, store):
    from factory_agent.floor.drift import DriftReference, drift_score
    from shared.data.csv_loader import load_frame
    from shared.data.simulator import FAILURE_MODE_COLUMNS

    data = load_frame(simulate("hot_climate", 600, seed=3), "machine_failure", FAILURE_MODE_COLUMNS, "machine_id",
                      "cycle", seed=3)
    reference = DriftReference.of(data)
    scorer = FloorScorer(delivery, store, drift_window=1000, reference=reference)
    bundle = make_bundle(threshold=0.5)
    install(delivery, bundle, model_id=4)
    baseline = scorer.heartbeat_fields()["drift_baseline"]
    validation = FeatureTotals.of(data.features[data.split == 1])
    assert baseline == round(drift_score(validation, bundle.scaler.mean, bundle.scaler.scale), 4) and baseline > 0
    assert scorer.drift_baseline() == baseline  # once per model


def test_a_reference_lacking_a_models_feature_reads_it_as_the_fill_value():
    from factory_agent.floor.drift import DriftReference

    reference = DriftReference(("a", "b"), np.array([[1.0, 2.0], [3.0, 4.0]]))
    totals = reference.totals(["b", "c", "a"], np.array([9.0, 7.0]))
    assert totals.sum.tolist() == [6.0, 14.0, 4.0] and totals.count == 2
