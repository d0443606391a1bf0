"""A plant as a Flower ClientApp: the simulator's data (the site's --node-config names its profile, rows and seed),
and local training and evaluation with the very functions a FactoryFL plant runs (shared.training)."""

from __future__ import annotations

import time
from functools import lru_cache

import numpy as np
from flwr.app import Array, ArrayRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from shared.data.csv_loader import load_frame
from shared.data.scaler import Scaler, feature_stats
from shared.data.simulator import FAILURE_MODE_COLUMNS, GROUP_COLUMN, LABEL_COLUMN, TIME_COLUMN, simulate
from shared.model_spec import ModelSpec
from shared.protocol import TrainSettings
from shared.training import PlantArrays, evaluate_local, train_local

app = ClientApp()
MIN_RELEASE_ROWS = 10  # as a FactoryFL plant's default policy


@lru_cache(maxsize=1)
def site_data(profile: str, rows: int, seed: int) -> tuple[PlantArrays, ModelSpec]:
    data = load_frame(simulate(profile, rows=rows, seed=seed), LABEL_COLUMN, FAILURE_MODE_COLUMNS, GROUP_COLUMN,
                      TIME_COLUMN, seed=seed)
    arrays = PlantArrays(data.features, data.labels, np.stack([data.split, data.groups], axis=1),
                         data.schema.feature_names, data.schema.feature_names, None)
    arrays.scale(Scaler.from_stats(feature_stats(arrays.x[arrays.rows(0)])))
    return arrays, ModelSpec("cnn", len(data.schema.feature_names))


def _site(context: Context) -> tuple[PlantArrays, ModelSpec]:
    node = context.node_config
    return site_data(str(node["profile"]), int(node["rows"]), int(node["seed"]))


def _weights(message: Message) -> dict[str, np.ndarray]:
    return {name: array.numpy() for name, array in message.content["arrays"].items()}


@app.train()
def train(message: Message, context: Context) -> Message:
    arrays, spec = _site(context)
    config = message.content["config"]
    settings = TrainSettings(epochs=int(config["local-epochs"]), batch_size=int(config["batch-size"]),
                             learning_rate=float(config["learning-rate"]), seed=int(config["server-round"]))
    outcome = train_local(arrays, spec, _weights(message), settings)
    record = ArrayRecord({name: Array(np.ascontiguousarray(w)) for name, w in outcome.weights.items()})
    metrics = MetricRecord({"num-examples": outcome.num_samples, "train-loss": outcome.train_loss,
                            "train-seconds": outcome.train_seconds})
    return Message(RecordDict({"arrays": record, "metrics": metrics}), reply_to=message)


@app.evaluate()
def evaluate(message: Message, context: Context) -> Message:
    arrays, spec = _site(context)
    started = time.perf_counter()
    validation, test = evaluate_local(arrays, spec, _weights(message), MIN_RELEASE_ROWS)
    metrics = MetricRecord({"num-examples": int(test.n), "test-auc": float(test.auc or 0.0),
                            "evaluate-seconds": time.perf_counter() - started})
    return Message(RecordDict({"metrics": metrics}), reply_to=message)
