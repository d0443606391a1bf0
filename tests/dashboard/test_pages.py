"""Server-rendered pages with the test client: login, empty states, escaping, partial metrics."""

from dashboard.extensions import db
from dashboard.models import Experiment, Round
from tests.dashboard.conftest import ADMIN, register


def login(client):
    return client.post("/login", data={"email": ADMIN[0], "password": ADMIN[1]})


def test_pages_need_login_and_login_works(client):
    assert client.get("/").status_code == 302
    assert "wrong e-mail or password" in client.post("/login", data={"email": ADMIN[0], "password": "x"}).text
    assert login(client).status_code == 302
    assert client.get("/").status_code == 200


def test_empty_factories_page_tells_the_user_what_to_run(client):
    login(client)
    page = client.get("/").text
    assert "No plant has registered yet" in page and "FactoryDatasite.py" in page


def test_names_are_escaped_and_missing_metrics_render_as_dashes(app, client, api):
    login(client)
    register(client, "plant_x")
    body = {"name": "<script>alert(1)</script>", "rounds": 2}
    eid = client.post("/api/experiments", json=body, headers=api).get_json()["id"]
    with app.app_context():
        db.session.add(Round(experiment_id=eid, number=1, status="completed", participants=["plant_x"],
                             metrics={"train_loss": 0.5}, dropouts={"plant_y": "no answer"}))
        db.session.get(Experiment, eid).current_round = 1
        db.session.commit()
    page = client.get(f"/experiments/{eid}").text
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;" in page
    assert "0.500" in page and "–" in page
    assert client.get("/experiments").status_code == 200
    assert "plant_x" in client.get("/").text
    assert client.get("/factories/plant_x").status_code == 200
    assert client.get("/factories/nope").status_code == 404


def test_form_validation_message_sits_next_to_the_field(client):
    login(client)
    resp = client.post("/experiments", data={"name": "x", "model_type": "cnn", "algorithm": "fedavg",
                                             "server_optimizer": "none", "rounds": "0", "privacy_mode": "none",
                                             "robust_method": "none"})
    assert resp.status_code == 400
    assert 'data-field="rounds">must be between 1 and 1000' in resp.text
    resp = client.post("/experiments", data={"name": "x", "model_type": "cnn", "algorithm": "fedavg",
                                             "server_optimizer": "none", "rounds": "2", "privacy_mode": "none",
                                             "robust_method": "median", "secure_aggregation": "y"})
    assert 'data-field="robust_method"' in resp.text and "secure aggregation hides" in resp.text


def test_hostile_text_in_every_operator_and_plant_supplied_field_is_rendered_escaped(app, client, api):
    """SQL, HTML and unicode in experiment names, token names and plant-reported dropout reasons: stored as
    text, shown escaped on every page that shows them."""
    login(client)
    register(client, "plant_x")
    hostile = "Robert'); DROP TABLE experiments;-- <img src=x onerror=alert(1)> 工場 \u202e ✓"
    eid = client.post("/api/experiments", json={"name": hostile, "rounds": 2}, headers=api).get_json()["id"]
    client.post("/tokens", data={"name": hostile})
    with app.app_context():
        db.session.add(Round(experiment_id=eid, number=1, status="completed", participants=["plant_x"],
                             metrics={}, dropouts={"plant_y": "<script>alert('reason')</script>"}))
        db.session.get(Experiment, eid).current_round = 1
        db.session.commit()
    for path in (f"/experiments/{eid}", "/experiments", "/tokens", "/audit", "/factories/plant_x"):
        page = client.get(path).text
        assert "<img src=x" not in page and "<script>alert(" not in page, path
    assert "&lt;img src=x onerror=alert(1)&gt; 工場" in client.get(f"/experiments/{eid}").text
    assert client.get("/api/experiments", headers=api).get_json()[0]["name"] == hostile  # stored exactly


def test_the_plant_page_shows_code_requests_waiting_for_the_data_owner_and_the_plants_policy_escaped(client):
    login(client)
    hostile = "<script>alert('x')</script> 工場"
    token = register(client, "plant_x", policy={"require_secure_aggregation": True, "min_plants": 3,
                                                hostile: hostile}).get_json()["heartbeat_token"]
    page = client.get("/factories/plant_x").text
    assert "Code requests waiting for the data owner" in page and "has not reported its code requests" in page
    client.post("/heartbeat", headers={"Authorization": f"Bearer {token}"}, json={
        "factory_name": "plant_x", "status": "online", "pending_code_requests": [
            {"id": "0a1b", "requester": f"{hostile}@pdm-factory.com", "function": hostile,
             "submitted_at": "2026-01-01T00:00:00+00:00", "reason": f"declared function name {hostile}"}]})
    page = client.get("/factories/plant_x").text
    assert "<script>alert(" not in page
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; 工場@pdm-factory.com" in page
    assert "declared function name &lt;script&gt;" in page and "2026-01-01T00:00:00+00:00" in page
    assert "This plant's policy" in page and "<script>alert(" not in page
    # a readable label and value for a known setting; an unknown one (the hostile name too) under its own name
    assert 'title="require_secure_aggregation">Requires secure aggregation</dt><dd data-setting=' \
           '"require_secure_aggregation">yes</dd>' in page
    assert '>min_plants</dt><dd data-setting="min_plants">3</dd>' in page
    assert page.index('id="floor"') < page.index('id="policy"') < page.index("<h2>Identity</h2>")
    client.post("/heartbeat", headers={"Authorization": f"Bearer {token}"},
                json={"factory_name": "plant_x", "status": "online", "pending_code_requests": []})
    assert "nothing is waiting for this plant" in client.get("/factories/plant_x").text


def test_the_new_experiment_form_asks_the_basics_first_then_a_section_per_choice(client):
    """Issue 27, item 2: name, model, plants (the registered ones, with status and data shape) and rounds first;
    then Training, Algorithm, Privacy, Robustness and Personalization, each field marked with the choices that use it
    (the page's script hides the others; without it they all show)."""
    login(client)
    register(client, "plant_x")
    page = client.get("/experiments").text
    order = [page.index(f'id="section-{key}"') for key in
             ("basic", "training", "algorithm", "privacy", "robustness", "personalization")]
    assert order == sorted(order)
    basics = page[order[0]:order[1]]
    assert all(f'data-setting="{name}"' in basics for name in ("name", "model_type", "factories", "rounds"))
    assert '<select aria-describedby="factories-help" data-setting="factories" id="factories" multiple' in basics
    assert '<option value="plant_x">plant_x — online, 100 rows, 2 features, group/time column</option>' in basics
    privacy = page[order[3]:order[4]]
    assert ('data-setting="privacy.epsilon" data-shown-when="{&#34;privacy.mode&#34;: [&#34;dp_sgd&#34;, '
            '&#34;central&#34;]}"') in privacy
    assert 'title="Default FedDyn (the best on validation F1' in page  # the longer help on hover
    assert '<script src="/static/experiment_form.js" defer></script>' in page and 'id="preflight-check"' in page
    assert client.get("/static/experiment_form.js").status_code == 200


FORM = {"name": "x", "model_type": "mlp", "algorithm": "fedavg", "server_optimizer": "none", "rounds": "3",
        "privacy_mode": "none", "robust_method": "none", "personalization": "none", "class_weight": "pooled"}


def test_every_form_error_shows_at_once_each_under_its_field_with_an_unknown_plant(client):
    login(client)
    register(client, "plant_x")
    resp = client.post("/experiments", data={**FORM, "rounds": "0", "learning_rate": "-1", "min_factories": "1",
                                             "factories": ["plant_y"]})
    assert resp.status_code == 400
    assert 'data-field="rounds">must be between 1 and 1000' in resp.text
    assert 'data-field="learning_rate">' in resp.text
    assert 'data-field="factories">&#39;plant_y&#39; is not a registered plant; did you mean &#39;plant_x&#39;?' \
        in resp.text


def test_the_check_button_lists_each_plants_refusal_and_stores_nothing_and_create_takes_the_chosen_plants(app, client):
    login(client)
    register(client, "plant_x")
    register(client, "plant_dp", policy={"require_dp": True})
    chosen = {**FORM, "factories": ["plant_x", "plant_dp"], "min_factories": "2"}
    resp = client.post("/experiments", data={**chosen, "intent": "check"})
    assert resp.status_code == 200 and 'class="preflight preflight-refused"' in resp.text
    assert "<td>plant_dp</td><td><code>privacy.mode</code></td><td>its policy requires record-level DP" in resp.text
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count(Experiment.id))) == 0
    ok = client.post("/experiments", data={**FORM, "factories": ["plant_x"], "min_factories": "1", "intent": "check"})
    assert "Check passed" in ok.text
    made = client.post("/experiments", data={**chosen, "intent": "create"})
    assert made.status_code == 302  # the check advises; the plant refuses what its policy refuses
    with app.app_context():
        assert db.session.scalars(db.select(Experiment)).one().config["factories"] == ["plant_x", "plant_dp"]
