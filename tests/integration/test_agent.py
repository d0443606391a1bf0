"""The factory agent on a real PySyft datasite against a real dashboard (issue: agent + registry)."""

import json
import os
import signal
import socket
import time

import numpy as np
import pandas as pd
import pytest

from tests.integration.conftest import start_agents
from factoryfl_testing.harness import Agent, maps_torch

pytestmark = pytest.mark.integration


def machines_csv(path, n_machines=8, rows=60, seed=0):
    rng = np.random.default_rng(seed)
    parts = []
    for m in range(n_machines):
        temp = rng.normal(300, 2, rows)
        parts.append(pd.DataFrame({"machine_id": f"M{m:02d}", "cycle": np.arange(rows), "temp": temp,
                                   "vibration": rng.gamma(2, 1, rows), "line": rng.choice(["north", "south"], rows),
                                   "failure": ((temp > 302) | (rng.random(rows) < 0.02)).astype(int)}))
    pd.concat(parts).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def plant(workdir, dashboard):
    csv = machines_csv(workdir / "plant.csv")
    started = time.monotonic()
    (agent,) = start_agents(workdir, dashboard, [("plant_csv", ["--data", str(csv), "--label-column", "failure",
                                                                  "--group-column", "machine_id",
                                                                  "--time-column", "cycle",
                                                                  "--watch-dir", str(workdir / "watch")])])
    dashboard.wait_status("plant_csv", ("online",))
    agent.start_to_registered_s = time.monotonic() - started
    yield agent
    agent.stop()


def credentials(agent):
    return json.loads((agent.state_dir / "credentials.json").read_text())


def login(agent, email, password):
    return agent.login(email, password)  # HTTPS, verified against the federation CA


def test_agent_registers_and_is_listed_online_with_device_load_and_heartbeat(plant, dashboard):
    print(f"start-to-registered: {plant.start_to_registered_s:.1f} s")
    f = dashboard.factories()["plant_csv"]
    assert f["device"] in ("cpu", "cuda")
    assert f["factory_port"] == plant.port
    assert f["capabilities"]["data_type"] == "time_series"
    assert f["capabilities"]["num_samples"] == 480
    first = f["last_heartbeat"]
    dashboard.wait_for(lambda: dashboard.factories()["plant_csv"]["last_heartbeat"] != first, 10, "a new heartbeat")
    load = dashboard.factories()["plant_csv"]["current_load"]
    assert 0 <= load["cpu_usage"] <= 100 and 0 < load["memory_usage"] < 100 and 0 < load["disk_usage"] <= 100
    log = plant.log()
    for step in ("load data", "detect device", "launch datasite", "secure accounts", "upload data",
                 "register with dashboard"):
        assert f"step: {step}" in log


def test_a_plant_started_with_a_federation_key_is_listed_and_shown_as_verifying_membership(plant, dashboard):
    """The harness pins its administrator's key (--federation-key, no --trust-dashboard): the registry says this
    plant verifies membership, with that key's fingerprint (the badge: tests/dashboard/test_trust_mode.py); a
    single-plant experiment over it is refused up front with a 400 that names it."""
    key = plant.federation().federation()
    f = dashboard.factories()["plant_csv"]
    assert f["trust_dashboard"] is False and f["federation_key"] == key
    assert f["trust"]["mode"] == "verifies" and f["trust"]["verify_models"] is True  # the default policy
    assert f["trust"]["label"] == f"verifies models and membership (key {key[:8]}…)"
    refused = dashboard.api("POST", "/experiments", json={"name": "plain", "factories": ["plant_csv"],
                                                          "min_factories": 1})
    assert refused.status_code == 400 and "plant_csv (verifies models and membership" in refused.json()["error"]


def test_a_plant_at_rest_has_not_loaded_torch_in_any_of_its_processes(plant, dashboard):
    """No experiment and no released model (issue 26 item 5): torch (~180 MB) stays out of the plant's processes
    through its start, its heartbeats and approval passes and its plant floor, a CSV waiting in its watch folder
    included, until it first trains or scores. Read from outside, in /proc/<pid>/maps."""
    machines_csv(plant.workdir / "watch" / "readings.csv", n_machines=2, rows=10)
    deadline = time.monotonic() + 30
    while "readings.csv waits in" not in plant.log():
        assert time.monotonic() < deadline, plant.log()[-2000:]
        time.sleep(0.3)
    first = dashboard.factories()["plant_csv"]["last_heartbeat"]
    dashboard.wait_for(lambda: dashboard.factories()["plant_csv"]["last_heartbeat"] != first, 10, "a new heartbeat")
    assert not maps_torch(plant.proc.pid)


def test_state_folder_files_are_private(plant):
    assert oct(os.stat(plant.state_dir / "credentials.json").st_mode & 0o777) == "0o600"
    assert oct(os.stat(plant.state_dir / "secagg_x25519.pem").st_mode & 0o777) == "0o600"
    assert oct(os.stat(plant.state_dir / "identity_ed25519.pem").st_mode & 0o777) == "0o600"


def identity_fingerprint(agent):
    from factory_agent.plant.state import PlantState
    from shared.identity import fingerprint

    return fingerprint(PlantState(agent.state_dir).identity_public_key())


def test_an_impostor_with_the_shared_token_and_another_key_changes_nothing(plant, dashboard):
    """The identity issue's attack on a real dashboard: the plant's name, the shared enrolment token, another
    identity key (correctly signed) and another address. 409, held for an operator; the plant keeps its
    address, its key and its heartbeats."""
    import requests
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from shared.identity import public_key_hex
    from tests.dashboard.conftest import registration, signed_headers
    from factoryfl_testing.harness import ENROLL, free_port

    before = dashboard.factories()["plant_csv"]
    assert before["identity_key_fingerprint"] == identity_fingerprint(plant)
    key = Ed25519PrivateKey.generate()
    body = registration("plant_csv", factory_hostname="127.0.0.1", factory_port=free_port(),
                        identity_public_key=public_key_hex(key))
    resp = requests.post(f"{dashboard.url}/register_factory", json=body, timeout=10,
                         headers=signed_headers(body, key, ENROLL))
    assert resp.status_code == 409 and resp.json()["detail"]["reason"] == "rekey_pending", resp.text
    assert "heartbeat_token" not in resp.json() and "approve-rekey plant_csv" in resp.json()["error"]
    dashboard.wait_for(lambda: dashboard.factories()["plant_csv"]["last_heartbeat"] != before["last_heartbeat"], 10,
                       "the plant's next heartbeat (its token still valid)")
    after = dashboard.factories()["plant_csv"]
    assert (after["factory_hostname"], after["factory_port"], after["identity_key_fingerprint"], after["status"]) == \
        (before["factory_hostname"], before["factory_port"], before["identity_key_fingerprint"], "online")


def test_default_root_password_no_longer_works_and_the_stored_one_does(plant):
    from syft.types.errors import SyftException

    with pytest.raises(SyftException):
        login(plant, "info@openmined.org", "changethis")
    assert login(plant, "info@openmined.org", credentials(plant)["root_password"]) is not None


def test_orchestrator_sees_the_dataset_without_a_mock_and_cannot_read_the_private_data(plant):
    from syft.types.errors import SyftException

    creds = credentials(plant)
    ds = login(plant, creds["orchestrator_email"], creds["orchestrator_password"])
    dataset = [d for d in ds.datasets.get_all() if d.name == "plant_sensors"][0]
    features = dataset.assets["features"]
    # no mock: PySyft would run approved code a second time on it (factory_agent.datasite.upload)
    mock = features.mock.syft_action_data_cache
    assert features.mock_is_real is False and (mock is None or type(mock).__name__ == "ActionDataEmpty")
    assert features.data is None
    with pytest.raises(SyftException):
        features.pointer.get()
    admin = login(plant, creds["admin_email"], creds["admin_password"])
    private = [d for d in admin.datasets.get_all() if d.name == "plant_sensors"][0].assets["features"].data
    assert private.shape == (480, 4)


def test_factory_status_endpoint_answers_the_orchestrator(plant):
    creds = credentials(plant)
    ds = login(plant, creds["orchestrator_email"], creds["orchestrator_password"])
    status = ds.api.services.api.call("factory.status")
    status = status.get() if hasattr(status, "get") else status
    assert status["factory_name"] == "plant_csv" and status["status"] in ("online", "busy")
    assert "cpu_usage" in status["current_load"]


def test_factories_check_reports_reachable_auth_failed_and_unreachable(plant, workdir, dashboard):
    import subprocess
    import sys

    from factoryfl_testing.harness import ROOT, free_port

    creds = credentials(plant)
    (workdir / "plants.yaml").write_text(f"""
factories:
  - {{name: {plant.name}, host: localhost, port: {plant.port}, orchestrator_email: {creds['orchestrator_email']},
     orchestrator_password_env: GOOD_PASSWORD}}
  - {{name: wrong_password, host: localhost, port: {plant.port}, orchestrator_email: {creds['orchestrator_email']},
     orchestrator_password_env: WRONG_PASSWORD}}
  - {{name: nobody_home, host: 127.0.0.1, port: {free_port()}, orchestrator_email: o@factoryfl.org,
     orchestrator_password_env: WRONG_PASSWORD}}
""")
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{workdir}/check.sqlite", "DASHBOARD_INSTANCE_PATH": str(workdir),
           "GOOD_PASSWORD": creds["orchestrator_password"], "WRONG_PASSWORD": "not-it",
           "DASHBOARD_ALLOW_PRIVATE_PLANTS": "true",  # plants on loopback
           "DASHBOARD_CA_DIR": str(dashboard.ca_dir)}  # the CA that signed the plant's certificate
    flask = [sys.executable, "-m", "flask", "--app", "dashboard"]
    for args in (["db", "upgrade"], ["factories", "import", str(workdir / "plants.yaml")]):
        subprocess.run(flask + args, cwd=ROOT, env=env, check=True, capture_output=True, timeout=120)
    result = subprocess.run(flask + ["factories", "check"], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=180)
    assert result.returncode == 1  # not every plant is reachable
    lines = dict(line.split(": ", 1) for line in result.stdout.strip().splitlines())
    assert lines[plant.name].startswith("reachable")
    # the same datasite listed under another name: its certificate names its own plant, so nothing is sent
    assert lines["wrong_password"].startswith("TLS refused") and "be issued to plant wrong_password" in \
        lines["wrong_password"]
    assert lines["nobody_home"].startswith("unreachable")


def test_code_that_is_not_vetted_stays_pending_and_is_logged(plant):
    import syft as sy
    from syft.service.policy.policy import MixedInputPolicy

    creds = credentials(plant)
    ds = login(plant, creds["orchestrator_email"], creds["orchestrator_password"])
    dataset = [d for d in ds.datasets.get_all() if d.name == "plant_sensors"][0]

    def leak_rows(features, request):
        return features

    fn = sy.syft_function(input_policy=MixedInputPolicy(client=ds, features=dataset.assets["features"],
                                                        request=dict),
                          output_policy=sy.SingleExecutionExactOutput())(leak_rows)
    ds.code.request_code_execution(fn)
    time.sleep(3)  # several approval intervals
    root = login(plant, "info@openmined.org", creds["root_password"])
    request = [r for r in root.requests if r.code.service_func_name == "leak_rows"][0]
    assert str(request.status).endswith("PENDING")
    assert "NOT approved automatically: declared function name 'leak_rows' is not 'fl_step'" in plant.log()


def test_killed_agent_turns_offline_and_comes_back_with_its_accounts_and_data(plant, dashboard):
    creds_before, key_before = credentials(plant), identity_fingerprint(plant)
    plant.stop(signal.SIGKILL)
    t0 = time.monotonic()
    dashboard.wait_status("plant_csv", ("offline",), timeout=20)
    print(f"offline {time.monotonic() - t0:.1f} s after SIGKILL (interval 1 s)")
    plant.reset = False
    plant.start()
    plant.wait_ready()
    dashboard.wait_status("plant_csv", ("online",), timeout=30)
    assert credentials(plant) == creds_before
    # same state folder, same identity key: it proves the key it is bound to, no operator involved
    assert identity_fingerprint(plant) == key_before == dashboard.factories()["plant_csv"]["identity_key_fingerprint"]
    assert "re-keying" not in plant.log()[plant.log_offset:]
    assert "already on the datasite: kept" in plant.log()
    ds = login(plant, creds_before["orchestrator_email"], creds_before["orchestrator_password"])
    assert [d.name for d in ds.datasets.get_all()] == ["plant_sensors"]


def test_ctrl_c_sends_a_last_heartbeat_lands_the_server_and_turns_offline(plant, dashboard):
    assert plant.stop(signal.SIGINT) == 0
    log = plant.log()
    assert "sent the last heartbeat (stopping)" in log and "stopped cleanly" in log
    assert dashboard.factories()["plant_csv"]["status"] == "offline"
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", plant.port)) != 0  # the datasite is gone


def run_agent_expecting_failure(workdir, dashboard, name, args, port=None):
    agent = Agent(name, workdir, dashboard.url, args)
    if port:
        agent.port = port
    agent.start()
    code = agent.proc.wait(timeout=120)
    return code, agent.console()


def test_wrong_enrollment_token_exits_non_zero_with_what_to_do(workdir, dashboard):
    code, out = run_agent_expecting_failure(workdir, dashboard, "plant_badtoken",
                                            ["--enrollment-token", "wrong", "--rows", "200"])
    assert code != 0
    assert "refused the enrollment token" in out and "--enrollment-token" in out
    assert "plant_badtoken" not in dashboard.factories()


def test_port_in_use_exits_non_zero_with_one_clear_line(workdir, dashboard):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        code, out = run_agent_expecting_failure(workdir, dashboard, "plant_busyport", [], port=busy.getsockname()[1])
    assert code != 0
    assert "already in use" in out and "--port" in out


BAD_CSVS = {
    "empty": ("", "is empty"),
    "one class": ("temp,failure\n1,0\n2,0\n", "one class only"),
    "missing label": ("temp,failure\n1,0\n2,\n3,1\n", "is empty at row 1"),
    "text in a numeric column": ("speed,failure\n" + "".join(f"{i},{i % 2}\n" for i in range(40)) + "fast,1\n",
                                 "'fast' is not a number"),
    "duplicate headers": ("temp,temp,failure\n1,2,0\n3,4,1\n", "duplicate column name"),
}


@pytest.mark.parametrize("case", sorted(BAD_CSVS))
def test_a_bad_csv_is_one_clear_error_before_anything_is_launched_or_uploaded(workdir, dashboard, case):
    content, message = BAD_CSVS[case]
    bad = workdir / f"bad-{case.replace(' ', '_')}.csv"
    bad.write_text(content)
    name = "plant_bad_" + case.replace(" ", "_")
    code, out = run_agent_expecting_failure(workdir, dashboard, name, ["--data", str(bad), "--label-column",
                                                                       "failure"])
    assert code != 0
    assert "step 'load data' failed" in out and message in out, out[-2000:]
    assert "launch datasite" not in out and "upload data" not in out
    assert name not in dashboard.factories()


def test_wrong_dashboard_url_exits_non_zero(workdir, dashboard):
    agent = Agent("plant_wrongurl", workdir, dashboard.url + "/not-here", ["--rows", "200"])
    agent.start()
    assert agent.proc.wait(timeout=120) != 0
    assert "is --dashboard_url" in agent.console()


def test_an_agent_started_before_its_dashboard_serves_and_registers_once_the_dashboard_is_up(workdir):
    from factoryfl_testing.harness import Dashboard

    later = Dashboard(workdir / "late-dashboard")
    agent = Agent("plant_early", workdir, later.url, ["--rows", "300"]).start()
    try:
        agent.wait_ready()
        assert "unreachable" in agent.log() and "serving anyway" in agent.log()
        later.start()
        later.wait_status("plant_early", ("online",), timeout=60)
        # the dashboard can see the plant online a moment before the agent has written its log line about it
        deadline = time.monotonic() + 15
        while not ("dashboard reachable again" in agent.log() or "registered with" in agent.log()):
            assert time.monotonic() < deadline, agent.log()[-2000:]
            time.sleep(0.2)
    finally:
        agent.stop()
        if later.proc:
            later.proc.terminate()
            later.proc.wait(timeout=30)
