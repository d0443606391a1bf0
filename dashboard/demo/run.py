"""`make demo`: a dashboard and three simulated plants on this machine, and a first experiment.

Starts the embedded dashboard (SQLite under instance/), three agents with different simulator
profiles, waits until they are online, creates and starts a small MLP experiment (the default row model)
through the JSON API, releases its best round to the plants once it completes (each then scores a live simulated
stream and a watch folder, and its alerts show on the factories and alerts pages), prints where to look, and
stops everything it started (by PID) on Ctrl-C.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import logging
import subprocess
import sys
import time
from pathlib import Path

import requests

from shared.membership.admin import REQUEST_FILE as MEMBERSHIP_REQUEST_FILE, Administrator, load_request

PLANTS = (("plant_default", "default", 8081), ("plant_heavy", "heavy_duty", 8082), ("plant_hot", "hot_climate", 8083))
ROOT = Path(__file__).resolve().parents[2]  # the repository (this file is dashboard/demo/run.py)


log = logging.getLogger("dashboard.demo")


def say(message: str) -> None:
    log.info("[demo] %s", message)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m dashboard.demo")
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--heartbeat-interval", type=float, default=5.0)
    parser.add_argument("--first-plant-port", type=int, default=8081, help="the plants use this port and the next two")
    parser.add_argument("--workdir", type=Path, default=ROOT, help="where instance/, logs/ and state/ go")
    parser.add_argument("--stream-interval", type=float, default=5.0,
                        help="seconds between two batches of the plants' live simulated stream")
    return parser.parse_args()


def credentials(instance: Path) -> tuple[str, str]:
    """The demo admin's password and API token, made once and kept under instance/ (mode 0600)."""
    instance.mkdir(parents=True, exist_ok=True)
    secrets_file = instance / "demo_credentials"
    if secrets_file.exists():
        password, token = secrets_file.read_text().split()
        return password, token
    password, token = secrets.token_urlsafe(12), secrets.token_urlsafe(24)
    secrets_file.write_text(f"{password} {token}\n")
    os.chmod(secrets_file, 0o600)
    return password, token


class Processes:
    """What the demo started, stopped by PID on Ctrl-C: plants first, so their last heartbeat reaches the
    dashboard."""

    def __init__(self):
        self.started: list[subprocess.Popen] = []
        signal.signal(signal.SIGINT, self._interrupted)
        signal.signal(signal.SIGTERM, self._interrupted)

    @staticmethod
    def _interrupted(*_):
        """Only raise: stopping inside the handler (logging, waiting) could re-enter what the main thread was in
        the middle of (a Ctrl-C once went unanswered for 90 s in the demo test); main's finally stops all."""
        raise KeyboardInterrupt

    def stop_all(self) -> None:
        """The plants first (each sends its last heartbeat, "stopping", to the dashboard that is still up), then
        the dashboard, then one last line. A terminal's Ctrl-C also reached the plants (they share the demo's
        process group); the dashboard has a session of its own (start_dashboard) and is stopped here, by PID."""
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # one stop at a time; the plants get their own SIGINT
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        say("stopping the plants, then the dashboard")
        stopped = []
        for group in (self.started[1:], self.started[:1]):
            for p in group:
                if p.poll() is None:
                    p.send_signal(signal.SIGINT)
            for p in group:
                try:
                    p.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
            stopped.append(sum(p.returncode == 0 for p in group))
        if self.started:
            say(f"all stopped: the plants first ({stopped[0]} of {len(self.started) - 1} exited cleanly, each after its "
                f"last heartbeat), then the dashboard ({'exited cleanly' if stopped[1] else 'killed or failed'})")


def start_dashboard(args, env: dict, url: str, logs: Path, processes: Processes) -> None:
    dashboard_log = open(logs / "dashboard.log", "a")
    # a session of its own: a terminal's Ctrl-C (SIGINT to the demo's whole process group) must not stop the
    # dashboard before the plants' last heartbeats reach it; Processes.stop_all stops it by PID after them
    processes.started.append(subprocess.Popen([sys.executable, "-m", "dashboard", "--port", str(args.port)],
                                              cwd=ROOT, env=env, stdout=dashboard_log, stderr=subprocess.STDOUT,
                                              start_new_session=True))
    say(f"dashboard starting at {url} (log: logs/dashboard.log)")
    for _ in range(120):
        try:
            requests.get(f"{url}/login", timeout=2)
            return
        except requests.RequestException:
            time.sleep(0.5)
    say("the dashboard did not start; see logs/dashboard.log")
    raise SystemExit(1)  # main's finally stops what started


def demo_federation(args) -> Administrator:
    """The federation's membership key (shared.membership): the demo acts as its administrator. In production it
    is held by the administrator, never beside the dashboard; the demo keeps it under instance/ to stay one command."""
    admin = Administrator(args.workdir / "instance" / "federation_admin")
    if not admin.private_key_path.exists():
        admin.keygen()
    say(f"acting as the federation's administrator: membership key {admin.federation()} in {admin.directory} "
        "(plants pin its public half with --federation-key)")
    return admin


def admit_plants(args, url: str, headers: dict, admin: Administrator, names: list[str]) -> None:
    """As the administrator: admit each plant from the request it wrote, and hand the certificate to the dashboard,
    which relays it into secure rounds (the plants check it against the key they pinned)."""
    for name in names:
        request = load_request(args.workdir / "state" / name / MEMBERSHIP_REQUEST_FILE)
        cert, _ = admin.admit(request)
        resp = requests.post(f"{url}/api/membership/certificates", json=cert.to_wire(), headers=headers, timeout=10)
        if resp.status_code != 201:
            say(f"the dashboard refused {name}'s membership certificate: {resp.text[:200]}")
            raise SystemExit(1)  # main's finally stops what started
        say(f"admitted {name} (identity key {request.fingerprint}) as certificate {cert.serial}")


def start_plants(args, plants, env: dict, url: str, logs: Path, processes: Processes,
                 admin: Administrator) -> None:
    for name, profile, port in plants:
        processes.started.append(subprocess.Popen(
            [sys.executable, "factory_agent/FactoryDatasite.py", "--factory_name", name, "--port", str(port),
             "--dashboard_url", url, "--simulate", profile, "--rows", "3000", "--seed", str(port), "--reset",
             "--heartbeat-interval", str(args.heartbeat_interval), "--log-dir", str(logs),
             "--state-dir", str(args.workdir / "state" / name), "--federation-key", str(admin.public_key_path),
             "--verify-models", *floor_flags(args, name)], cwd=ROOT, env=env,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        say(f"plant {name} ({profile} profile) starting on port {port} (log: logs/{name}.log); it verifies every "
            "model it computes on (--verify-models)")


def wait_online(url: str, headers: dict, names: list[str], processes: Processes) -> None:
    deadline = time.time() + 300
    while time.time() < deadline:
        online = [f["factory_name"] for f in requests.get(f"{url}/factories", headers=headers, timeout=5).json()
                  if f["status"] in ("online", "busy")]
        if all(name in online for name in names):
            say("all three plants are online")
            return
        if any(p.poll() is not None for p in processes.started):
            say("a process exited early; see logs/")
            raise SystemExit(1)  # main's finally stops what started
        time.sleep(1)


def follow(url: str, headers: dict, experiment_id: int) -> dict:
    """Print each round once its model has been scored (by the next round's training calls, or by the last
    round's evaluation), until the experiment ends."""
    shown = 0
    while True:
        time.sleep(3)
        try:
            detail = requests.get(f"{url}/api/experiments/{experiment_id}", headers=headers, timeout=10).json()
        except requests.RequestException:
            continue
        done = [r for r in detail["rounds"] if r["status"] == "completed"]
        finished = detail["status"] not in ("running", "pending")
        scored = done if finished else done[:-1]
        for r in scored[shown:]:
            m = r["metrics"]
            say(f"round {r['number']}: {len(r['participants'])} plants, {r['duration_s'] or 0:.1f} s, "
                f"train_loss {m.get('train_loss') or 0:.3f}, test_f1 {m.get('test_f1') or 0:.3f}, "
                f"test_auc {m.get('test_auc') or 0:.3f}")
        shown = max(shown, len(scored))
        if finished and detail["rounds"]:
            say(f"experiment {detail['status']}")
            return detail


def main() -> int:
    args = parse_args()
    url = f"http://127.0.0.1:{args.port}"
    plants = [(name, profile, args.first_plant_port + i) for i, (name, profile, _) in enumerate(PLANTS)]
    instance = args.workdir / "instance"
    password, token = credentials(instance)
    env = {**os.environ, "DASHBOARD_INSTANCE_PATH": str(instance),
           "DASHBOARD_ADMIN_EMAIL": os.environ.get("DASHBOARD_ADMIN_EMAIL", "admin@factoryfl.org"),
           "DASHBOARD_ADMIN_PASSWORD": password, "DASHBOARD_API_TOKEN": token,
           "DASHBOARD_ALLOW_PRIVATE_PLANTS": "true",  # the demo's plants listen on this machine's loopback
           "DASHBOARD_ENV": "development",  # secrets of its own under instance/ (a shell's production setting aside)
           "DASHBOARD_HEARTBEAT_INTERVAL": str(args.heartbeat_interval), "PYTHONUNBUFFERED": "1"}
    logs = args.workdir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    processes = Processes()
    try:
        run_demo(args, env, url, plants, logs, processes, password, token)
    except KeyboardInterrupt:
        pass
    finally:
        processes.stop_all()
    return 0


def run_demo(args, env: dict, url: str, plants: list, logs: Path, processes: Processes, password: str,
             token: str) -> None:
    """Start everything, run and release the first experiment, then serve until Ctrl-C."""
    start_dashboard(args, env, url, logs, processes)
    admin = demo_federation(args)
    start_plants(args, plants, env, url, logs, processes, admin)
    headers = {"Authorization": f"Bearer {token}"}  # GET /factories is for operators
    wait_online(url, headers, [name for name, _, _ in plants], processes)
    admit_plants(args, url, headers, admin, [name for name, _, _ in plants])
    # secure aggregation over all three: the plants verify membership (no --trust-dashboard), so they mask only among
    # certified members, in rounds of at least their min_cohort (3); the dashboard refuses anything else up front
    body = {"name": "demo: MLP on three plants", "model_type": "mlp", "rounds": args.rounds, "local_epochs": 2,
            "min_factories": 3, "secure_aggregation": True}
    created = requests.post(f"{url}/api/experiments", json=body, headers=headers, timeout=10)
    if created.status_code != 201:
        say(f"the dashboard refused the demo's experiment: {created.text[:400]}")
        raise SystemExit(1)  # main's finally stops what started
    experiment = created.json()
    requests.post(f"{url}/api/experiments/{experiment['id']}/start", headers=headers, timeout=10)
    say(f"started experiment #{experiment['id']} with secure aggregation among the three plants, each verifying the "
        f"others' membership: watch it at {url}/experiments/{experiment['id']}")
    say(f"log in as {env['DASHBOARD_ADMIN_EMAIL']} with password {password} (API token: {token})")
    detail = follow(url, headers, experiment["id"])
    release_to_the_floor(url, headers, detail, [name for name, _, _ in plants], args.workdir)
    while True:
        signal.pause()


def floor_flags(args, name: str) -> list[str]:
    """The plant floor (DESIGN §10): a live stream of simulated readings and a folder for CSV files to score."""
    return ["--stream-interval", str(args.stream_interval), "--watch-dir", str(args.workdir / "watch" / name)]


def release_to_the_floor(url: str, headers: dict, experiment: dict, plants: list[str], workdir: Path) -> None:
    """Release a completed experiment's best round, wait until every plant scores with it, show the floor."""
    if experiment["status"] == "completed":
        show_the_floor(url, headers, experiment["id"], plants, workdir)
    say("the dashboard keeps running (Ctrl-C to stop everything)")


def show_the_floor(url: str, headers: dict, experiment_id: int, plants: list[str], workdir: Path) -> None:
    resp = requests.post(f"{url}/api/experiments/{experiment_id}/release", headers=headers, timeout=30)
    if resp.status_code != 201:
        say(f"could not release the model: {resp.json().get('error')}")
        return
    release = resp.json()
    say(f"released round {release['round']} (validation F1 {release['metrics'].get('val_f1') or 0:.3f}) as model "
        f"#{release['id']}: the registry is at {url}/releases")
    started, using = time.monotonic(), {}
    while time.monotonic() - started < 120 and len(using) < len(plants):
        using = {f["factory_name"]: f for f in requests.get(f"{url}/factories", headers=headers, timeout=5).json()
                 if (f.get("released_model") or {}).get("id") == release["id"] and f["factory_name"] in plants}
        time.sleep(0.5)
    if len(using) < len(plants):
        say(f"only {', '.join(sorted(using)) or 'no plant'} took up model #{release['id']} within 120 s; see logs/")
        return
    say(f"every plant uses released model #{release['id']} ({time.monotonic() - started:.1f} s after the release)")
    while time.monotonic() - started < 180:
        floor = {f["factory_name"]: f for f in requests.get(f"{url}/factories", headers=headers, timeout=5).json()}
        if all((floor[name].get("scored_rows") or 0) > 0 for name in plants):
            break
        time.sleep(1)
    counts = ", ".join(f"{name} {floor[name].get('scored_rows') or 0} rows / {floor[name].get('alerts_open') or 0} "
                       "open alerts" for name in plants)
    say(f"the plants are scoring a live stream: {counts}; alerts at {url}/alerts")
    say(f"drop a CSV into {workdir / 'watch' / plants[0]} and its scores appear beside it as <name>.scores.csv")


if __name__ == "__main__":
    # this CLI's own lines on stdout, whatever a library later does to the root logger (opacus sets it)
    log.addHandler(logging.StreamHandler(sys.stdout))
    log.setLevel(logging.INFO)
    log.propagate = False
    sys.exit(main())
