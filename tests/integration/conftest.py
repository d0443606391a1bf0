from contextlib import contextmanager

import pytest

from factoryfl_testing.harness import Agent, Dashboard

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("federation")


@pytest.fixture(scope="module")
def dashboard(workdir):
    d = Dashboard(workdir / "dashboard").start()
    yield d
    if d.proc:
        from factoryfl_testing.harness import stop

        stop(d.proc)


def start_agents(workdir, dashboard, specs):
    agents = [Agent(name, workdir, dashboard.url, args).start() for name, args in specs]
    try:
        for a in agents:
            a.wait_ready()
    except Exception:
        for a in agents:
            a.stop()
        raise
    return agents


@contextmanager
def plants_online(workdir, dashboard, specs):
    """Start agents, wait until the dashboard lists them online, stop them (by PID) afterwards."""
    agents = start_agents(workdir, dashboard, specs)
    try:
        for agent in agents:
            dashboard.wait_status(agent.name, ("online",))
        yield agents
    finally:
        for agent in agents:
            agent.stop()
