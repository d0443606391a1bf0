"""Model quality benchmark (DESIGN §9; the algorithms issue): the same simulated non-IID plants and the same
budget of local epochs, trained centrally (the union of all data), locally (each plant alone), and
federated with each algorithm; then record-level DP-SGD at several epsilons; then attacks x defenses.

The rounds run in one process through the same code paths as the real system (the plant's request handlers
with typed requests, factory_agent.plant.handlers, under a policy that caps nothing; the dashboard's
aggregation pipeline and its threshold and metrics), without PySyft transport, which changes timing but not
the numbers.

    .venv/bin/python bench/quality.py [--rounds 4] [--epochs 2] [--rows 2000]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from dashboard.orchestration.rounds import evaluation_metrics  # noqa: E402
from shared.aggregation import ClientUpdate  # noqa: E402
from shared.aggregation.pipeline import AggregationSettings, AggregationState, aggregate  # noqa: E402
from shared.data.csv_loader import load_frame  # noqa: E402
from factory_agent.plant.handlers import handle  # noqa: E402
from factory_agent.plant.policy import PlantPolicy  # noqa: E402
from factory_agent.plant.state import BYZANTINE_ENV, PlantState  # noqa: E402
from shared.data.scaler import FeatureStats, Scaler, combine_stats  # noqa: E402
from shared.data.schema import merge_schemas  # noqa: E402
from shared.data.simulator import FAILURE_MODE_COLUMNS, simulate  # noqa: E402
from shared.models import ModelSpec, build_model, get_weights  # noqa: E402
from shared.protocol import (EvaluateRequest, ModelPart, RoundRef, ScalerMsg, StatsRequest, TrainRequest,  # noqa: E402
                             TrainSettings, parse_reply)

PROFILES = [("default", 1), ("heavy_duty", 2), ("hot_climate", 3), ("precision", 4)]
STATE_ROOT = Path(tempfile.mkdtemp(prefix="factoryfl-quality-"))
# a benchmark measures learning, not the data owner's limits: nothing capped
UNCAPPED = PlantPolicy(max_calls_per_hour=10 ** 9, lifetime_epsilon=1e9, max_epsilon=1e9, min_noise_multiplier=0.0,
                       max_local_epochs=10 ** 6, max_attempts=10 ** 6)
CALLS = iter(range(1, 10 ** 9))  # every call its own round: the plant answers each (experiment, round) once
SCORING = iter(range(10 ** 6, 10 ** 9))  # experiment ids of statistics and scoring, apart from main()'s runs


class Plant:
    def __init__(self, name: str, profile: str, rows: int, seed: int):
        self.name = name
        self.data = load_frame(simulate(profile, rows, seed=seed), "machine_failure", FAILURE_MODE_COLUMNS,
                               "machine_id", "cycle")
        self.index = np.stack([self.data.split, self.data.groups], 1)
        self.features = self.data.schema.feature_names
        self.byzantine: str | None = None

    def state(self) -> PlantState:
        state = PlantState(STATE_ROOT / self.name)  # each plant keeps its own ledgers and FedDyn term
        state.save_policy(UNCAPPED)
        state.save_profile(self.name, self.features)
        return state

    def step(self, request):
        if self.byzantine:
            os.environ[BYZANTINE_ENV] = self.byzantine
        try:
            out = handle(self.data.features, self.data.labels, self.index, request.to_wire(), self.state())
        finally:
            os.environ.pop(BYZANTINE_ENV, None)
        if not out["ok"]:
            raise RuntimeError(f"{self.name}: {out['error']}")
        return parse_reply(request, out)


def union(plants: list[Plant]) -> Plant:
    """All plants' rows as one plant (the centralized baseline): same splits, features aligned by name."""
    merged = Plant.__new__(Plant)
    merged.name, merged.byzantine = "union", None
    names = merge_schemas([p.data.schema for p in plants]).feature_names
    blocks = []
    for p in plants:
        pos = {n: i for i, n in enumerate(p.features)}
        block = np.zeros((len(p.data.labels), len(names)), np.float32)
        for j, n in enumerate(names):
            if n in pos:
                block[:, j] = p.data.features[:, pos[n]]
        blocks.append(block)
    merged.features = names
    merged.data = type("D", (), {"features": np.concatenate(blocks), "labels": np.concatenate(
        [p.data.labels for p in plants])})()
    offset = 0
    idx = []
    for p in plants:
        i = p.index.copy()
        i[:, 1] += offset
        offset = int(i[:, 1].max()) + 1
        idx.append(i)
    merged.index = np.concatenate(idx)
    return merged


class Federation:
    def __init__(self, plants: list[Plant], seed: int = 0):
        self.plants = plants
        self.names = merge_schemas([p.data.schema for p in plants]).feature_names
        stats = [p.step(StatsRequest(next(SCORING), tuple(self.names))) for p in plants]
        scaler = Scaler.from_stats(combine_stats([FeatureStats(s.count, s.sum, s.sum_sq) for s in stats]))
        self.scaler = ScalerMsg(scaler.mean, scaler.scale)
        self.spec = ModelSpec("cnn", len(self.names))
        self.initial = get_weights(build_model(self.spec, seed=seed))

    def model(self, weights: dict) -> ModelPart:
        return ModelPart(features=tuple(self.names), scaler=self.scaler, spec=self.spec, weights=weights)

    def evaluate(self, weights: dict, plants: list[Plant]) -> dict:
        ref = RoundRef(next(SCORING), 1)
        evaluations = {p.name: p.step(EvaluateRequest(ref, self.model(weights))) for p in plants}
        _, metrics, _ = evaluation_metrics(evaluations, {})
        return metrics

    def train(self, plant: Plant, weights: dict, train: dict, experiment: int):
        """`experiment` keys the plant's FedDyn term and DP ledger for one run of an algorithm."""
        return plant.step(TrainRequest(RoundRef(experiment, next(CALLS)), self.model(weights),
                                       TrainSettings.from_wire(train)))

    def run(self, settings: AggregationSettings, rounds: int, train: dict, experiment: int,
            participants: list[Plant] | None = None) -> dict:
        plants = participants or self.plants
        weights, state = self.initial, AggregationState()
        rng = np.random.default_rng(experiment)
        for r in range(1, rounds + 1):
            answers = {p.name: self.train(p, weights, {**train, "seed": 1000 * r + i}, experiment)
                       for i, p in enumerate(plants)}
            updates = [ClientUpdate(factory=n, weights=a.weights, num_samples=a.num_samples, steps=a.steps)
                       for n, a in sorted(answers.items())]
            weights, state, report = aggregate(settings, weights, updates, state, rng)
        return {"weights": weights, "reputation": state.reputation, "answers": answers}


def fmt(metrics: dict) -> str:
    return f"{metrics['test_f1']:.3f} | {metrics['test_auc']:.3f}"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=2, help="local epochs per round")
    parser.add_argument("--rows", type=int, default=2000)
    args = parser.parse_args()
    started = time.monotonic()
    plants = [Plant(f"plant_{profile}", profile, args.rows, seed) for profile, seed in PROFILES]
    fed = Federation(plants)
    train = {"epochs": args.epochs, "batch_size": 64, "learning_rate": 0.005, "max_grad_norm": 5.0}
    budget = args.rounds * args.epochs
    experiment = iter(range(1, 10_000))

    print(f"\nFactoryFL quality benchmark: {len(plants)} non-IID simulated plants ({', '.join(p for p, _ in PROFILES)}),"
          f" {args.rows} rows each, CNN, {args.rounds} rounds x {args.epochs} local epochs (= {budget} epochs for"
          f" the non-federated rows); test F1 at the pooled-validation threshold and ROC-AUC on all plants' test"
          f" splits; {psutil.cpu_count()} CPU(s)")
    print("\n| setting | test F1 | test AUC |\n|---|---|---|")
    print(f"| initial model (no training; DP rows below start here) | {fmt(fed.evaluate(fed.initial, plants))} |")
    merged = union(plants)
    central = fed.train(merged, fed.initial, {**train, "epochs": budget}, next(experiment))
    print(f"| centralized (union of all plants' data) | {fmt(fed.evaluate(central.weights, plants))} |")
    local = [fed.evaluate(fed.train(p, fed.initial, {**train, "epochs": budget}, next(experiment)).weights, plants)
             for p in plants]
    print(f"| local only (mean over plants, each model scored on all plants) | "
          f"{np.mean([m['test_f1'] for m in local]):.3f} | {np.mean([m['test_auc'] for m in local]):.3f} |")
    algorithms = [("FedAvg", AggregationSettings(use_reputation=False), {}),
                  ("FedProx (mu 0.01)", AggregationSettings(algorithm="fedprox", use_reputation=False),
                   {"proximal_mu": 0.01}),
                  ("FedNova", AggregationSettings(algorithm="fednova", use_reputation=False), {}),
                  ("FedDyn (alpha 0.01)", AggregationSettings(algorithm="feddyn", feddyn_alpha=0.01, use_reputation=False,
                                                              federation_size=len(plants)), {"feddyn_alpha": 0.01}),
                  ("FedAdam (server lr 0.01)", AggregationSettings(server_optimizer="fedadam", server_lr=0.01,
                                                                   use_reputation=False), {})]
    for label, settings, extra in algorithms:
        result = fed.run(settings, args.rounds, {**train, **extra}, next(experiment))
        print(f"| federated {label} | {fmt(fed.evaluate(result['weights'], plants))} |")

    from opacus.accountants.utils import get_noise_multiplier

    print("\nRecord-level DP-SGD at every plant (Opacus; per-sample clip 1.0, delta 1e-5, FedAvg), noise chosen "
          "so that each plant's epsilon after all rounds is the target")
    print("\n| epsilon | noise multiplier | test F1 | test AUC | epsilon reported (max over plants) |\n|---|---|---|---|---|")
    rows_train = min(len(np.flatnonzero(p.index[:, 0] == 0)) for p in plants)
    rate = 1 / -(-rows_train // 64)
    for target in (1.0, 4.0, 8.0, None):
        if target is None:
            result = fed.run(AggregationSettings(use_reputation=False), args.rounds, train, next(experiment))
            print(f"| inf (no DP) | 0 | {fmt(fed.evaluate(result['weights'], plants))} | - |")
            continue
        sigma = get_noise_multiplier(target_epsilon=target, target_delta=1e-5, sample_rate=rate,
                                     steps=budget * round(1 / rate), accountant="rdp")
        dp = {"dp_noise_multiplier": sigma, "dp_max_grad_norm": 1.0, "dp_delta": 1e-5}
        result = fed.run(AggregationSettings(use_reputation=False), args.rounds, {**train, **dp}, next(experiment))
        spent = max(a.dp.epsilon for a in result["answers"].values())
        print(f"| {target:g} | {sigma:.2f} | {fmt(fed.evaluate(result['weights'], plants))} | {spent:.2f} |")

    attacker = Plant("attacker", "default", args.rows, 99)
    honest = plants
    fed5 = Federation(honest + [attacker])
    print(f"\nAttacks x defenses: {len(honest)} honest plants and 1 attacker (--byzantine); test F1 on the honest "
          "plants' test splits (AUC in brackets); reputation of the attacker / lowest honest after the last round")
    defenses = [("FedAvg", AggregationSettings(use_reputation=False)),
                ("median", AggregationSettings(robust_method="median")),
                ("trimmed mean 0.2", AggregationSettings(robust_method="trimmed_mean", trim_ratio=0.2)),
                ("Multi-Krum f=1", AggregationSettings(robust_method="krum", krum_byzantine=1, multi_krum=3)),
                ("norm bound (median)", AggregationSettings(robust_method="norm_bound"))]
    print("\n| attack | " + " | ".join(d for d, _ in defenses) + " |\n|---|" + "---|" * len(defenses))
    clean = fed5.run(AggregationSettings(use_reputation=False), args.rounds, train, next(experiment), honest)
    m = fed5.evaluate(clean["weights"], honest)
    print(f"| none (honest plants only, FedAvg) | {m['test_f1']:.3f} ({m['test_auc']:.2f}) |" + " |" * (len(defenses) - 1))
    for attack in ("sign_flip", "scale:-8", "noise:1.0", "label_flip"):
        attacker.byzantine = attack
        cells = []
        for _, settings in defenses:
            result = fed5.run(settings, args.rounds, train, next(experiment))
            m = fed5.evaluate(result["weights"], honest)
            rep = result["reputation"]
            rep_txt = (f", rep {rep.get('attacker', 1):.2f}/{min(rep[p.name] for p in honest):.2f}"
                       if settings.use_reputation and rep else "")
            cells.append(f"{m['test_f1']:.3f} ({m['test_auc']:.2f}{rep_txt})")
        print(f"| {attack} | " + " | ".join(cells) + " |")
    print(f"\n(ran in {time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
