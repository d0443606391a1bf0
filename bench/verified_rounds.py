"""Verified rounds against plain secure aggregation (issue 24; README "Verified rounds"): a real dashboard and N
simulated plants on this machine, the same seeded secure experiment (CNN, about 87k parameters) run on plants that
opt out of verifying (`--verify-models no`: plain secure aggregation among certified members) and on plants with
the default policy (every model derived at the plant from the members' signed transcripts).

Prints, side by side, per seed and mode: the median round wall, the final test F1, and the transcript the plants
need per round (its size in the dashboard's database, and divided by the plants), with the verdict against the
issue's goals: the same final F1 within seed noise (the spread of the plain runs over seeds, at least 0.02), and
round wall <= 1.3 x plain.

    .venv/bin/python bench/verified_rounds.py [--plants 5] [--rounds 3] [--rows 3000] [--seeds 1 2]
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import sys
import tempfile
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.table import print_table  # noqa: E402
from bench.rounds import federation  # noqa: E402
from factoryfl_testing.harness import Dashboard  # noqa: E402

GOAL_WALL = 1.3  # verified round wall / plain secure round wall, at most
MIN_NOISE = 0.02  # the F1 band when the plain runs agree more closely than this over seeds
MODES = {"plain secure": ("--verify-models", "no"), "verified": ()}


def transcript_bytes(dashboard: Dashboard, experiment: int) -> list[int]:
    """Each model version's stored transcript, in bytes (what the dashboard relays to a plant that lacks it)."""
    with sqlite3.connect(dashboard.workdir / "dashboard.sqlite") as db:
        rows = db.execute("SELECT length(transcript) FROM model_versions WHERE experiment_id = ? AND transcript "
                          "IS NOT NULL", (experiment,)).fetchall()
    return [int(n) for (n,) in rows]


def experiment(dashboard: Dashboard, body: dict) -> dict:
    eid = dashboard.api("POST", "/experiments", json=body).json()["id"]
    dashboard.api("POST", f"/experiments/{eid}/start")
    e = dashboard.wait_experiment(eid, timeout=1800)
    if e["status"] != "completed":
        raise SystemExit(f"experiment {eid} ended {e['status']}: {e.get('message')}")
    walls = [r["duration_s"] for r in e["rounds"]]
    sizes = transcript_bytes(dashboard, eid)
    return {"round_s": statistics.median(walls), "test_f1": e["rounds"][-1]["metrics"]["test_f1"],
            "transcript_kb": statistics.median(sizes) / 1024 if sizes else 0.0}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--plants", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rows", type=int, default=3000, help="simulated rows per plant")
    parser.add_argument("--hidden", type=int, default=256, help="hidden units (256: about 87k parameters)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()

    from shared.models import ModelSpec, build_model

    params = sum(p.numel() for p in build_model(ModelSpec("cnn", 12, hidden_size=args.hidden)).parameters())
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for mode, flags in MODES.items():
            with federation(args.plants, args.rows, Path(tmp) / mode.replace(" ", "_"), flags) as (dashboard, _, _):
                for seed in args.seeds:
                    body = {"name": f"{mode} {seed}", "model_type": "cnn", "rounds": args.rounds,
                            "local_epochs": 2, "min_factories": args.plants, "hidden_size": args.hidden,
                            "secure_aggregation": True, "algorithm": "fedavg", "seed": seed}
                    results.append({"mode": mode, "seed": seed, **experiment(dashboard, body)})
    plain = [r for r in results if r["mode"] == "plain secure"]
    verified = [r for r in results if r["mode"] == "verified"]
    plain_f1 = statistics.mean(r["test_f1"] for r in plain)
    noise = max(MIN_NOISE, statistics.pstdev([r["test_f1"] for r in plain]) * 2)
    plain_wall = statistics.mean(r["round_s"] for r in plain)
    print(f"\nVerified rounds against plain secure aggregation: {psutil.cpu_count()} CPU(s), {args.plants} plants, "
          f"CNN ({params:,} parameters), {args.rows} rows per plant, {args.rounds} rounds, fedavg, median round; "
          f"goals: the same final F1 within seed noise, round wall <= {GOAL_WALL:g} x plain")
    header = ("mode", "seed", "round wall (s)", "wall vs plain", "final test F1",
              "transcript a plant receives per round (KB)", "of which per member (KB)")
    print_table(header, [[r["mode"], str(r["seed"]), f"{r['round_s']:.2f}", f"{r['round_s'] / plain_wall:.2f}x",
                          f"{r['test_f1']:.3f}", f"{r['transcript_kb']:.0f}" if r["transcript_kb"] else "-",
                          f"{r['transcript_kb'] / args.plants:.0f}" if r["transcript_kb"] else "-"]
                         for r in results])
    wall = statistics.mean(r["round_s"] for r in verified) / plain_wall
    f1_gap = abs(statistics.mean(r["test_f1"] for r in verified) - plain_f1)
    print(f"\nround wall verified / plain: {wall:.2f}x (goal <= {GOAL_WALL:g}x): "
          f"{'meets the goal' if wall <= GOAL_WALL else 'above the goal'}")
    print(f"final test F1 gap: {f1_gap:.3f} (seed noise band {noise:.3f}): "
          f"{'within seed noise' if f1_gap <= noise else 'outside seed noise'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
