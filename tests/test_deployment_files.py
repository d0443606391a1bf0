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
    assert services["scheduler"]["command"] == ["python", "-m", "dashboard.scheduler"]
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
