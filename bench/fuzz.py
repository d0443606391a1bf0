"""Schemathesis against a live dashboard (`python -m dashboard` on loopback, SQLite): about N requests generated
from /api/openapi.json, each sent with and without the API token, plus malformed bodies; counts answers by
status and fails on any 5xx. The CI test (tests/dashboard/test_api_fuzz.py) runs the same generator with
fewer examples in-process.

    .venv/bin/python bench/fuzz.py [--requests 10000]
"""

from __future__ import annotations

import argparse
import collections
import math
import sys
import tempfile
import time
from pathlib import Path

import requests
import schemathesis
from hypothesis import HealthCheck, given, settings

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from factoryfl_testing.harness import API_TOKEN, ENROLL, Dashboard, stop  # noqa: E402

MALFORMED = [("POST", "/api/experiments", b"{not json", "application/json"),
             ("POST", "/api/experiments", b"\xff\xfe\x00", "application/json"),
             ("POST", "/api/experiments", b'{"name": "x"}', "text/plain"),
             ("POST", "/api/experiments", b"[" * 5000 + b"]" * 5000, "application/json"),
             ("POST", "/api/experiments", b'{"name": "' + b"a" * (2 * 1024 * 1024) + b'"}', "application/json"),
             ("POST", "/register_factory", b"{}", "application/json"),
             ("POST", "/heartbeat", b'{"factory_name": "\\u0000"}', "application/json")]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=10_000)
    args = parser.parse_args()
    codes: collections.Counter = collections.Counter()
    errors = []
    with tempfile.TemporaryDirectory() as tmp:
        dashboard = Dashboard(Path(tmp) / "fuzz", extra_env={"DASHBOARD_REGISTER_RATE_LIMIT": "100000 per minute",
                                                             "DASHBOARD_SCHEDULER": "off"}).start()
        try:
            auth = {"Authorization": f"Bearer {API_TOKEN}"}
            requests.post(f"{dashboard.url}/api/experiments", json={"name": "seeded"}, headers=auth, timeout=10)
            schema = schemathesis.openapi.from_url(f"{dashboard.url}/api/openapi.json")
            operations = [r.ok() for r in schema.get_all_operations()]
            # Hypothesis stops early on operations with few distinct inputs: ask for a third more per operation
            per_operation = math.ceil(1.35 * args.requests / (2 * len(operations)))
            started = time.monotonic()
            for operation in operations:
                @given(case=operation.as_strategy())
                @settings(max_examples=per_operation, deadline=None, suppress_health_check=list(HealthCheck),
                          database=None)
                def call(case):
                    for headers in (auth, {}):
                        response = case.call(base_url=dashboard.url, headers=headers, timeout=30)
                        codes[response.status_code] += 1
                        if response.status_code >= 500:
                            errors.append(f"{case.method} {case.formatted_path} {case.body!r:.200} -> "
                                          f"{response.status_code}")

                call()
            for method, path, body, content_type in MALFORMED:
                response = requests.request(method, dashboard.url + path, data=body, timeout=30,
                                            headers={**auth, "Content-Type": content_type,
                                                     **({"Authorization": f"Bearer {ENROLL}"}
                                                        if path == "/register_factory" else {})})
                codes[response.status_code] += 1
                if response.status_code >= 500:
                    errors.append(f"malformed {path} {body[:40]!r} -> {response.status_code}")
            elapsed = time.monotonic() - started
        finally:
            stop(dashboard.proc)
    total = sum(codes.values())
    print(f"\nSchemathesis against a live dashboard: {total:,} requests over {len(operations)} operations in "
          f"{elapsed:.0f} s ({total / elapsed:.0f}/s)")
    print("| status | count |\n|---|---|")
    for code, count in sorted(codes.items()):
        print(f"| {code} | {count:,} |")
    print(f"server errors (5xx): {len(errors)}")
    for e in errors[:20]:
        print("  ", e)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
