import time

import pandas as pd
import pytest

from factory_agent.floor.scoring import NoModelYet
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
    assert set(fields) == {"released_model", "scored_rows", "alerts_open", "drift"}  # never a row


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
