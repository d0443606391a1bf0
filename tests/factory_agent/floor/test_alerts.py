import numpy as np
import pandas as pd

from factory_agent.floor.alerts import PLANT_KEY, alert_changes, in_time_order, machine_keys


def changes_of(open_before, machines, probabilities, threshold=0.5):
    machines = pd.Series(machines, dtype=object)
    changes, still_open, _ = alert_changes(set(open_before), machines, np.array(probabilities),
                                           np.arange(len(machines)), threshold)
    return changes, still_open


def test_a_score_at_the_threshold_opens_an_alert_and_a_later_lower_score_clears_it():
    changes, still_open = changes_of([], ["m1"] * 4, [0.2, 0.5, 0.9, 0.1])
    assert [(c.machine, c.opened, c.row) for c in changes] == [("m1", True, 1), ("m1", False, 3)]
    assert still_open == set()


def test_one_alert_per_machine_stays_open_across_batches_until_it_clears():
    changes, still_open = changes_of([], ["m1", "m2", "m1", "m2"], [0.8, 0.1, 0.9, 0.2])
    assert [(c.machine, c.opened) for c in changes] == [("m1", True)] and still_open == {"m1"}
    changes, still_open = changes_of(still_open, ["m1", "m1"], [0.7, 0.95])  # still high: nothing new
    assert changes == [] and still_open == {"m1"}
    changes, still_open = changes_of(still_open, ["m2", "m1"], [0.3, 0.3])
    assert [(c.machine, c.opened) for c in changes] == [("m1", False)] and still_open == set()


def test_rows_without_a_machine_share_the_plants_single_alert_key():
    scores = pd.DataFrame({"row": [0, 1, 2], "machine_id": ["A", None, "  "]})
    assert machine_keys(scores, "machine_id").tolist() == ["A", PLANT_KEY, PLANT_KEY]
    assert machine_keys(scores.drop(columns="machine_id"), None).tolist() == [PLANT_KEY] * 3


def test_scores_are_walked_in_time_order_not_file_order():
    scores = pd.DataFrame({"row": [0, 1, 2], "cycle": [3, 1, 2], "probability": [0.1, 0.9, 0.8]})
    ordered = in_time_order(scores, "cycle")
    assert ordered["row"].tolist() == [1, 2, 0]
    _, still_open, _ = alert_changes(set(), pd.Series(["m"] * 3, index=ordered.index, dtype=object),
                                     ordered["probability"].to_numpy(), ordered["row"].to_numpy(), 0.5)
    assert still_open == set()  # the latest reading (cycle 3) is low: cleared, although it is the file's first row


def test_an_alerts_peak_is_the_highest_probability_of_its_open_run():
    machines = pd.Series(["m1"] * 6 + ["m2"] * 2, dtype=object)
    probabilities = np.array([0.2, 0.6, 0.95, 0.7, 0.1, 0.8, 0.9, 0.99])
    changes, still_open, open_peaks = alert_changes(set(), machines, probabilities, np.arange(8), 0.5)
    assert [(c.machine, c.opened, c.peak) for c in changes] == [
        ("m1", True, 0.6), ("m1", False, 0.95), ("m1", True, 0.8), ("m2", True, 0.9)]
    assert still_open == {"m1", "m2"} and open_peaks == {"m1": 0.8, "m2": 0.99}


def test_an_alert_open_before_the_batch_reports_this_batchs_part_of_its_peak():
    changes, still_open, open_peaks = alert_changes({"m1"}, pd.Series(["m1"] * 3, dtype=object),
                                                    np.array([0.7, 0.9, 0.1]), np.arange(3), 0.5)
    assert [(c.opened, c.peak) for c in changes] == [(False, 0.9)] and still_open == set() and open_peaks == {}
    changes, _, open_peaks = alert_changes({"m1"}, pd.Series(["m1"], dtype=object), np.array([0.2]), np.arange(1), 0.5)
    assert changes[0].opened is False and np.isnan(changes[0].peak)  # nothing above the threshold this batch
