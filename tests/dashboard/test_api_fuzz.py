"""Property-based requests generated from /api/openapi.json by Schemathesis against the dashboard (the WSGI app
in-process, with a real database): no request may cause a 5xx. bench/fuzz.py runs the same generator against a
live server with 10,000 requests."""

import schemathesis
from hypothesis import HealthCheck, given, settings

from tests.dashboard.conftest import TOKEN, register

EXAMPLES_PER_OPERATION = 60


def test_generated_requests_never_cause_a_server_error(app, client):
    register(client, "plant_a")
    client.post("/api/experiments", json={"name": "seeded"}, headers={"Authorization": f"Bearer {TOKEN}"})
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app)
    seen, server_errors = [], []
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, suppress_health_check=list(HealthCheck),
                  database=None)
        def call(case):
            for headers in ({"Authorization": f"Bearer {TOKEN}"}, {}):
                response = case.call(headers=headers)
                seen.append(response.status_code)
                if response.status_code >= 500:
                    server_errors.append((case.method, case.formatted_path, case.body, response.text[:300]))

        call()
    print(f"{len(seen)} generated requests, answers {sorted(set(seen))}")
    assert len(seen) >= 2 * 8, seen  # every operation was exercised
    assert not server_errors, server_errors[:5]
