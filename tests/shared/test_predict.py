import numpy as np
import pandas as pd
import pytest

from shared.bundle import ModelBundle
from shared.data.scaler import Scaler
from shared.data.schema import FeatureSchema
from shared.errors import ModelError
from shared.models import ModelSpec, build_model, get_weights
from shared.predict import main


def make_bundle(tmp_path, model_type="cnn", length=1, group="machine", time="cycle"):
    schema = FeatureSchema(label_column="failure", numeric_columns=("temp", "speed"),
                           categorical={"type": ("H", "L")}, group_column=group, time_column=time)
    spec = ModelSpec(model_type, 4, length)
    bundle = ModelBundle(spec=spec, schema=schema, scaler=Scaler(np.array([300.0, 1500, 0, 0]), np.ones(4)),
                         weights=get_weights(build_model(spec, seed=0)), threshold=0.4,
                         source={"experiment_id": 1, "round": 3})
    path = tmp_path / "model.safetensors"
    bundle.save(path)
    return path


def new_data(tmp_path, rows=12):
    frame = pd.DataFrame({"machine": ["A"] * (rows // 2) + ["B"] * (rows - rows // 2),
                          "cycle": list(range(rows // 2)) + list(range(rows - rows // 2)),
                          "temp": np.linspace(299, 302, rows), "speed": 1500.0, "type": ["H", "L"] * (rows // 2),
                          "failure": 0, "extra": "ignored"})
    path = tmp_path / "new.csv"
    frame.iloc[::-1].to_csv(path, index=False)  # rows out of time order on purpose
    return path


def test_bundle_round_trips_spec_schema_scaler_threshold_and_weights(tmp_path):
    path = make_bundle(tmp_path)
    bundle = ModelBundle.load(path)
    assert bundle.spec.model_type == "cnn" and bundle.threshold == 0.4
    assert bundle.schema.feature_names == ["temp", "speed", "type=H", "type=L"]
    assert bundle.source["round"] == 3
    with pytest.raises(ModelError, match="not a FactoryFL model bundle"):
        bad = tmp_path / "bad.bin"
        bad.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")
        ModelBundle.load(bad)


@pytest.mark.parametrize("model_type", ["cnn", "mlp"])
def test_tabular_scores_one_row_per_input_row_in_contract_column_order(tmp_path, model_type):
    out = tmp_path / "scores.csv"
    model = make_bundle(tmp_path, model_type)
    assert ModelBundle.load(model).spec == ModelSpec(model_type, 4)  # the MLP's cross layers travel in the bundle
    assert main(["--model", str(model), "--data", str(new_data(tmp_path)), "--output", str(out)]) == 0
    scores = pd.read_csv(out)
    assert list(scores.columns) == ["row", "machine", "cycle", "probability", "prediction"]
    assert list(scores["row"]) == list(range(12))
    assert scores["probability"].between(0, 1).all()
    assert set(scores["prediction"]) <= {0, 1}
    assert (scores["prediction"] == (scores["probability"] >= 0.4)).all()


def test_sequence_scores_one_row_per_window_end_per_machine(tmp_path):
    out = tmp_path / "scores.csv"
    model = make_bundle(tmp_path, "lstm", 4)
    assert main(["--model", str(model), "--data", str(new_data(tmp_path)), "--output", str(out)]) == 0
    scores = pd.read_csv(out)
    assert len(scores) == 2 * (6 - 4 + 1)
    assert sorted(scores[scores.machine == "A"]["cycle"]) == [3, 4, 5]
    source = pd.read_csv(tmp_path / "new.csv")
    for _, row in scores.iterrows():  # 'row' points at the window's last row of the input file
        assert source.loc[row["row"], "machine"] == row["machine"]
        assert source.loc[row["row"], "cycle"] == row["cycle"]


def test_missing_columns_are_named_in_one_clear_error(tmp_path, capsys):
    data = tmp_path / "short.csv"
    pd.DataFrame({"temp": [1.0], "machine": ["A"], "cycle": [1]}).to_csv(data, index=False)
    assert main(["--model", str(make_bundle(tmp_path)), "--data", str(data)]) == 2
    err = capsys.readouterr().err
    assert "missing column(s) 'speed', 'type'" in err
