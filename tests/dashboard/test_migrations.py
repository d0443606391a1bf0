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


def test_the_deployments_migration_assigns_each_plant_the_release_that_was_active_for_it(tmp_path):
    """Decision 0022: before, a plant used the newest activated active release listing it; after the upgrade its
    deployment says the same, and the downgrade makes the assigned releases active again."""
    env = {**os.environ, "DASHBOARD_INSTANCE_PATH": str(tmp_path), "DATABASE_URL": f"sqlite:///{tmp_path}/old.db"}
    flask = [sys.executable, "-m", "flask", "--app", "dashboard", "db"]

    def run(*args):
        result = subprocess.run([*flask, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr

    run("upgrade", "a9c3e7f1b5d2")
    db = sqlite3.connect(tmp_path / "old.db")
    rows = [(1, '["plant_a", "plant_b"]', 1, "2026-12-01 10:00:00"), (2, '["plant_b"]', 1, "2026-12-02 10:00:00"),
            (3, '["plant_c"]', 0, "2026-12-03 10:00:00")]
    for release_id, plants, active, at in rows:
        db.execute("INSERT INTO releases (id, experiment_id, round_number, sha256, size, metrics, plants, "
                   "released_by, released_at, active, activated_at, activated_by) VALUES "
                   "(?, 1, 1, 'ab', 1, '{}', ?, 'ops', ?, ?, ?, 'ops@x')", (release_id, plants, at, active, at))
    db.commit()
    db.close()
    run("upgrade")
    db = sqlite3.connect(tmp_path / "old.db")
    assert db.execute("SELECT factory_name, release_id, action, actor FROM deployments ORDER BY factory_name"
                      ).fetchall() == [("plant_a", 1, "deploy", "ops@x"), ("plant_b", 2, "deploy", "ops@x")]
    db.close()
    run("downgrade", "a9c3e7f1b5d2")
    db = sqlite3.connect(tmp_path / "old.db")
    assert db.execute("SELECT id, active FROM releases ORDER BY id").fetchall() == [(1, 1), (2, 1), (3, 0)]
