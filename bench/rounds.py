"""Round benchmark: a real dashboard and N simulated plants on this machine (DESIGN §11).

Prints one table: agent start-to-registered time and memory, and for 3 and 6 plants the round wall
time against the slowest plant's own training time in that round (the overhead of orchestration:
PySyft transport, the evaluation that rides in each training call, aggregation, bookkeeping), with the
verdict against the goal of the round-workflow issue: round wall <= 1.5 x the slowest plant's own training,
for 3 plants training at least 2 s each (the defaults give about that on a 2-core machine; a faster machine
needs more --rows or --epochs, and the verdict says when training was too short to judge).

    .venv/bin/python bench/rounds.py [--plants 3 6] [--rounds 3] [--rows 12000] [--epochs 8]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.table import print_table  # noqa: E402
from factoryfl_testing.harness import Agent, Dashboard  # noqa: E402

PROFILES = ("default", "heavy_duty", "hot_climate", "precision")
GOAL_RATIO = 1.5  # round wall / slowest plant's own training, at most
GOAL_MIN_TRAIN_S = 2.0  # ... when plants train at least this long (shorter rounds are dominated by fixed costs)


def rss_mb(pid: int) -> float:
    proc = psutil.Process(pid)
    return (proc.memory_info().rss + sum(c.memory_info().rss for c in proc.children(recursive=True))) / 2**20


@contextmanager
def federation(n_plants: int, rows: int, workdir: Path, flags: tuple[str, ...] = ("--trust-dashboard",)):
    """A dashboard and n simulated plants, all online; yields (dashboard, agents, seconds until all registered).
    `flags`: the plants' policy (default: they trust the dashboard, for plain rounds too: dashboard.services.trust);
    plants that do not are admitted by the harness's federation administrator first."""
    admit = "--trust-dashboard" not in flags
    dashboard = Dashboard(workdir / f"dash{n_plants}").start()
    agents = []
    try:
        started = time.monotonic()
        for i in range(n_plants):
            agents.append(Agent(f"bench_{i}", workdir / f"n{n_plants}", dashboard.url,
                                ["--simulate", PROFILES[i % len(PROFILES)], "--rows", str(rows),
                                 "--seed", str(i), *flags]).start())
        registered = []
        for a in agents:
            if admit:
                a.wait_ready()  # registered, and admitted by the federation's administrator
            dashboard.wait_status(a.name, ("online",), timeout=300)
            registered.append(time.monotonic() - started)
        yield dashboard, agents, max(registered)
    finally:
        for a in agents:
            a.stop()
        if dashboard.proc:
            dashboard.proc.terminate()
            dashboard.proc.wait(timeout=30)


def experiment(dashboard: Dashboard, body: dict) -> dict:
    """Run one experiment to completion; median round wall time, slowest plant's training, their ratio."""
    eid = dashboard.api("POST", "/experiments", json=body).json()["id"]
    dashboard.api("POST", f"/experiments/{eid}/start")
    e = dashboard.wait_experiment(eid, timeout=1200)
    ratios, walls, slowest = [], [], []
    for r in e["rounds"]:
        train = max(m.get("train_seconds") or 0 for m in r["per_factory"].values())
        walls.append(r["duration_s"])
        slowest.append(train)
        ratios.append(r["duration_s"] / train if train else float("nan"))
    return {"round_s": statistics.median(walls), "slowest_train_s": statistics.median(slowest),
            "ratio": statistics.median(ratios), "test_f1": e["rounds"][-1]["metrics"]["test_f1"]}


def verdict(ratio: float, slowest_train_s: float) -> str:
    if not slowest_train_s >= GOAL_MIN_TRAIN_S:
        return f"not judged: training under {GOAL_MIN_TRAIN_S:g} s (raise --rows or --epochs)"
    return "meets the goal" if ratio <= GOAL_RATIO else "above the goal"


def run(n_plants: int, rounds: int, rows: int, epochs: int, workdir: Path) -> dict:
    with federation(n_plants, rows, workdir) as (dashboard, agents, registered):
        memory = [rss_mb(a.proc.pid) for a in agents]
        result = experiment(dashboard, {"name": f"bench {n_plants}", "model_type": "cnn", "rounds": rounds,
                                        "local_epochs": epochs, "min_factories": n_plants})
        return {"plants": n_plants, "registered_s": registered, "rss_mb": statistics.mean(memory), **result}


def run_secure(n_plants: int, rounds: int, rows: int, hidden: int, workdir: Path) -> list[dict]:
    """The same seeded experiment with secure aggregation off, then on, on the same plants."""
    from shared.models import ModelSpec, build_model

    params = sum(p.numel() for p in build_model(ModelSpec("cnn", 12, hidden_size=hidden)).parameters())
    out = []
    with federation(n_plants, rows, workdir / "secure") as (dashboard, _, _):
        for secure in (False, True):
            result = experiment(dashboard, {"name": f"secagg {secure}", "model_type": "cnn", "rounds": rounds,
                                            "local_epochs": 2, "min_factories": n_plants, "hidden_size": hidden,
                                            "secure_aggregation": secure, "seed": 1})
            out.append({"plants": n_plants, "params": params, "secure": secure, **result})
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--plants", type=int, nargs="*", default=[3, 6])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rows", type=int, default=12000, help="simulated rows per plant")
    parser.add_argument("--epochs", type=int, default=8, help="local epochs per round")
    parser.add_argument("--secure-rows", type=int, default=3000, help="rows per plant for secure aggregation on/off")
    parser.add_argument("--secure-plants", type=int, default=5, help="plants for secure aggregation on/off (0: skip)")
    parser.add_argument("--secure-hidden", type=int, default=256, help="hidden units (256: about 87k parameters)")
    args = parser.parse_args()
    rows, secure = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.plants:
            rows.append(run(n, args.rounds, args.rows, args.epochs, Path(tmp)))
        if args.secure_plants:
            secure = run_secure(args.secure_plants, args.rounds, args.secure_rows, args.secure_hidden, Path(tmp))
    print(f"\nFactoryFL round benchmark: {psutil.cpu_count()} CPU(s), CNN, {args.epochs} local epochs, {args.rows} "
          f"rows per plant, median over {args.rounds} rounds; goal: round wall <= {GOAL_RATIO:g} x the slowest plant's "
          f"own training, 3 plants training >= {GOAL_MIN_TRAIN_S:g} s")
    header = ("plants", "all registered (s)", "agent RSS (MB)", "round wall (s)", "slowest plant train (s)",
              "wall / train", "goal", "verdict", "final test F1")
    print_table(header, [[str(r["plants"]), f"{r['registered_s']:.1f}", f"{r['rss_mb']:.0f}", f"{r['round_s']:.2f}",
                          f"{r['slowest_train_s']:.2f}", f"{r['ratio']:.2f}", f"<= {GOAL_RATIO:g}",
                          verdict(r["ratio"], r["slowest_train_s"]), f"{r['test_f1']:.3f}"] for r in rows])
    if secure:
        print(f"\nSecure aggregation off / on: same seeded experiment, same plants, median over {args.rounds} rounds")
        header = ("plants", "parameters", "secure aggregation", "round wall (s)", "slowest plant train (s)",
                  "final test F1", "wall vs off")
        print_table(header, [[str(r["plants"]), f"{r['params']:,}", "on" if r["secure"] else "off",
                              f"{r['round_s']:.2f}", f"{r['slowest_train_s']:.2f}", f"{r['test_f1']:.3f}",
                              f"{r['round_s'] / secure[0]['round_s']:.2f}x"] for r in secure])
    return 0


if __name__ == "__main__":
    sys.exit(main())
