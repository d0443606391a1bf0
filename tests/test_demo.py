"""`make demo` runs `python -m dashboard.demo`: it must bring everything up, complete its experiment, and stop in
order on Ctrl-C (the plants with their last heartbeats, then the dashboard)."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from factoryfl_testing.harness import free_port

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.integration


def test_the_demo_brings_up_three_plants_completes_its_first_experiment_and_releases_it_to_the_floor(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DASHBOARD_", "DATABASE_URL"))}
    with __import__("socket").socket() as s:  # three consecutive free ports for the plants
        s.bind(("127.0.0.1", 0))
        base = s.getsockname()[1] % 20000 + 30000
    cmd = [sys.executable, "-m", "dashboard.demo", "--port", str(free_port()), "--rounds", "2",
           "--heartbeat-interval", "2", "--first-plant-port", str(base), "--workdir", str(tmp_path),
           "--stream-interval", "2"]
    # a process group of its own, as a terminal gives a foreground command: Ctrl-C below goes to the whole group
    demo = subprocess.Popen(cmd, cwd=ROOT, env={**env, "PYTHONUNBUFFERED": "1"}, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    lines = []
    try:
        deadline = time.time() + 400
        while time.time() < deadline:
            line = demo.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "scoring a live stream" in line or "exited early" in line or "could not release" in line \
                    or "took up model" in line:
                break
        out = "".join(lines)
        assert "all three plants are online" in out, out
        assert "round 1:" in out and "round 2:" in out and "experiment completed" in out, out
        assert "log in as admin@factoryfl.org with password" in out
        # the model at work on the plant floor (DESIGN §10): released, taken up by every plant, scoring a stream
        assert "released round" in out and "every plant uses released model" in out, out
        assert "the plants are scoring a live stream: plant_default" in out, out
    finally:
        try:
            os.killpg(demo.pid, signal.SIGINT)  # a real Ctrl-C: SIGINT to the demo and its plants at once
        except ProcessLookupError:
            pass
        rest, _ = demo.communicate(timeout=150)
    # the plants stopped first, each with a last heartbeat the dashboard received; then the dashboard; then a line
    last = rest.strip().splitlines()[-1]
    assert "all stopped: the plants first (3 of 3 exited cleanly" in last and "dashboard (exited cleanly)" in last, rest
    for name in ("plant_default", "plant_heavy", "plant_hot"):
        log = (tmp_path / "logs" / f"{name}.log").read_text()
        assert "sent the last heartbeat (stopping)" in log and "stopped cleanly" in log, log[-2000:]
        assert "could not send the last heartbeat" not in log
    import sqlite3

    with sqlite3.connect(tmp_path / "instance" / "factoryfl.sqlite") as db:
        stopping = {name for (name,) in db.execute("SELECT DISTINCT f.name FROM heartbeats h JOIN factories f "
                                                   "ON f.id = h.factory_id WHERE h.status = 'stopping'")}
        statuses = dict(db.execute("SELECT name, status FROM factories"))
    assert stopping == {"plant_default", "plant_heavy", "plant_hot"}, statuses
    assert set(statuses.values()) == {"offline"}, statuses
