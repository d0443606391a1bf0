"""A real bundle (the simulator's schema, a scaler from its rows, an untrained model) and the floor around it."""

import hashlib

import numpy as np
import pytest

from factory_agent.floor.delivery import InstalledModel, ModelDelivery
from factory_agent.floor.scoring import FloorScorer
from factory_agent.floor.store import FloorStore
from shared.bundle import ModelBundle
from shared.data.csv_loader import load_frame
from shared.data.scaler import Scaler, feature_stats
from shared.data.simulator import FAILURE_MODE_COLUMNS, simulate


def make_bundle(model_type: str = "cnn", threshold: float = 0.5, seed: int = 0) -> ModelBundle:
    import torch

    from shared.models import ModelSpec, build_model, get_weights

    data = load_frame(simulate("default", 400, seed=seed), "machine_failure", FAILURE_MODE_COLUMNS, "machine_id",
                      "cycle", seed=seed)
    features = len(data.schema.feature_names)
    torch.manual_seed(seed)
    spec = ModelSpec(model_type, features, sequence_length=1 if model_type == "cnn" else 5, hidden_size=16)
    return ModelBundle(spec=spec, schema=data.schema, scaler=Scaler.from_stats(feature_stats(data.features)),
                       weights=get_weights(build_model(spec)), threshold=threshold,
                       source={"experiment_id": 1, "round": 2})


def install(delivery: ModelDelivery, bundle: ModelBundle, model_id: int = 1) -> InstalledModel:
    """What a verified download leaves behind (ModelDelivery._install)."""
    from factory_agent.floor.delivery import ReleasedModel

    blob = bundle.to_bytes()
    return delivery._install(ReleasedModel(model_id, hashlib.sha256(blob).hexdigest()), blob)


@pytest.fixture()
def delivery(tmp_path):
    return ModelDelivery(tmp_path / "state" / "models", "http://dashboard.invalid", max_bytes=8 * 1024 * 1024)


@pytest.fixture()
def store(tmp_path):
    return FloorStore(tmp_path / "state" / "floor.sqlite")


@pytest.fixture()
def scorer(delivery, store):
    return FloorScorer(delivery, store, drift_window=1000)


@pytest.fixture()
def readings():
    """Fresh simulated readings of a plant (labels and all: extra columns are ignored)."""
    return simulate("heavy_duty", 200, seed=11, machines=4)


def probabilities_of(scorer, frame) -> np.ndarray:
    from shared.predict import score_frame

    return score_frame(scorer.model().bundle, frame)["probability"].to_numpy()
