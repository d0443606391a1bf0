"""An operator changes their own password from the page: the current one is checked, the new one follows the
password rule, the change is audited without either password."""

from dashboard.extensions import db
from dashboard.models import AuditEvent
from tests.dashboard.conftest import ADMIN

NEW = "a much longer new password"


def login(client, password=ADMIN[1]):
    return client.post("/login", data={"email": ADMIN[0], "password": password})


def test_a_wrong_current_password_short_or_mismatched_new_ones_change_nothing(app, client):
    login(client)
    assert client.get("/password").status_code == 200
    cases = [({"current": "wrong", "new": NEW, "repeat": NEW}, "current", "wrong current password"),
             ({"current": ADMIN[1], "new": "short", "repeat": "short"}, "new", "at least 12 characters (at most 1024)"),
             ({"current": ADMIN[1], "new": NEW, "repeat": NEW + "x"}, "repeat", "the two differ"),
             ({"current": ADMIN[1], "new": ADMIN[1], "repeat": ADMIN[1]}, "new", "is the current one")]
    for data, field, message in cases:
        resp = client.post("/password", data=data)
        assert resp.status_code == 400 and f'data-field="{field}">' in resp.text and message in resp.text, field
    client.post("/logout")
    assert login(client).headers["Location"].endswith("/")  # the old password still works


def test_the_change_is_audited_and_only_the_new_password_logs_in(app, client):
    login(client)
    assert client.post("/password", data={"current": ADMIN[1], "new": NEW, "repeat": NEW}).status_code == 302
    client.post("/logout")
    assert "wrong e-mail or password" in login(client).text
    assert login(client, NEW).status_code == 302
    with app.app_context():
        events = db.session.scalars(db.select(AuditEvent).filter_by(action="operator.password_changed")).all()
        assert [e.actor for e in events] == [ADMIN[0]]
        assert all(ADMIN[1] not in str(e.detail) and NEW not in str(e.detail) for e in
                   db.session.scalars(db.select(AuditEvent)).all())


def test_the_page_needs_a_login(client):
    assert "/login" in client.get("/password").headers["Location"]
    assert "/login" in client.post("/password", data={"current": "x", "new": NEW, "repeat": NEW}).headers["Location"]
