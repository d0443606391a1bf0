"""Plant start-up benchmark (issue #17): seconds from `python factory_agent/FactoryDatasite.py` to the dashboard
listing the plant online, for one plant alone and for three started together on this machine, with where the time
goes, read from the agent's own log (each start-up step logs its duration: factory_agent.agent). Goals: one plant
online <= 10 s, three <= 15 s (on two cores).

    .venv/bin/python bench/startup.py [--plants 1 3] [--repeat 2] [--rows 3000]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.plants import wait_online  # noqa: E402
from bench.table import print_table  # noqa: E402
from factoryfl_testing.harness import Agent, Dashboard, stop  # noqa: E402

GOALS = {1: 10.0, 3: 15.0}  # plants started together -> seconds until all are online
PROFILES = ("default", "heavy_duty", "hot_climate", "precision")
STARTED = re.compile(r"starting \(log file .*\), ([\d.]+) s after its process started")
IMPORTED = re.compile(r"PySyft imported in ([\d.]+) s")
STEP = re.compile(r"step done: (.+) in ([\d.]+) s")
READY = re.compile(r"ready in ([\d.]+) s")


def breakdown(log: str) -> dict[str, float]:
    """Phase -> seconds, from one agent's log, in the order of the start-up."""
    phases = {"interpreter and imports": float(STARTED.search(log).group(1))}
    imported = IMPORTED.search(log)
    for name, seconds in STEP.findall(log):
        if name == "launch datasite" and imported:
            phases["launch datasite: import PySyft"] = float(imported.group(1))
            phases["launch datasite: start its server"] = float(seconds) - float(imported.group(1))
        else:
            phases[name] = float(seconds)
    steps = sum(phases.values()) - phases["interpreter and imports"]
    phases["between the steps (logging, keys, policy)"] = max(0.0, float(READY.search(log).group(1)) - steps)
    return phases


def one_start(plants: int, rows: int, workdir: Path) -> tuple[float, dict[str, float]]:
    """Seconds until every plant is listed online, and the mean of each phase over the plants."""
    dashboard = Dashboard(workdir / "dashboard").start()
    agents = []
    try:
        started = time.monotonic()
        agents = [Agent(f"start_{i}", workdir, dashboard.url, ["--simulate", PROFILES[i % len(PROFILES)], "--rows",
                                                                str(rows), "--seed", str(i)]).start()
                  for i in range(plants)]
        online = wait_online(dashboard, [a.name for a in agents], started)
        for agent in agents:
            agent.wait_ready()
        logs = [breakdown(a.log()) for a in agents]
        phases = {name: statistics.mean(p.get(name, 0.0) for p in logs) for name in logs[0]}
        return max(online.values()), phases
    finally:
        for a in agents:
            a.stop()
        stop(dashboard.proc)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plants", type=int, nargs="+", default=[1, 3])
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--rows", type=int, default=3000)
    args = parser.parse_args()
    results: dict[int, list[tuple[float, dict]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.plants:
            results[n] = [one_start(n, args.rows, Path(tmp) / f"{n}-{r}") for r in range(args.repeat)]
    print(f"\nFactoryFL plant start-up: {os.cpu_count()} CPU(s), load average {os.getloadavg()[0]:.1f}, median of "
          f"{args.repeat} starts; seconds per phase (mean over the plants started together)")
    phases = list(results[args.plants[0]][0][1])
    header = ("phase", *(f"{n} plant{'s' if n > 1 else ''} (s)" for n in args.plants))
    table = [[phase, *(f"{statistics.median(p.get(phase, 0.0) for _, p in results[n]):.2f}" for n in args.plants)]
             for phase in phases]
    totals = {n: statistics.median(total for total, _ in results[n]) for n in args.plants}
    table.append(["**all online (start to listed online)**", *(f"**{totals[n]:.1f}**" for n in args.plants)])
    table.append(["goal", *(f"<= {GOALS[n]:.0f}" if n in GOALS else "-" for n in args.plants)])
    table.append(["met", *(("yes" if totals[n] <= GOALS[n] else "NO") if n in GOALS else "-" for n in args.plants)])
    print_table(header, table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
