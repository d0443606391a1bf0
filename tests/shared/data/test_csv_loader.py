import numpy as np
import pandas as pd
import pytest

from shared.data.csv_loader import load_csv
from shared.errors import DataError


def write(tmp_path, text: str, name="data.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def frame_csv(tmp_path, frame: pd.DataFrame):
    path = tmp_path / "frame.csv"
    frame.to_csv(path, index=False)
    return path


def machines(n_machines=6, rows=40, seed=0):
    rng = np.random.default_rng(seed)
    parts = []
    for m in range(n_machines):
        parts.append(pd.DataFrame({"machine_id": f"M{m}", "cycle": np.arange(rows),
                                   "temp": rng.normal(300, 2, rows), "mode": rng.choice(["a", "b"], rows),
                                   "failure": (rng.random(rows) < 0.2).astype(int)}))
    return pd.concat(parts, ignore_index=True)


def test_loads_encodes_text_columns_one_hot_and_keeps_group_and_time_out_of_features(tmp_path):
    data = load_csv(frame_csv(tmp_path, machines()), "failure", group_column="machine_id", time_column="cycle")
    assert data.schema.feature_names == ["temp", "mode=a", "mode=b"]
    assert data.features.shape == (240, 3)
    assert set(np.unique(data.labels)) == {0, 1}


def test_missing_label_names_the_column_and_row(tmp_path):
    path = write(tmp_path, "a,failure\n1,0\n2,\n3,1\n")
    with pytest.raises(DataError, match=r"label column 'failure' is empty at row 1 \(line 3"):
        load_csv(path, "failure")


def test_non_numeric_value_in_a_numeric_column_names_column_and_row(tmp_path):
    rows = "\n".join(f"{i},{i % 2}" for i in range(40))
    path = write(tmp_path, f"speed,failure\n{rows}\nfast,1\n")
    with pytest.raises(DataError, match=r"column 'speed', row 40 \(line 42 of the file\): 'fast' is not a number"):
        load_csv(path, "failure")


def test_empty_file_and_header_only_file_are_refused(tmp_path):
    with pytest.raises(DataError, match="is empty"):
        load_csv(write(tmp_path, ""), "failure")
    with pytest.raises(DataError, match="no data rows"):
        load_csv(write(tmp_path, "a,failure\n", "h.csv"), "failure")


def test_label_with_one_class_only_is_refused(tmp_path):
    with pytest.raises(DataError, match="one class only"):
        load_csv(write(tmp_path, "a,failure\n1,0\n2,0\n3,0\n"), "failure")


def test_unknown_label_column_lists_the_columns(tmp_path):
    with pytest.raises(DataError, match="--label-column 'broken' is not a column.*a, failure"):
        load_csv(write(tmp_path, "a,failure\n1,0\n2,1\n"), "broken")


def test_duplicate_headers_are_refused(tmp_path):
    with pytest.raises(DataError, match="duplicate column name.*temp"):
        load_csv(write(tmp_path, "temp,temp,failure\n1,2,0\n3,4,1\n"), "failure")


def test_missing_file_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_csv(tmp_path / "nope.csv", "failure")


def test_text_labels_constant_columns_identifiers_and_missing_values(tmp_path):
    n = 60
    frame = pd.DataFrame({"serial": [f"SN{i:05d}" for i in range(n)], "constant": 7.0,
                          "pressure": [np.nan if i % 10 == 0 else float(i) for i in range(n)],
                          "status": ["failure" if i % 5 == 0 else "normal" for i in range(n)]})
    data = load_csv(frame_csv(tmp_path, frame), "status")
    assert "serial" not in data.schema.feature_names  # identifier-like text column dropped
    assert "constant" in data.schema.feature_names
    assert not np.isnan(data.features).any()
    assert data.labels.sum() == 12


def test_drop_columns_and_unknown_drop_column(tmp_path):
    path = frame_csv(tmp_path, machines())
    data = load_csv(path, "failure", drop_columns=("mode",), group_column="machine_id")
    assert data.schema.feature_names == ["cycle", "temp"]
    with pytest.raises(DataError, match="--drop-columns names unknown column"):
        load_csv(path, "failure", drop_columns=("nope",))


def test_rows_are_ordered_by_split_group_and_time(tmp_path):
    frame = machines().sample(frac=1.0, random_state=1)  # shuffled file
    data = load_csv(frame_csv(tmp_path, frame), "failure", group_column="machine_id", time_column="cycle")
    keys = list(zip(data.split, data.groups))
    assert keys == sorted(keys)


def test_two_code_labels_without_zero_take_the_larger_as_failure(tmp_path):
    rows = "\n".join(f"{i},{1 if i % 4 == 0 else -1}" for i in range(40))
    data = load_csv(write(tmp_path, f"sensor,pass_fail\n{rows}\n"), "pass_fail")
    assert data.labels.sum() == 10
    with pytest.raises(DataError, match="has the codes 1, 2, 3"):
        load_csv(write(tmp_path, "s,y\n1,1\n2,2\n3,3\n", "three.csv"), "y")


def test_failure_type_codes_count_as_failures(tmp_path):
    data = load_csv(write(tmp_path, "s,y\n" + "\n".join(f"{i},{i % 3}" for i in range(30))), "y")
    assert data.labels.sum() == 20


def test_semicolon_separated_files_are_read(tmp_path):
    rows = "\n".join(f"{i};{i % 2};{float(i) / 3}" for i in range(30))
    data = load_csv(write(tmp_path, f"temp;failure;speed\n{rows}\n"), "failure")
    assert data.schema.feature_names == ["temp", "speed"]


def test_a_million_rows_load_in_seconds(tmp_path):
    """Thousands of rows per machine, 10^6 rows in all: loaded, encoded, split and ordered, not refused."""
    import time

    import numpy as np
    import pandas as pd

    n = 1_000_000
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"machine": rng.integers(0, 200, n), "cycle": np.arange(n), "temp": rng.normal(300, 2, n),
                          "rpm": rng.normal(1500, 100, n), "kind": rng.choice(["L", "M", "H"], n),
                          "failure": (rng.random(n) < 0.01).astype(int)})
    path = tmp_path / "big.csv"
    frame.to_csv(path, index=False)
    started = time.perf_counter()
    data = load_csv(path, "failure", (), "machine", "cycle")
    print(f"10^6 rows loaded in {time.perf_counter() - started:.1f} s")
    assert data.num_samples == n and data.features.shape == (n, 5)
    assert set(np.unique(data.split)) == {0, 1, 2}
