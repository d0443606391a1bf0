"""Page render benchmark: server time of the operators' pages with 200 plants and 50 experiments in the
database (goal: <= 200 ms each). Uses the Flask test client, so it measures the server only.

    .venv/bin/python bench/pages.py [--plants 200] [--experiments 50] [--repeat 20]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

GOAL_MS = 200.0


def populate(plants: int, experiments: int, heartbeats: int, rounds: int) -> None:
    from dashboard.extensions import db
    from dashboard.models import Experiment, Factory, Heartbeat, Round, RoundResult
    from dashboard.models.base import utcnow

    now = utcnow()
    names = [f"plant_{i:03d}" for i in range(plants)]
    for i, name in enumerate(names):
        f = Factory(name=name, hostname="10.0.0.1", port=8000 + i, device="cpu", status="online" if i % 7 else "offline",
                    capabilities={"num_samples": 3000, "data_type": "time_series", "features": ["a", "b"],
                                  "supported_models": ["cnn", "lstm", "hybrid"], "source": "simulator:default"},
                    orchestrator_email="o@factoryfl.org", orchestrator_password_enc="x", heartbeat_token_hash="x",
                    heartbeat_interval=30, last_heartbeat=now, current_load={"cpu_usage": 20, "memory_usage": 40,
                                                                            "disk_usage": 50})
        db.session.add(f)
        db.session.flush()
        db.session.add_all([Heartbeat(factory_id=f.id, received_at=now - timedelta(seconds=30 * k), status="online",
                                      cpu_usage=float(k % 90), memory_usage=40.0, disk_usage=50.0)
                            for k in range(heartbeats)])
    metrics = {k: 0.5 for k in ("train_loss", "val_loss", "val_f1", "test_loss", "test_accuracy", "test_precision",
                                "test_recall", "test_f1", "test_auc")}
    for e in range(experiments):
        exp = Experiment(name=f"experiment {e}", created_by="bench", status="running" if e % 5 == 0 else "completed",
                         config={"rounds": rounds, "model_type": "cnn", "algorithm": "fedavg", "factories": names[:10],
                                 "local_epochs": 1, "batch_size": 64, "learning_rate": 0.005, "sequence_length": 10,
                                 "min_factories": 2, "secure_aggregation": False, "privacy": {"mode": "none"}},
                         current_round=rounds, baseline=metrics)
        db.session.add(exp)
        db.session.flush()
        for n in range(1, rounds + 1):
            r = Round(experiment_id=exp.id, number=n, status="completed", participants=names[:10], dropouts={},
                      metrics=metrics, threshold=0.5, started_at=now, finished_at=now)
            db.session.add(r)
            db.session.flush()
            db.session.add_all([RoundResult(round_id=r.id, factory_name=p, num_samples=1000, steps=10,
                                            train_seconds=1.0, metrics=metrics) for p in names[:10]])
    db.session.commit()


def main() -> int:
    import logging
    logging.basicConfig(level=logging.ERROR)
    parser = argparse.ArgumentParser()
    parser.add_argument("--plants", type=int, default=200)
    parser.add_argument("--experiments", type=int, default=50)
    parser.add_argument("--heartbeats", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["DASHBOARD_INSTANCE_PATH"] = tmp
        os.environ.setdefault("DATABASE_URL", f"sqlite:///{tmp}/bench.sqlite")
        from flask_migrate import upgrade

        from dashboard import create_app
        from dashboard.lifecycle.bootstrap import ensure_operator
        from dashboard.extensions import db

        app = create_app({"TESTING": True, "WTF_CSRF_ENABLED": False})
        with app.app_context():
            upgrade()
            ensure_operator("bench@factoryfl.org", "bench-password")
            db.session.commit()
            populate(args.plants, args.experiments, args.heartbeats, args.rounds)
        client = app.test_client()
        client.post("/login", data={"email": "bench@factoryfl.org", "password": "bench-password"})
        pages = ["/", "/factories/plant_001", "/experiments", "/experiments/1", "/api/experiments/1", "/audit",
                 "/factories"]
        rows = []
        for page in pages:
            timings = []
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                resp = client.get(page)
                timings.append((time.perf_counter() - t0) * 1000)
                assert resp.status_code == 200, (page, resp.status_code, resp.get_data(as_text=True)[:300])
            timings.sort()
            rows.append((page, statistics.median(timings), timings[int(0.95 * (len(timings) - 1))]))
    print(f"\nPage server time, {args.plants} plants ({args.heartbeats} heartbeats each), {args.experiments} "
          f"experiments ({args.rounds} rounds x 10 plants), {args.repeat} requests per page, goal <= {GOAL_MS:.0f} ms")
    print("| page | median (ms) | p95 (ms) | goal |")
    print("|---|---|---|---|")
    for page, median, p95 in rows:
        print(f"| {page} | {median:.1f} | {p95:.1f} | {'ok' if p95 <= GOAL_MS else 'MISSED'} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
