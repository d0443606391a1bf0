import os
import sqlite3
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_flask_db_upgrade_builds_the_schema_from_nothing(tmp_path):
    env = {**os.environ, "DASHBOARD_INSTANCE_PATH": str(tmp_path), "DATABASE_URL": f"sqlite:///{tmp_path}/fresh.db"}
    flask = [sys.executable, "-m", "flask", "--app", "dashboard", "db", "upgrade"]
    result = subprocess.run(flask, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    tables = {r[0] for r in sqlite3.connect(tmp_path / "fresh.db").execute("select name from sqlite_master")}
    assert {"factories", "heartbeats", "experiments", "rounds", "round_results", "model_versions", "operators",
            "api_tokens", "audit_events"} <= tables
    check = subprocess.run([sys.executable, "-m", "flask", "--app", "dashboard", "db", "check"], cwd=ROOT,
                           env=env, capture_output=True, text=True, timeout=120)
    assert check.returncode == 0, check.stdout + check.stderr  # models and migrations agree
