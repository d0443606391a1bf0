"""Round benchmark: a real dashboard and N simulated plants on this machine (DESIGN §9).

Prints one table: agent start-to-registered time and memory, and for 3 and 6 plants the round wall
time against the slowest plant's own training time in that round (the overhead of orchestration:
PySyft transport, evaluation, aggregation, bookkeeping).

    .venv/bin/python bench/rounds.py [--plants 3 6] [--rounds 3] [--rows 3000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.integration.harness import Agent, Dashboard  # noqa: E402

PROFILES = ("default", "heavy_duty", "hot_climate", "precision")


def rss_mb(pid: int) -> float:
    proc = psutil.Process(pid)
    return (proc.memory_info().rss + sum(c.memory_info().rss for c in proc.children(recursive=True))) / 2**20


def run(n_plants: int, rounds: int, rows: int, workdir: Path) -> dict:
    dashboard = Dashboard(workdir / f"dash{n_plants}").start()
    agents = []
    try:
        started = time.monotonic()
        for i in range(n_plants):
            agents.append(Agent(f"bench_{i}", workdir / f"n{n_plants}", dashboard.url,
                                ["--simulate", PROFILES[i % len(PROFILES)], "--rows", str(rows),
                                 "--seed", str(i)]).start())
        registered = []
        for a in agents:
            dashboard.wait_status(a.name, ("online",), timeout=300)
            registered.append(time.monotonic() - started)
        memory = [rss_mb(a.proc.pid) for a in agents]
        body = {"name": f"bench {n_plants}", "model_type": "cnn", "rounds": rounds, "local_epochs": 2,
                "min_factories": n_plants}
        eid = dashboard.api("POST", "/experiments", json=body).json()["id"]
        dashboard.api("POST", f"/experiments/{eid}/start")
        e = dashboard.wait_experiment(eid, timeout=1200)
        ratios, walls, slowest = [], [], []
        for r in e["rounds"]:
            train = max(m.get("train_seconds") or 0 for m in r["per_factory"].values())
            walls.append(r["duration_s"])
            slowest.append(train)
            ratios.append(r["duration_s"] / train if train else float("nan"))
        return {"plants": n_plants, "registered_s": max(registered), "rss_mb": statistics.mean(memory),
                "round_s": statistics.median(walls), "slowest_train_s": statistics.median(slowest),
                "ratio": statistics.median(ratios), "test_f1": e["rounds"][-1]["metrics"]["test_f1"]}
    finally:
        for a in agents:
            a.stop()
        if dashboard.proc:
            dashboard.proc.terminate()
            dashboard.proc.wait(timeout=30)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--plants", type=int, nargs="+", default=[3, 6])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rows", type=int, default=3000)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.plants:
            rows.append(run(n, args.rounds, args.rows, Path(tmp)))
    print(f"\nFactoryFL round benchmark: {psutil.cpu_count()} CPU(s), CNN, 2 local epochs, {args.rows} rows per plant,"
          f" median over {args.rounds} rounds")
    header = ("plants", "all registered (s)", "agent RSS (MB)", "round wall (s)", "slowest plant train (s)",
              "wall / train", "final test F1")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for r in rows:
        print(f"| {r['plants']} | {r['registered_s']:.1f} | {r['rss_mb']:.0f} | {r['round_s']:.2f} | "
              f"{r['slowest_train_s']:.2f} | {r['ratio']:.1f} | {r['test_f1']:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
