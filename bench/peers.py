"""FactoryFL beside a peer (issue #17): the same model (the default CNN of shared.models), the same data (simulated
plants, shared.data.simulator: profile, rows and seed per site), the same rounds and local training (shared.training,
2 epochs, batch 64, learning rate 0.005) on

- FactoryFL: a real dashboard and real plants (PySyft datasites) started by the integration-test harness;
- Flower: its Deployment Engine, a SuperLink and one SuperNode per site on loopback (`--insecure`), the App in
  bench/flower_app run with `flwr run`; flwr lives in its own virtualenv, bench/.flower-venv (`make flower-venv`),
  never beside PySyft's pins.

Prints one table: median round wall time, median training time of the round's slowest site (each system's own
measurement around the same training function), their ratio (the orchestration's overhead; goal: FactoryFL at or
below Flower), and memory per site (all of a site's processes: a plant; a SuperNode with the ClientApp processes it
starts) at rest and at peak.

    .venv/bin/python bench/peers.py [--sites 3] [--rounds 3] [--rows 3000]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.plants import Memory, PeakSampler, tree_memory, wait_online  # noqa: E402
from bench.table import print_table  # noqa: E402
from factoryfl_testing.harness import Agent, Dashboard, free_port, stop  # noqa: E402

FLOWER_BIN = ROOT / "bench" / ".flower-venv" / "bin"
FLOWER_APP = ROOT / "bench" / "flower_app"
PROFILES = ("default", "heavy_duty", "hot_climate", "precision")
SETTLE_S = 5


@dataclass(frozen=True)
class Settings:
    sites: int
    rounds: int
    rows: int
    local_epochs: int = 2


@dataclass(frozen=True)
class Outcome:
    system: str
    round_walls: list[float]
    slowest_trains: list[float]
    site_rest: list[Memory]
    site_peak: list[Memory]
    coordinator_peak: Memory

    def ratio(self) -> float:
        return statistics.median(w / t for w, t in zip(self.round_walls, self.slowest_trains))


def feature_count(settings: Settings) -> int:
    """The simulator's features after encoding, as the sites have them (the server builds the model from it)."""
    from shared.data.csv_loader import load_frame
    from shared.data.simulator import FAILURE_MODE_COLUMNS, GROUP_COLUMN, LABEL_COLUMN, TIME_COLUMN, simulate

    frame = simulate(PROFILES[0], rows=settings.rows, seed=0)
    return len(load_frame(frame, LABEL_COLUMN, FAILURE_MODE_COLUMNS, GROUP_COLUMN, TIME_COLUMN).schema.feature_names)


def site_specs(settings: Settings) -> list[tuple[str, int]]:
    return [(PROFILES[i % len(PROFILES)], i) for i in range(settings.sites)]


def run_factoryfl(settings: Settings, workdir: Path) -> Outcome:
    dashboard = Dashboard(workdir / "dashboard").start()
    agents = []
    try:
        started = time.monotonic()
        # plain rounds, as Flower's: plants that trust the dashboard (dashboard.services.trust)
        agents = [Agent(f"peer_{seed}", workdir, dashboard.url, ["--simulate", profile, "--rows", str(settings.rows),
                                                                  "--seed", str(seed), "--trust-dashboard"]).start()
                  for profile, seed in site_specs(settings)]
        wait_online(dashboard, [a.name for a in agents], started)
        time.sleep(SETTLE_S)
        rest = [tree_memory(a.proc.pid) for a in agents]
        body = {"name": "peers", "model_type": "cnn", "rounds": settings.rounds, "local_epochs": settings.local_epochs,
                "batch_size": 64, "learning_rate": 0.005, "min_factories": settings.sites}
        with PeakSampler([a.proc.pid for a in agents] + [dashboard.proc.pid]) as sampler:
            eid = dashboard.api("POST", "/experiments", json=body).json()["id"]
            dashboard.api("POST", f"/experiments/{eid}/start")
            experiment = dashboard.wait_experiment(eid, statuses=("completed", "failed"), timeout=1800)
        if experiment["status"] != "completed":
            raise RuntimeError(f"the FactoryFL experiment ended {experiment['status']}")
        rounds = [r for r in experiment["rounds"] if r["status"] == "completed"]
        slowest = [max(m.get("train_seconds") or 0 for m in r["per_factory"].values()) for r in rounds]
        return Outcome("FactoryFL (PySyft datasites)", [r["duration_s"] for r in rounds], slowest, rest,
                       [sampler.peak[a.proc.pid] for a in agents], sampler.peak[dashboard.proc.pid])
    finally:
        for a in agents:
            a.stop()
        stop(dashboard.proc)


class FlowerFederation:
    """A SuperLink and one SuperNode per site, each its own process group, stopped by its id."""

    def __init__(self, settings: Settings, workdir: Path):
        self.settings = settings
        self.workdir = workdir
        self.port = free_port()
        self.env = {**os.environ, "PATH": f"{FLOWER_BIN}:{os.environ.get('PATH', '')}",
                    "FLWR_HOME": str(workdir / "flwr-home"), "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
        self.link: subprocess.Popen | None = None
        self.nodes: list[subprocess.Popen] = []

    def _start(self, name: str, args: list[str]) -> subprocess.Popen:
        log = open(self.workdir / f"{name}.log", "a")
        return subprocess.Popen([str(FLOWER_BIN / args[0]), *args[1:]], cwd=self.workdir, env=self.env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)

    def start(self) -> "FlowerFederation":
        home = self.workdir / "flwr-home"
        home.mkdir(parents=True, exist_ok=True)
        (home / "config.toml").write_text(f'[superlink]\ndefault = "bench"\n\n[superlink.bench]\n'
                                          f'address = "127.0.0.1:{self.port}"\ninsecure = true\n')
        self.link = self._start("superlink", ["flower-superlink", "--insecure", "--port", str(self.port),
                                              "--disable-runtime-dependency-installation"])
        _wait_for_port(self.port, self.link)
        for profile, seed in site_specs(self.settings):
            port = free_port()
            self.nodes.append(self._start(f"supernode{seed}", [
                "flower-supernode", "--insecure", "--superlink", f"127.0.0.1:{self.port}", "--port", str(port),
                "--node-config", f'profile="{profile}" rows={self.settings.rows} seed={seed}']))
            _wait_for_port(port, self.nodes[-1])
        return self

    def run_app(self, results: Path) -> None:
        s = self.settings
        overrides = (f'num-server-rounds={s.rounds} num-sites={s.sites} num-features={feature_count(s)} '
                     f'local-epochs={s.local_epochs} results-file="{results}"')
        done = subprocess.run([str(FLOWER_BIN / "flwr"), "run", str(FLOWER_APP), "bench", "--stream",
                               "--run-config", overrides], cwd=self.workdir, env=self.env, capture_output=True,
                              text=True, timeout=3600)
        if done.returncode != 0 or not results.exists():
            raise RuntimeError(f"flwr run failed ({done.returncode}): {(done.stdout + done.stderr)[-3000:]}")

    def stop(self) -> None:
        for proc in [*self.nodes, self.link]:
            if proc is not None and proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)  # the process group this script started
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()


def _wait_for_port(port: int, proc: subprocess.Popen, timeout: float = 60) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise RuntimeError(f"nothing listens on port {port} after {timeout:.0f} s")


def run_flower(settings: Settings, workdir: Path) -> Outcome:
    workdir.mkdir(parents=True, exist_ok=True)
    federation = FlowerFederation(settings, workdir)
    try:
        federation.start()
        time.sleep(SETTLE_S)
        rest = [tree_memory(n.pid) for n in federation.nodes]
        results = workdir / "flower-results.json"
        with PeakSampler([n.pid for n in federation.nodes] + [federation.link.pid]) as sampler:
            federation.run_app(results)
        rounds = json.loads(results.read_text())["rounds"]
        return Outcome("Flower (Deployment Engine)", [r["wall_s"] for r in rounds], [max(r["train_s"]) for r in rounds],
                       rest, [sampler.peak[n.pid] for n in federation.nodes], sampler.peak[federation.link.pid])
    finally:
        federation.stop()


def row(o: Outcome) -> list[str]:
    mean = statistics.mean
    return [o.system, str(len(o.site_rest)), str(len(o.round_walls)), f"{statistics.median(o.round_walls):.2f}",
            f"{statistics.median(o.slowest_trains):.2f}", f"{o.ratio():.2f}",
            f"{mean(m.rss_mb for m in o.site_rest):.0f} ({mean(m.processes for m in o.site_rest):.0f})",
            f"{mean(m.rss_mb for m in o.site_peak):.0f} / {mean(m.pss_mb for m in o.site_peak):.0f}",
            f"{o.coordinator_peak.rss_mb:.0f}"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rows", type=int, default=3000)
    args = parser.parse_args()
    if not (FLOWER_BIN / "flwr").exists():
        print(f"Flower is not installed in {FLOWER_BIN.parent}: run `make flower-venv` first", file=sys.stderr)
        return 2
    settings = Settings(args.sites, args.rounds, args.rows)
    with tempfile.TemporaryDirectory() as tmp:
        outcomes = [run_factoryfl(settings, Path(tmp) / "factoryfl"), run_flower(settings, Path(tmp) / "flower")]
    print(f"\nFactoryFL beside Flower: {args.sites} simulated sites ({args.rows} rows each), default CNN, {args.rounds} "
          f"rounds of 2 local epochs, everything on this machine's {os.cpu_count()} CPU(s), load average "
          f"{os.getloadavg()[0]:.1f}; goal: FactoryFL's ratio at or below Flower's")
    header = ("system", "sites", "rounds", "round wall (s, median)", "slowest site's training (s, median)",
              "wall / training", "site at rest RSS (MB, processes)", "site peak RSS / PSS (MB)",
              "coordinator peak RSS (MB)")
    print_table(header, [row(o) for o in outcomes])
    ours, theirs = outcomes[0].ratio(), outcomes[1].ratio()
    print(f"\nFactoryFL's ratio {ours:.2f} vs Flower's {theirs:.2f}: {'goal met' if ours <= theirs else 'goal NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
