"""The one rule of which experiment actions are valid in which state (dashboard.services.experiment_states), and
its use by the API (409), the pages (disabled buttons that say why) and the confirmation steps."""

import pytest

from dashboard.extensions import db
from dashboard.models import Experiment, Round
from dashboard.services.experiment_states import actions, check_transition, state
from shared.enums import ExperimentStatus
from shared.errors import ExperimentError
from tests.dashboard.conftest import ADMIN

ALL = ExperimentStatus.values()
VALID = {"pending": {"start", "cancel"}, "running": {"pause", "cancel"}, "paused": {"resume", "cancel"},
         "completed": set(), "failed": set(), "cancelled": set(), "budget_exhausted": set()}


@pytest.mark.parametrize("status", ALL)
def test_only_the_transitions_of_the_status_are_enabled_and_the_others_say_why(status):
    found = actions(status, rounds_recorded=0)
    assert {n for n in ("start", "pause", "resume", "cancel") if found[n].enabled} == VALID[status]
    for name, a in found.items():
        assert a.enabled or (status in a.reason or "no round" in a.reason or "not archived" in a.reason), (name, a)
    assert found["archive"].enabled == (status not in ("pending", "running", "paused"))
    assert not actions(status, 0, archived=True)["archive"].enabled and actions(status, 0, archived=True)["unarchive"].enabled


@pytest.mark.parametrize("status", ALL)
def test_check_transition_refuses_what_actions_disables(status):
    for name in ("start", "pause", "resume", "cancel"):
        if name in VALID[status]:
            assert check_transition(name, status) in ALL
        else:
            with pytest.raises(ExperimentError, match=f"cannot {name}"):
                check_transition(name, status)
    with pytest.raises(ExperimentError, match="unknown action"):
        check_transition("delete", status)


def test_release_and_download_need_a_recorded_round_and_cancel_and_release_confirm():
    assert not actions("completed", 0)["release"].enabled and not actions("running", 0)["download"].enabled
    assert actions("running", 1)["release"].enabled and actions("cancelled", 2)["download"].enabled
    assert actions("running", 0)["cancel"].confirm and actions("completed", 1)["release"].confirm
    assert actions("paused", 0)["pause"].confirm is None


def test_the_badge_says_pausing_until_the_round_ends_and_waiting_is_its_own_state():
    assert state("paused", 3, "round 3 running on 3 plants").label == "pausing after round 3"
    assert state("paused", None, None).name == "paused"
    assert state("running", None, "waiting for plants: 1 of at least 2 online (a)").name == "waiting"
    assert state("running", 2, "round 2 running on 3 plants") == state("running", 2, None)
    assert state("running", 2, None).tone == "info"  # normal progress is not a warning
    assert state("budget_exhausted", None, "ε spent").name == "budget_exhausted"
    assert state("failed", None, "x").tone == "error"


def login(client):
    client.post("/login", data={"email": ADMIN[0], "password": ADMIN[1]})


def make(app, client, api, status="pending", rounds=(), running=None):
    eid = client.post("/api/experiments", json={"name": "states", "rounds": 5}, headers=api).get_json()["id"]
    with app.app_context():
        e = db.session.get(Experiment, eid)
        e.status = status
        for n in rounds:
            db.session.add(Round(experiment_id=eid, number=n, status="completed", participants=["p"],
                                 metrics={"val_f1": 0.5 + n / 10, "test_f1": 0.4 + n / 10}))
        if running:
            db.session.add(Round(experiment_id=eid, number=running, status="running", participants=["p"]))
        e.current_round = len(rounds)
        db.session.commit()
    return eid


@pytest.mark.parametrize("status", ["completed", "failed", "cancelled", "budget_exhausted"])
def test_the_api_refuses_every_transition_of_a_finished_experiment_with_409(app, client, api, status):
    eid = make(app, client, api, status)
    for action in ("start", "pause", "resume", "cancel"):
        resp = client.post(f"/api/experiments/{eid}/{action}", headers=api)
        assert resp.status_code == 409 and f"cannot {action} an experiment that is {status}" in resp.get_json()["error"]
    assert client.get(f"/api/experiments/{eid}", headers=api).get_json()["status"] == status


def test_the_page_disables_invalid_actions_with_their_reason(app, client, api):
    login(client)
    eid = make(app, client, api, "completed", rounds=(1,))
    page = client.get(f"/experiments/{eid}").text
    assert 'data-action="start" class="" disabled title="cannot start an experiment that is completed' in page
    assert 'aria-label="Cancel (unavailable: cannot cancel an experiment that is completed' in page
    assert 'id="release-button">' in page  # one round recorded: Release is enabled
    fresh = make(app, client, api, "pending")
    page = client.get(f"/experiments/{fresh}").text
    assert '<button data-action="start" class="">Start</button>' in page
    assert 'id="release-button" disabled title="no round recorded yet' in page
    assert 'id="download-latest" class="button-link disabled" aria-disabled="true"' in page
    listing = client.get("/experiments").text
    assert f'<tr data-experiment="{eid}">' in listing and "cannot resume an experiment that is completed" in listing


def test_a_paused_experiment_whose_round_still_runs_reads_pausing_in_the_badge_and_the_api(app, client, api):
    login(client)
    eid = make(app, client, api, "running", rounds=(1, 2), running=3)
    assert client.post(f"/api/experiments/{eid}/pause", headers=api).get_json()["state"]["label"] == \
        "pausing after round 3"
    assert "pausing after round 3</span>" in client.get(f"/experiments/{eid}").text
    assert 'class="badge state-pausing"' in client.get("/experiments").text


def test_cancel_from_the_page_asks_first_and_only_a_confirmed_form_cancels(app, client, api):
    login(client)
    eid = make(app, client, api, "running")
    first = client.post(f"/experiments/{eid}/cancel")
    assert first.status_code == 200 and "Cancel experiment #" in first.text and 'name="confirm" value="yes"' in first.text
    assert client.get(f"/api/experiments/{eid}", headers=api).get_json()["status"] == "running"
    client.post(f"/experiments/{eid}/cancel", data={"confirm": "no"})
    assert client.get(f"/api/experiments/{eid}", headers=api).get_json()["status"] == "running"
    assert client.post(f"/experiments/{eid}/cancel", data={"confirm": "yes"}).status_code == 302
    assert client.get(f"/api/experiments/{eid}", headers=api).get_json()["status"] == "cancelled"
    assert client.post(f"/experiments/{eid}/pause").status_code == 302  # no confirmation for pause: refused, flashed


def test_the_list_shows_the_best_round_by_validation_f1_and_its_test_f1(app, client, api):
    login(client)
    eid = make(app, client, api, "completed", rounds=(1, 2, 3))
    row = next(r for r in client.get("/api/experiments", headers=api).get_json() if r["id"] == eid)
    assert row["best_round"] == 3 and row["best_val_f1"] == pytest.approx(0.8) and row["best_test_f1"] == pytest.approx(0.7)
    assert '<td data-label="Best val F1" class="best-val-f1" title="round 3">0.800</td><td data-label="Test F1" class="best-test-f1">0.700</td>' in \
        client.get("/experiments").text


def test_release_from_the_page_shows_what_switches_and_releases_only_when_confirmed(app, client, api):
    from dashboard.models import Release

    login(client)
    eid = make(app, client, api, "completed", rounds=(1, 2))
    page = client.post(f"/experiments/{eid}/release", data={"round": "best"})
    assert page.status_code == 200 and "round 2 of experiment" in page.text and "validation F1 0.700" in page.text
    assert "plants that switch with their next heartbeat: p" in page.text
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(Release)) == 0
    fresh = make(app, client, api, "running")
    assert "no completed round" in client.post(f"/experiments/{fresh}/release", data={"round": "best"},
                                               follow_redirects=True).text


def test_a_finished_experiment_is_archived_hidden_kept_audited_and_brought_back(app, client, api):
    from dashboard.models import AuditEvent

    login(client)
    eid = make(app, client, api, "completed", rounds=(1,))
    running = make(app, client, api, "running")
    refused = client.post(f"/api/experiments/{running}/archive", headers=api)
    assert refused.status_code == 409 and "cancel it or let it finish" in refused.get_json()["error"]
    assert "cannot archive an experiment that is running" in client.get(f"/experiments/{running}").text
    assert client.post(f"/experiments/{eid}/archive").status_code == 302
    assert client.post(f"/api/experiments/{eid}/archive", headers=api).status_code == 409  # already archived
    assert eid not in [e["id"] for e in client.get("/api/experiments", headers=api).get_json()]
    assert [e["id"] for e in client.get("/api/experiments?archived=true", headers=api).get_json()] == [eid]
    assert f'<tr data-experiment="{eid}">' not in client.get("/experiments").text
    assert f'<tr data-experiment="{eid}">' in client.get("/experiments?archived=1").text
    detail = client.get(f"/api/experiments/{eid}", headers=api).get_json()
    assert detail["archived_at"] and len(detail["rounds"]) == 1  # kept whole
    assert 'id="archived-note"' in client.get(f"/experiments/{eid}").text
    assert client.post(f"/api/experiments/{eid}/unarchive", headers=api).get_json()["archived_at"] is None
    with app.app_context():
        assert [e.action for e in db.session.scalars(db.select(AuditEvent).where(
            AuditEvent.action.like("experiment.%archived")).order_by(AuditEvent.id))] == \
            ["experiment.archived", "experiment.unarchived"]
