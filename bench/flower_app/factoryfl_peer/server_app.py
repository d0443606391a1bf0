"""The Flower ServerApp: FedAvg (sample-weighted mean, McMahan et al. 2017) over every site, with one train and one
evaluate step per round as a FactoryFL round has. Each round's wall time and the sites' own training times go to a
JSON file (run config `results-file`) for bench/peers.py."""

from __future__ import annotations

import json
import time

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Message, RecordDict
from flwr.serverapp import Grid, ServerApp

from shared.model_spec import ModelSpec
from shared.networks import build_model, get_weights

app = ServerApp()
NODE_WAIT_S = 120


def _nodes(grid: Grid, wanted: int) -> list[int]:
    deadline = time.monotonic() + NODE_WAIT_S
    while len(nodes := sorted(grid.get_node_ids())) < wanted:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{len(nodes)} of {wanted} SuperNodes connected")
        time.sleep(0.2)
    return nodes[:wanted]


def _fedavg(replies: list[Message]) -> dict[str, np.ndarray]:
    counts = [float(r.content["metrics"]["num-examples"]) for r in replies]
    total = sum(counts)
    names = list(replies[0].content["arrays"].keys())
    return {n: sum(c / total * r.content["arrays"][n].numpy() for c, r in zip(counts, replies)) for n in names}


def _send(grid: Grid, nodes: list[int], kind: str, weights: dict, config: dict, round_number: int) -> list[Message]:
    arrays = ArrayRecord({name: Array(np.ascontiguousarray(w, dtype=np.float32)) for name, w in weights.items()})
    messages = [Message(RecordDict({"arrays": arrays, "config": ConfigRecord(config)}), dst_node_id=node,
                        message_type=kind, group_id=str(round_number)) for node in nodes]
    replies = list(grid.send_and_receive(messages, timeout=600))
    failed = [r for r in replies if r.has_error()]
    if failed or len(replies) != len(nodes):
        raise RuntimeError(f"{kind}: {len(replies)} replies for {len(nodes)} sites, {len(failed)} errors")
    return replies


@app.main()
def main(grid: Grid, context: Context) -> None:
    run = context.run_config
    nodes = _nodes(grid, int(run["num-sites"]))
    weights = get_weights(build_model(ModelSpec("cnn", int(run["num-features"])), seed=0))
    rounds = []
    for number in range(1, int(run["num-server-rounds"]) + 1):
        config = {"server-round": number, "local-epochs": int(run["local-epochs"]),
                  "batch-size": int(run["batch-size"]), "learning-rate": float(run["learning-rate"])}
        started = time.perf_counter()
        trained = _send(grid, nodes, "train", weights, config, number)
        weights = _fedavg(trained)
        evaluated = _send(grid, nodes, "evaluate", weights, config, number)
        rounds.append({"number": number, "wall_s": time.perf_counter() - started,
                       "train_s": [float(r.content["metrics"]["train-seconds"]) for r in trained],
                       "test_auc": [float(r.content["metrics"]["test-auc"]) for r in evaluated]})
    with open(str(run["results-file"]), "w") as out:
        json.dump({"rounds": rounds}, out)
