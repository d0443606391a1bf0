"""bench/cmapss.py and bench/local_gbdt.py (issue 25): the held-out truncation, the last-cycle metrics, the GBDT's
threshold and examples; the real C-MAPSS plants only where ../shared/data holds them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.cmapss import GROUP, HELD_OUT, TIME, cmapss_plants, last_cycle_metrics, truncate
from bench.local_gbdt import best_threshold, window_ends
from shared.data.csv_loader import load_frame

ROOT = Path(__file__).resolve().parents[2]  # ../shared beside the main checkout (or beside a worktree's folder)
DATA = next((d for d in (ROOT.parent / "shared" / "data" / "cmapss-fd001",
                         ROOT.parent.parent / "shared" / "data" / "cmapss-fd001") if d.is_dir()),
            ROOT.parent / "shared" / "data" / "cmapss-fd001")


def engines(lengths: list[int]) -> pd.DataFrame:
    rows = [{GROUP: u, TIME: c, "s1": float(c), "fail_30": int(n - c <= 30)}
            for u, n in enumerate(lengths, 1) for c in range(1, n + 1)]
    return pd.DataFrame(rows)


def test_every_cut_keeps_a_window_and_ends_within_its_engine():
    frame = engines([120, 60, 200])
    cut = truncate(frame, np.random.default_rng(0), cuts=7, window=50)
    assert cut[GROUP].nunique() == 21
    for unit, piece in cut.groupby(GROUP):
        full = len(frame[frame[GROUP] == unit // 100])
        assert 50 <= len(piece) <= full and list(piece[TIME]) == list(range(1, len(piece) + 1))
    again = truncate(frame, np.random.default_rng(0), cuts=7, window=50)
    pd.testing.assert_frame_equal(cut, again)  # seeded


def test_last_cycle_metrics_count_at_the_threshold():
    m = last_cycle_metrics(np.array([1, 1, 0, 0]), np.array([0.9, 0.4, 0.6, 0.1]), 0.5)
    assert (m["accuracy"], m["precision"], m["recall"], m["f1"]) == (0.5, 0.5, 0.5, 0.5)


def test_the_gbdt_threshold_is_the_f1_best_on_validation():
    labels, scores = np.array([0, 0, 1, 1, 0]), np.array([0.1, 0.3, 0.6, 0.8, 0.7])
    assert best_threshold(labels, scores) == 0.6
    assert best_threshold(np.zeros(3), scores[:3]) == 0.5


def test_the_gbdt_is_scored_on_the_rows_that_end_a_window():
    data = load_frame(engines([80, 70, 90, 75, 85, 95, 60, 65, 72, 88]), "fail_30", (), GROUP, TIME)
    ends = window_ends(data, 2, 50)
    tested = np.flatnonzero(data.split == 2)
    per_engine = {g: int((data.groups[tested] == g).sum()) for g in np.unique(data.groups[tested])}
    assert len(ends) == sum(n - 49 for n in per_engine.values() if n >= 50)
    assert np.array_equal(window_ends(data, 2, 1), tested)


@pytest.mark.skipif(not DATA.is_dir(), reason="the C-MAPSS plants are not in ../shared/data/cmapss-fd001")
def test_the_held_out_engines_never_reach_the_plants(tmp_path):
    plants, held = cmapss_plants(DATA, tmp_path, 3)
    assert len(plants) == 4
    for p in plants:
        trained = set(pd.read_csv(DATA / f"plant_{p.name[-1]}.csv")[GROUP].unique())
        kept = set(held.frames[p.name][GROUP] // 100)
        assert len(kept) == HELD_OUT and len(np.unique(p.data.groups)) == len(trained) - HELD_OUT
        assert held.last_rows(p.name)[GROUP].nunique() == held.frames[p.name][GROUP].nunique()


def test_the_pooled_gbdt_aligns_plants_whose_categories_differ(tmp_path):
    """The imbalanced CSV plants one-hot a product type each plant sees in part: the pooled GBDT trains on the
    union's aligned features and scores each plant on its own rows of them (it once failed to concatenate)."""
    from bench.local_gbdt import gbdt_rows
    from factoryfl_testing.inprocess import InProcessPlant

    rng = np.random.default_rng(0)
    plants = []
    for name, types in (("a", ["L", "M"]), ("b", ["L", "M", "H"])):
        frame = pd.DataFrame({"type": rng.choice(types, 600), "s1": rng.normal(size=600)})
        frame["fail"] = (frame["s1"] > 1.0).astype(int)
        plants.append(InProcessPlant.from_data(name, load_frame(frame, "fail"), tmp_path))
    assert plants[0].data.features.shape[1] != plants[1].data.features.shape[1]
    scores = gbdt_rows(plants, 1, 0)
    assert set(scores) == {"a", "b"} and all(s["pooled GBDT"] > 0.8 for s in scores.values())


def test_seed_tables_keep_plant_rows_as_rows():
    from bench.quality_seeds import tables_of

    out = tables_of("| plant (test F1) | federated | local GBDT |\n|---|---|---|\n| plant_default | 0.500 | – |\n"
                    "| release rule (the defaults) | val F1 |\n|---|---|\n| last round | 0.250 |\n")
    assert out["| plant (test F1) | federated | local GBDT |"]["plant_default"][0] == 0.5
    assert out["| release rule (the defaults) | val F1 |"] == {"last round": [0.25]}
