"""Heartbeat load benchmark (DESIGN §11, issue #17): gunicorn on loopback against PostgreSQL, with N registered
plants, and a small asyncio client that keeps C HTTP/1.1 keep-alive connections busy for D seconds. Prints
sustained requests per second and p50/p99 latency against the goals (>= 1,000/s, p99 <= 100 ms), and whether
every accepted heartbeat was recorded: the server is stopped with SIGTERM after the load (its workers write
their buffers as they exit, dashboard.registry.heartbeats) and the rows are counted.

Modes (DASHBOARD_HEARTBEAT_DURABLE): `buffered` answers at once and writes every flush interval; `durable`
answers once the row is committed (group commit).

The load generator runs on the same machine as the server (2 cores here): its own CPU use is part of
the result.

    .venv/bin/python bench/heartbeats.py [--plants 100 10000] [--modes buffered durable] [--seconds 15]
        [--connections 32] [--workers 4] [--threads 4]   (default mode: buffered)
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import random
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.table import print_table  # noqa: E402
from factoryfl_testing.harness import free_port, stop  # noqa: E402
from factoryfl_testing.postgres import PostgresCluster  # noqa: E402

SEED = """
import sys
from dashboard import create_app
from dashboard.extensions import db
from dashboard.models import Factory
from dashboard.models.operators import token_digest
from dashboard.auth.security import encrypt
app = create_app()
n = int(sys.argv[1])
with app.app_context():
    secret = encrypt("orchestrator-password")
    db.session.execute(db.insert(Factory), [
        {"name": f"plant_{i:05d}", "hostname": "10.0.0.1", "port": 8080, "device": "cpu", "status": "online",
         "capabilities": {}, "orchestrator_email": "orchestrator@factoryfl.org", "orchestrator_password_enc": secret,
         "heartbeat_token_hash": token_digest(f"token-{i}"), "heartbeat_interval": 30.0, "current_load": {},
         "active_experiments": []} for i in range(n)])
    db.session.commit()
"""


async def client(port: int, plants: int, deadline: float, latencies: list, codes: dict) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    while time.monotonic() < deadline:
        i = random.randrange(plants)
        body = json.dumps({"factory_name": f"plant_{i:05d}", "status": "online", "active_experiments": [],
                           "current_load": {"cpu_usage": 12.5, "memory_usage": 40.0, "disk_usage": 55.0}}).encode()
        request = (f"POST /heartbeat HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer token-{i}\r\n"
                   f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body
        started = time.perf_counter()
        writer.write(request)
        await writer.drain()
        status_line = await reader.readline()
        length, close = 0, False
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            if name.lower() == "content-length":
                length = int(value)
            if name.lower() == "connection" and "close" in value.lower():
                close = True
        await reader.readexactly(length)
        latencies.append(time.perf_counter() - started)
        code = int(status_line.split()[1]) if status_line else 0
        codes[code] = codes.get(code, 0) + 1
        if close or not status_line:
            writer.close()
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.close()


async def load(port: int, plants: int, seconds: float, connections: int) -> tuple[list, dict, float]:
    latencies, codes = [], {}
    started = time.monotonic()
    await asyncio.gather(*(client(port, plants, started + seconds, latencies, codes) for _ in range(connections)))
    return latencies, codes, time.monotonic() - started


def heartbeat_rows(env: dict) -> int:
    out = subprocess.run([sys.executable, "-c", "from dashboard import create_app\nfrom dashboard.extensions import db\n"
                          "from dashboard.models import Heartbeat\napp = create_app()\nwith app.app_context():\n"
                          "    print(db.session.query(Heartbeat).count())"], cwd=ROOT, env=env, capture_output=True,
                         text=True, check=True)
    return int(out.stdout.strip().splitlines()[-1])


RATE_GOAL, P99_GOAL_MS = 1000, 100


def run(plants: int, mode: str, seconds: float, connections: int, workers: int, threads: int, workdir: Path) -> dict:
    postgres = PostgresCluster(workdir / f"pg{plants}{mode}").start()
    server = None
    try:
        # gunicorn is production: fresh, strong secrets, as `make secrets` would make them
        env = {**os.environ, "DATABASE_URL": postgres.url, "DASHBOARD_INSTANCE_PATH": str(workdir / f"inst{plants}{mode}"),
               "DASHBOARD_SCHEDULER": "off", "SECRET_KEY": secrets.token_hex(32),
               "CREDENTIALS_KEY": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
               "FACTORY_ENROLLMENT_TOKEN": secrets.token_urlsafe(32), "DASHBOARD_API_TOKEN": secrets.token_urlsafe(32),
               "DASHBOARD_ADMIN_PASSWORD": secrets.token_urlsafe(16),
               "DASHBOARD_HEARTBEAT_DURABLE": "true" if mode == "durable" else "false"}
        subprocess.run([sys.executable, "-m", "flask", "--app", "dashboard", "db", "upgrade"], cwd=ROOT, env=env,
                       check=True, capture_output=True)
        subprocess.run([sys.executable, "-c", SEED, str(plants)], cwd=ROOT, env=env, check=True, capture_output=True)
        port = free_port()
        server = subprocess.Popen([sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers",
                                   str(workers), "--worker-class", "gthread", "--threads", str(threads),
                                   "--keep-alive", "30", "--log-level", "warning", "dashboard:create_app()"],
                                  cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 60
        while True:
            try:
                requests.get(f"http://127.0.0.1:{port}/api/openapi.json", timeout=1)
                break
            except requests.RequestException:
                if time.time() > deadline:
                    raise RuntimeError("gunicorn did not start")
                time.sleep(0.3)
        asyncio.run(load(port, plants, 2, connections))  # warm-up: every worker connected to the database
        time.sleep(1)  # the warm-up's buffered heartbeats are written
        before = heartbeat_rows(env)
        latencies, codes, elapsed = asyncio.run(load(port, plants, seconds, connections))
        stop(server, signal.SIGTERM)  # gunicorn's graceful stop: every worker writes its buffer as it exits
        recorded = heartbeat_rows(env) - before
        latencies.sort()
        return {"plants": plants, "mode": mode, "requests": len(latencies), "rps": len(latencies) / elapsed,
                "p50_ms": 1000 * statistics.median(latencies), "p99_ms": 1000 * latencies[int(0.99 * len(latencies))],
                "ok": codes.get(200, 0), "other": {k: v for k, v in codes.items() if k != 200}, "recorded": recorded}
    finally:
        if server:
            stop(server)
        postgres.stop()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--plants", type=int, nargs="+", default=[100, 10_000])
    parser.add_argument("--modes", nargs="+", choices=("buffered", "durable"), default=["buffered"],
                        help="buffered: the default (DASHBOARD_HEARTBEAT_DURABLE=false); durable: a 200 after the commit")
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.plants:
            for mode in args.modes:
                rows.append(run(n, mode, args.seconds, args.connections, args.workers, args.threads, Path(tmp)))
    print(f"\nFactoryFL heartbeat load: gunicorn {args.workers} gthread workers x {args.threads} threads, PostgreSQL, "
          f"{args.connections} keep-alive connections for {args.seconds:.0f} s, client on the same "
          f"{psutil.cpu_count()} CPU(s), load average {os.getloadavg()[0]:.1f}; goal >= {RATE_GOAL}/s, "
          f"p99 <= {P99_GOAL_MS} ms, none lost")
    header = ("registered plants", "mode", "requests", "req/s", f">= {RATE_GOAL}/s", "p50 (ms)", "p99 (ms)",
              f"p99 <= {P99_GOAL_MS} ms", "200 OK", "other answers", "heartbeats recorded", "all recorded")
    print_table(header, [[f"{r['plants']:,}", r["mode"], f"{r['requests']:,}", f"{r['rps']:.0f}",
                          "yes" if r["rps"] >= RATE_GOAL else "NO", f"{r['p50_ms']:.1f}", f"{r['p99_ms']:.1f}",
                          "yes" if r["p99_ms"] <= P99_GOAL_MS else "NO", f"{r['ok']:,}", str(r["other"] or "-"),
                          f"{r['recorded']:,}", "yes" if r["recorded"] == r["ok"] else "NO"] for r in rows])
    return 0


if __name__ == "__main__":
    sys.exit(main())
