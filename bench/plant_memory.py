"""Plant memory benchmark (issue #17): real plants (`factory_agent/FactoryDatasite.py`) against a real dashboard,
started by the integration-test harness as `make demo` starts them (the plant floor included: a live simulated
stream and a watch folder). For each plant, the memory of all its processes (psutil): at rest once it is online and
heartbeating (no experiment, no released model; whether torch is loaded yet, read in /proc/<pid>/maps), and the
peak during one federated round of the default CNN (statistics, training and
evaluation), sampled every 0.1 s. Goals: <= 400 MB at rest, <= 600 MB while training (RSS summed over the plant's
processes; PSS, which splits shared pages between processes, is shown beside it).

    .venv/bin/python bench/plant_memory.py [--plants 2] [--rows 3000] [--local-epochs 2]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.plants import PeakSampler, tree_memory, wait_online  # noqa: E402
from bench.table import print_table  # noqa: E402
from factoryfl_testing.harness import Agent, Dashboard, maps_torch, stop  # noqa: E402

REST_GOAL_MB, TRAINING_GOAL_MB = 400, 600
PROFILES = ("default", "heavy_duty", "hot_climate", "precision")
SETTLE_S = 10  # heartbeats, the approval policy's first passes and the floor's first looks, before "at rest" is read
STREAM_INTERVAL_S = 5.0  # the demo's default (dashboard/demo.py --stream-interval)


def one_round(dashboard: Dashboard, plants: int, local_epochs: int) -> dict:
    body = {"name": "memory", "model_type": "cnn", "rounds": 1, "local_epochs": local_epochs,
            "min_factories": plants}
    eid = dashboard.api("POST", "/experiments", json=body).json()["id"]
    dashboard.api("POST", f"/experiments/{eid}/start")
    return dashboard.wait_experiment(eid, statuses=("completed", "failed"), timeout=600)


def measure(plants: int, rows: int, local_epochs: int, workdir: Path) -> list[dict]:
    dashboard = Dashboard(workdir / "dashboard").start()
    agents = []
    try:
        started = time.monotonic()
        agents = [Agent(f"mem_{i}", workdir, dashboard.url, ["--simulate", PROFILES[i % len(PROFILES)], "--rows",
                                                              str(rows), "--seed", str(i), *floor_flags(workdir, i),
                                                              "--trust-dashboard"]  # its round is plain
                        ).start() for i in range(plants)]
        wait_online(dashboard, [a.name for a in agents], started)
        time.sleep(SETTLE_S)
        rest = {a.name: tree_memory(a.proc.pid) for a in agents}
        torch_at_rest = {a.name: maps_torch(a.proc.pid) for a in agents}
        with PeakSampler([a.proc.pid for a in agents]) as sampler:
            experiment = one_round(dashboard, plants, local_epochs)
        if experiment["status"] != "completed":
            raise RuntimeError(f"the round did not complete: {experiment['status']}")
        after = {a.name: tree_memory(a.proc.pid) for a in agents}
        return [{"plant": a.name, "rest": rest[a.name], "torch": torch_at_rest[a.name],
                 "peak": sampler.peak[a.proc.pid], "after": after[a.name]} for a in agents]
    finally:
        for a in agents:
            a.stop()
        stop(dashboard.proc)


def floor_flags(workdir: Path, i: int) -> list[str]:
    """The plant floor as the demo starts it (dashboard/demo.py floor_flags)."""
    return ["--stream-interval", str(STREAM_INTERVAL_S), "--watch-dir", str(workdir / "watch" / f"mem_{i}")]


def verdict(value: float, goal: float) -> str:
    return "yes" if value <= goal else "NO"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plants", type=int, default=2)
    parser.add_argument("--rows", type=int, default=3000)
    parser.add_argument("--local-epochs", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = measure(args.plants, args.rows, args.local_epochs, Path(tmp))
    print(f"\nFactoryFL plant memory: {args.plants} simulated plants ({args.rows} rows), one round of the default CNN "
          f"({args.local_epochs} local epochs); {os.cpu_count()} CPU(s), load average {os.getloadavg()[0]:.1f}")
    header = ("plant", "processes", "at rest RSS (MB)", "at rest PSS (MB)", f"rest <= {REST_GOAL_MB} MB",
              "torch at rest",
              "training peak RSS (MB)", "training peak PSS (MB)", f"training <= {TRAINING_GOAL_MB} MB",
              "after the round RSS (MB)")
    print_table(header, [[r["plant"], str(r["rest"].processes), f"{r['rest'].rss_mb:.0f}", f"{r['rest'].pss_mb:.0f}",
                          verdict(r["rest"].rss_mb, REST_GOAL_MB), "loaded" if r["torch"] else "no",
                          f"{r['peak'].rss_mb:.0f}",
                          f"{r['peak'].pss_mb:.0f}", verdict(r["peak"].rss_mb, TRAINING_GOAL_MB),
                          f"{r['after'].rss_mb:.0f}"] for r in rows])
    return 0


if __name__ == "__main__":
    sys.exit(main())
