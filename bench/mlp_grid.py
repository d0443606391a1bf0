"""Choosing the tabular MLP's defaults (issue #15 item 5) on VALIDATION data only: a small grid of hidden size,
residual blocks, cross layers and learning rate, each setting trained federated (FedAvg, the product's own
round workflow over in-process plants) on two data shapes and several seeds, ranked by the mean pooled
validation F1 (validation AUC beside it); the CNN at its own learning rates for comparison. Test splits are
never read here (bench/quality.py --model reports test numbers for the chosen defaults).

Data shapes:
- "simulator": bench/quality.py's four non-IID simulated plants (product mix, failure rate, sensor offsets);
- "imbalanced": three plants from CSV files of rows by machine and cycle, 5,000 rows each, with only tool-wear,
  power and random failures counted (about 1 % positives): a different imbalance and different causes.

    .venv/bin/python bench/mlp_grid.py [--seeds 2] [--rounds 4] [--epochs 2] [--stage cnn|ofat|full|confirm]
                                       [--only 0,3] [--first-seed 0]
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from factoryfl_testing.federation import InProcessFederation  # noqa: E402
from factoryfl_testing.inprocess import InProcessChannel, InProcessPlant  # noqa: E402
from shared.data.csv_loader import load_csv  # noqa: E402
from shared.data.simulator import FAILURE_MODE_COLUMNS, simulate  # noqa: E402
from shared.experiment import ExperimentConfig, parse_experiment  # noqa: E402
from shared.experiment.fields import TUNED  # noqa: E402

SIMULATOR = [("default", 1), ("heavy_duty", 2), ("hot_climate", 3), ("precision", 4)]  # bench/quality.py PROFILES
IMBALANCED = [("default", 11), ("precision", 12), ("heavy_duty", 13)]
IMBALANCED_CAUSES = ("TWF", "PWF", "RNF")


@dataclasses.dataclass(frozen=True)
class GridConfig(ExperimentConfig):
    """An experiment whose MLP has `blocks` residual blocks and `crosses` cross layers (the product fixes both)."""

    blocks: int = 2
    crosses: int = 2

    def model_spec(self, num_features: int):
        spec = super().model_spec(num_features)
        if spec.model_type != "mlp":
            return spec
        return dataclasses.replace(spec, num_layers=self.blocks, cross_layers=self.crosses)


def simulator_plants(root: Path, seed: int, rows: int) -> list[InProcessPlant]:
    return [InProcessPlant.simulated(f"sim_{p}_{seed}", p, rows, s + 100 * seed, root) for p, s in SIMULATOR]


def imbalanced_plants(root: Path, seed: int, rows: int = 5000) -> list[InProcessPlant]:
    """CSV files (machine, cycle, type, sensors, failure) with only IMBALANCED_CAUSES counted as failures."""
    plants = []
    for profile, s in IMBALANCED:
        frame = simulate(profile, rows, seed=s + 100 * seed)
        frame["machine_failure"] = frame[list(IMBALANCED_CAUSES)].max(axis=1)
        path = root / f"imb_{profile}_{seed}.csv"
        frame.drop(columns=list(FAILURE_MODE_COLUMNS)).to_csv(path, index=False)
        data = load_csv(path, "machine_failure", (), "machine_id", "cycle")
        plants.append(InProcessPlant.from_data(f"imb_{profile}_{seed}", data, root))
    return plants


def validation(fed: InProcessFederation, args, seed: int, **settings) -> tuple[float, float]:
    body = {"name": "grid", "rounds": args.rounds, "local_epochs": args.epochs, "batch_size": 64,
            "min_factories": 1, "seed": seed, **TUNED}  # the tuned decay and weight, as before issue 25's rule
    grid = {k: settings.pop(k) for k in ("blocks", "crosses") if k in settings}
    parsed = parse_experiment({**body, **settings})
    config = GridConfig(**{f.name: getattr(parsed, f.name) for f in dataclasses.fields(parsed)}, **grid)
    final = fed.run(config).final.aggregate
    return final["val_f1"], final["val_auc"]


CENTRE = {"model_type": "mlp", "hidden_size": 64, "blocks": 2, "crosses": 2, "learning_rate": 0.005}


def candidates(stage: str) -> list[dict]:
    """cnn: the CNN at two rates; ofat: the MLP at CENTRE and one setting changed at a time (what fits two shared
    CPU cores); full: the whole product of hidden x blocks x crosses at CENTRE's rate."""
    cnn = [{"model_type": "cnn", "learning_rate": lr} for lr in (0.005, 0.01)]
    ofat = [CENTRE] + [{**CENTRE, key: value} for key, values in
                       (("learning_rate", (0.002, 0.01, 0.02)), ("crosses", (0, 1, 3)), ("blocks", (1, 3)),
                        ("hidden_size", (32, 128))) for value in values]
    full = [{**CENTRE, "hidden_size": h, "blocks": b, "crosses": c}
            for h, b, c in itertools.product((32, 64, 128), (1, 2), (0, 1, 2))]
    # the ofat stage's best changes (cross layers) against the centre and the CNN, on fresh seeds (--first-seed)
    confirm = [cnn[0], CENTRE, {**CENTRE, "crosses": 3}, {**CENTRE, "crosses": 4}]  # crosses 3: the default
    return {"cnn": cnn, "ofat": ofat, "full": full, "confirm": confirm}[stage]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--rows", type=int, default=2000, help="rows per simulator plant")
    parser.add_argument("--stage", default="ofat", choices=("cnn", "ofat", "full", "confirm"))
    parser.add_argument("--first-seed", type=int, default=0, help="seeds first-seed .. first-seed + seeds - 1")
    parser.add_argument("--only", default="", help="comma-separated candidate indices (default: all)")
    args = parser.parse_args()
    started = time.monotonic()
    root = Path(tempfile.mkdtemp(prefix="factoryfl-grid-"))
    feds = {(shape, seed): InProcessFederation(InProcessChannel(make(root, seed) if shape == "imbalanced"
                                                                else make(root, seed, args.rows)))
            for seed in range(args.first_seed, args.first_seed + args.seeds)
            for shape, make in (("simulator", simulator_plants), ("imbalanced", imbalanced_plants))}
    chosen = candidates(args.stage)
    if args.only:
        chosen = [chosen[int(i)] for i in args.only.split(",")]
    print(f"| setting | simulator val F1 | simulator val AUC | imbalanced val F1 | imbalanced val AUC | mean val F1 |\n"
          "|---|---|---|---|---|---|")
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    for settings in chosen:
        scores = {shape: np.array([validation(feds[shape, seed], args, seed, **dict(settings)) for seed in seeds])
                  for shape in ("simulator", "imbalanced")}
        cells = " | ".join(f"{scores[s][:, 0].mean():.3f} ± {scores[s][:, 0].std():.3f} | {scores[s][:, 1].mean():.3f}"
                           for s in ("simulator", "imbalanced"))
        mean = np.mean([scores[s][:, 0].mean() for s in scores])
        print(f"| {settings} | {cells} | {mean:.3f} |", flush=True)
    print(f"\n({args.seeds} seeds, {args.rounds} rounds x {args.epochs} epochs, FedAvg; ran in "
          f"{time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
