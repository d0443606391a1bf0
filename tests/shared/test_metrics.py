import numpy as np
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score

from shared.metrics import (BINS, bin_of, bin_of_threshold, best_threshold_bin, confusion_at, rates, score_histograms,
                            threshold_of_bin)


def test_metrics_from_histograms_match_scikit_learn_at_a_bin_edge():
    rng = np.random.default_rng(0)
    labels = (rng.random(2000) < 0.1).astype(int)
    probs = np.clip(rng.normal(0.3 + 0.4 * labels, 0.15), 0, 1)
    pos, neg = score_histograms(probs, labels)
    tb = bin_of_threshold(0.45)
    predicted = (probs >= threshold_of_bin(tb)).astype(int)  # what a plant's floor does with the threshold
    assert 0 < predicted.sum() < len(predicted)
    m = rates(*confusion_at(pos, neg, tb))
    assert m["accuracy"] == accuracy_score(labels, predicted)
    assert m["precision"] == precision_score(labels, predicted)
    assert m["recall"] == recall_score(labels, predicted)
    assert abs(m["f1"] - f1_score(labels, predicted)) < 1e-12


def test_best_threshold_maximises_f1_and_falls_back_without_positives():
    pos = np.zeros(BINS, dtype=int)
    neg = np.zeros(BINS, dtype=int)
    neg[:BINS * 3 // 10] = 10
    pos[BINS * 7 // 10:] = 1
    best = best_threshold_bin(pos, neg)
    assert BINS * 3 // 10 <= best <= BINS * 7 // 10
    assert rates(*confusion_at(pos, neg, best))["f1"] == 1.0
    assert threshold_of_bin(best_threshold_bin(np.zeros(BINS), neg)) == 0.5


def test_rates_are_zero_where_undefined():
    assert rates(0, 0, 10, 0) == {"accuracy": 1.0, "precision": 0.0, "recall": 0.0, "f1": 0.0}


def test_coarsened_histograms_keep_every_count_and_no_group_below_the_minimum():
    from shared.metrics import coarsen_histograms

    rng = np.random.default_rng(4)
    probs, labels = rng.beta(0.5, 3, 300), rng.random(300) < 0.1
    pos, neg = score_histograms(probs, labels)
    cpos, cneg = coarsen_histograms(pos, neg, 10)
    assert cpos.sum() == pos.sum() and cneg.sum() == neg.sum()
    totals = cpos + cneg
    assert totals[totals > 0].min() >= 10
    assert (totals > 0).sum() < ((pos + neg) > 0).sum()  # sparse bins were merged
    assert coarsen_histograms(np.array([0, 3, 0]), np.array([1, 0, 0]), 10)[0].tolist() == [3, 0, 0]  # one group


def test_auc_from_histograms_matches_scikit_learn_on_binned_scores():
    from sklearn.metrics import roc_auc_score

    from shared.metrics import auc_from_histograms

    rng = np.random.default_rng(7)
    labels = rng.random(500) < 0.2
    probs = np.clip(rng.normal(0.3 + 0.3 * labels, 0.15), 0, 0.999)
    binned = bin_of(probs)  # ties within a bin count half, as in the Mann-Whitney statistic
    pos, neg = score_histograms(probs, labels)
    assert abs(auc_from_histograms(pos, neg) - roc_auc_score(labels, binned)) < 1e-12
    assert auc_from_histograms(pos, np.zeros(BINS)) is None


def test_roc_auc_matches_scikit_learn_with_ties_and_without():
    from sklearn.metrics import roc_auc_score

    from shared.metrics import roc_auc

    rng = np.random.default_rng(1)
    for n, decimals in ((20, 1), (500, 2), (3000, 12)):  # coarse rounding makes many ties
        labels = (rng.random(n) < 0.15).astype(int)
        labels[:2] = (1, 0)
        scores = np.round(np.clip(rng.normal(0.4 + 0.2 * labels, 0.2), 0, 1), decimals)
        assert np.isclose(roc_auc(labels, scores), roc_auc_score(labels, scores), rtol=0, atol=1e-12)


def test_spread_groups_keeps_every_count_and_spreads_each_group_up_to_the_next():
    from shared.metrics import coarsen_histograms, spread_groups

    rng = np.random.default_rng(7)
    probs, labels = rng.beta(0.5, 3, 300), rng.random(300) < 0.1
    pos, neg = coarsen_histograms(*score_histograms(probs, labels), 10)
    sp, sn = spread_groups(pos, neg)
    assert np.isclose(sp.sum(), pos.sum()) and np.isclose(sn.sum(), neg.sum())
    starts = np.flatnonzero(pos + neg)
    first, second = starts[0], starts[1]
    assert np.allclose(sp[first:second], pos[first] / (second - first))
    assert np.allclose(sn[starts[-1]:], neg[starts[-1]] / (BINS - starts[-1]))
    assert sp[:first].sum() == sn[:first].sum() == 0


def test_pooled_threshold_on_spread_groups_keeps_a_plant_whose_top_group_starts_lower():
    """Plant B's released top group (8 failures, 2 healthy) starts at 0.80; plant A, larger, has a healthy group
    at 0.80 and its failures at 0.90. Read in their first bins, the pooled threshold lands on 0.90 and predicts
    none of B's failures (recall 0); spread, B's failures above 0.90 count."""
    from dashboard.orchestration.evaluation import evaluate
    from shared.protocol import EvaluateReply, SplitEvaluation

    def reply(groups):
        pos, neg = np.zeros(BINS, dtype=np.int64), np.zeros(BINS, dtype=np.int64)
        for start, (failures, healthy) in groups.items():
            pos[start], neg[start] = failures, healthy
        part = SplitEvaluation(n=int(pos.sum() + neg.sum()), loss=0.3, auc=0.9, hist_pos=pos, hist_neg=neg)
        return EvaluateReply(val=part, test=part)

    at = {p: bin_of_threshold(p) for p in (0.1, 0.8, 0.9)}
    scored = evaluate({"a": reply({at[0.1]: (0, 200), at[0.8]: (0, 30), at[0.9]: (40, 5)}),
                       "b": reply({at[0.1]: (0, 200), at[0.8]: (8, 2)})})
    assert abs(scored.threshold - 0.9) < 1e-3
    # b's last group spreads from 0.8 to the top bin: the share of its bins at or above 0.9's
    share = (BINS - at[0.9]) / (BINS - at[0.8])
    assert abs(scored.per_factory["b"]["test_recall"] - share) < 1e-9 and share > 0.5


def test_bins_are_equal_in_log_odds_and_the_threshold_edges_are_exact():
    """A score equal to a bin's threshold falls in that bin; scores beyond the range and 0, 1, NaN land in the
    end bins; the middle bin's edge is 0.5 (the fallback threshold)."""
    edges = np.array([threshold_of_bin(b) for b in range(BINS)])
    assert (bin_of(edges) == np.arange(BINS)).all()
    assert all(bin_of_threshold(t) == b for b, t in enumerate(edges))
    assert threshold_of_bin(BINS // 2) == 0.5
    assert bin_of(np.array([0.0, 1e-30, 1.0, 1 - 1e-12, np.nan, 2.0, np.inf, -1.0])).tolist() == \
        [0, 0, BINS - 1, BINS - 1, 0, BINS - 1, BINS - 1, 0]
    below = np.nextafter(edges, 0)  # a hair under each edge: the bin below (the plant floor predicts 0 there)
    assert (bin_of(below[1:]) == np.arange(BINS - 1)).all()
    widths = np.diff(np.log(edges / (1 - edges)))
    assert np.allclose(widths, widths[0])


def test_scores_crowded_near_one_are_still_separated():
    """An over-confident model: healthy rows at 0.99-0.999, failures above 0.9999. Bins of 0.01 in p put both in
    the top bin (F1 at best the share of failures); bins in log-odds separate them."""
    rng = np.random.default_rng(3)
    healthy, failing = 1 - 10 ** rng.uniform(-3, -2, 500), 1 - 10 ** rng.uniform(-4.3, -4.1, 20)
    probs, labels = np.concatenate([healthy, failing]), np.r_[np.zeros(500), np.ones(20)]
    pos, neg = score_histograms(probs, labels)
    assert rates(*confusion_at(pos, neg, best_threshold_bin(pos, neg)))["f1"] == 1.0
