import numpy as np
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score

from shared.metrics import BINS, best_threshold_bin, confusion_at, rates, score_histograms, threshold_of_bin


def test_metrics_from_histograms_match_scikit_learn_at_a_bin_edge():
    rng = np.random.default_rng(0)
    labels = (rng.random(2000) < 0.1).astype(int)
    probs = np.clip(rng.normal(0.3 + 0.4 * labels, 0.15), 0, 1)
    pos, neg = score_histograms(probs, labels)
    tb = 450
    predicted = (np.clip((probs * BINS).astype(int), 0, BINS - 1) >= tb).astype(int)
    m = rates(*confusion_at(pos, neg, tb))
    assert m["accuracy"] == accuracy_score(labels, predicted)
    assert m["precision"] == precision_score(labels, predicted)
    assert m["recall"] == recall_score(labels, predicted)
    assert abs(m["f1"] - f1_score(labels, predicted)) < 1e-12


def test_best_threshold_maximises_f1_and_falls_back_without_positives():
    pos = np.zeros(BINS, dtype=int)
    neg = np.zeros(BINS, dtype=int)
    neg[:300] = 10
    pos[700:] = 1
    best = best_threshold_bin(pos, neg)
    assert 300 <= best <= 700
    assert rates(*confusion_at(pos, neg, best))["f1"] == 1.0
    assert threshold_of_bin(best_threshold_bin(np.zeros(BINS), neg)) == 0.5


def test_rates_are_zero_where_undefined():
    assert rates(0, 0, 10, 0) == {"accuracy": 1.0, "precision": 0.0, "recall": 0.0, "f1": 0.0}
