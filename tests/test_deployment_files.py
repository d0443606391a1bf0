"""No Docker engine here: check what can be checked of the container files without one."""

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def compose():
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_has_the_documented_topology_with_health_conditions():
    services = compose()["services"]
    assert {"postgres", "dashboard", "scheduler", "factory_a", "factory_b", "factory_c"} <= set(services)
    assert "healthcheck" in services["postgres"]
    assert services["dashboard"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["dashboard"]["environment"]["DASHBOARD_SCHEDULER"] == "off"
    assert services["scheduler"]["command"] == ["python", "-m", "dashboard.lifecycle.scheduler"]
    profiles = {services[f]["environment"].get("FACTORY_SIMULATE") or services[f]["environment"].get("FACTORY_DATA")
                for f in ("factory_a", "factory_b", "factory_c")}
    assert len(profiles) == 3  # three different data profiles


def test_compose_names_only_files_and_images_that_exist():
    services = compose()["services"]
    built = {s["image"] for s in services.values() if "build" in s}
    for name, service in services.items():
        if "build" in service:
            assert (ROOT / service["build"]["dockerfile"]).is_file(), name
        else:
            assert service["image"] in built or service["image"].startswith("postgres:"), name
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name}: {source}"


def test_factory_services_use_only_factory_variables_the_agent_reads():
    from factory_agent.config import build_parser

    helps = " ".join(a.help or "" for a in build_parser()._actions)
    for name, service in compose()["services"].items():
        if name.startswith("factory_"):
            for var in service["environment"]:
                assert f"[{var}]" in helps, f"{name}: {var} is not read by the agent"


def test_dockerfiles_copy_existing_paths_pin_torch_and_run_as_non_root():
    for dockerfile in ("Dockerfile.dashboard", "Dockerfile.factory"):
        text = (ROOT / dockerfile).read_text()
        assert "torch==2.13.0" in text and "\nUSER " in text and "HEALTHCHECK" in text
        for line in text.splitlines():
            if line.startswith("COPY ") and "--from=" not in line:
                for source in line.split()[1:-1]:
                    assert (ROOT / source).exists(), f"{dockerfile}: {source}"


SECRETS = ("SECRET_KEY", "CREDENTIALS_KEY", "FACTORY_ENROLLMENT_TOKEN", "DASHBOARD_ADMIN_PASSWORD",
           "DASHBOARD_API_TOKEN", "POSTGRES_PASSWORD")


def test_compose_ships_no_secret_and_stops_without_the_env_file():
    import re

    text = (ROOT / "docker-compose.yml").read_text()
    assert "change-me" not in text.lower() and "ZmFjdG9yeWZs" not in text
    services = compose()["services"]
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD:?")
    for name in ("dashboard", "scheduler"):
        env = services[name]["environment"]
        assert env["DASHBOARD_ENV"] == "production", name  # refuses weak secrets, never makes its own
        assert env["DASHBOARD_ALLOW_PRIVATE_PLANTS"] == "true", name  # the plants live on compose's network
        for var in SECRETS[:-1]:
            assert env[var].startswith(f"${{{var}:?"), (name, var)  # required: no default to fall back on
        assert "${POSTGRES_PASSWORD:?" in env["DATABASE_URL"]
    used = set(re.findall(r"\$\{([A-Z_]+):\?", text))
    assert used == set(SECRETS)


def test_make_secrets_writes_a_private_env_file_with_every_secret_compose_needs(tmp_path):
    import os
    import stat
    import subprocess
    import sys

    from dashboard.config import insecure_settings

    makefile = (ROOT / "Makefile").read_text()
    assert "\nsecrets:\n\tpython3 dashboard/cli/secrets_file.py .env\n" in makefile
    assert ".env" in (ROOT / ".gitignore").read_text().splitlines()
    path = tmp_path / ".env"
    run = [sys.executable, str(ROOT / "dashboard" / "cli" / "secrets_file.py"), str(path)]
    subprocess.run(run, check=True, capture_output=True, timeout=60)  # the script needs no installed package
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    from dashboard.cli.secrets_file import read_env

    values = read_env(path)
    assert set(SECRETS) <= set(values)
    assert insecure_settings(values) == []  # what `make secrets` makes, production accepts
    from cryptography.fernet import Fernet

    Fernet(values["CREDENTIALS_KEY"].encode())
    os.chmod(path, 0o644)
    path.write_text(path.read_text().replace(f"POSTGRES_PASSWORD={values['POSTGRES_PASSWORD']}\n", ""))
    out = subprocess.run(run, check=True, capture_output=True, text=True, timeout=60).stdout
    again = read_env(path)
    assert "POSTGRES_PASSWORD" in out and again["SECRET_KEY"] == values["SECRET_KEY"]  # kept; only the missing added
    assert again["POSTGRES_PASSWORD"] != values["POSTGRES_PASSWORD"]
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_the_dashboard_image_health_check_needs_no_credentials():
    text = (ROOT / "Dockerfile.dashboard").read_text()
    health = next(line for line in text.splitlines() if "urlopen(" in line)
    assert "/login'" in health  # GET /factories is for operators only (401 anonymously)
    assert "DASHBOARD_ENV=production" in text
