"""The operators' pages in a real browser (Debian's Chromium driven by Playwright) against a real
dashboard and three real plants. Screenshots go to artifacts/screenshots/ (git-ignored)."""

import re
import time
from pathlib import Path

import pytest
import requests

from shared.bundle import ModelBundle
from tests.integration.conftest import plants_online
from factoryfl_testing.harness import ADMIN, ROOT

pytestmark = pytest.mark.integration
SHOTS = ROOT / "artifacts" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
# the form's defaults run plain rounds: plants that trust the dashboard (--trust-dashboard; it refuses plain
# experiments over plants that verify membership: dashboard.services.trust)
PLANTS = [("ui_plant_a", ["--simulate", "default", "--rows", "1500", "--seed", "4",  # the plant floor (DESIGN §10)
                          "--watch-dir", "watch/ui_plant_a", "--stream-interval", "1", "--trust-dashboard"]),
          ("ui_plant_b", ["--simulate", "heavy_duty", "--rows", "1500", "--seed", "5", "--trust-dashboard"]),
          ("ui_plant_c", ["--simulate", "precision", "--rows", "1500", "--seed", "6", "--trust-dashboard"])]


@pytest.fixture(scope="module")
def plants(workdir, dashboard):
    with plants_online(workdir, dashboard, PLANTS) as agents:
        yield agents


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), "Debian's chromium is missing: run `make system-deps`"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu",
                                                              "--disable-background-networking"])
        yield b
        b.close()


@pytest.fixture()
def page(browser, dashboard):
    context = browser.new_context(viewport={"width": 1366, "height": 900}, accept_downloads=True,
                                  base_url=dashboard.url)
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.goto("/login")
    page.fill("input[name=email]", ADMIN[0])
    page.fill("input[name=password]", ADMIN[1])
    page.click("button[type=submit]")
    page.wait_for_url("**/")
    yield page
    context.close()


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def canvas_has_pixels(page, canvas_id: str) -> bool:
    return page.evaluate("""(id) => {
        const c = document.getElementById(id);
        if (!c || !c.width || !c.height) return false;
        const data = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        for (let i = 3; i < data.length; i += 4) if (data[i] !== 0) return true;
        return false; }""", canvas_id)


def test_login_is_required_and_wrong_password_is_refused(browser, dashboard):
    context = browser.new_context(base_url=dashboard.url)
    page = context.new_page()
    page.goto("/experiments")
    assert "/login" in page.url
    page.fill("input[name=email]", ADMIN[0])
    page.fill("input[name=password]", "wrong")
    page.click("button[type=submit]")
    assert page.locator(".errors").inner_text() == "wrong e-mail or password"
    shot(page, "login")
    context.close()


def test_an_operator_runs_a_whole_experiment_from_the_browser(page, plants, dashboard, workdir):
    blocked = []  # the Content-Security-Policy allows no inline script: anything it blocks is a bug
    page.on("console", lambda m: blocked.append(m.text) if "Content Security Policy" in m.text else None)
    # factories: three plants online, with device, load and heartbeat age
    # predicates as functions: a string expression is eval'd while polling, which the page's CSP forbids
    page.wait_for_function("() => document.querySelectorAll('#factories .badge.online').length === 3",
                           timeout=30_000)
    row = page.locator("tr[data-factory=ui_plant_a]")
    assert "cpu" in row.inner_text() and " ago" in row.inner_text()
    shot(page, "factories")
    page.click("text=ui_plant_a")
    page.wait_for_selector("h1:has-text('ui_plant_a')")
    shot(page, "factory")

    # a bad value gets a message next to its field; a good form creates and starts the experiment
    page.goto("/experiments")
    page.fill("input[name=name]", "browser experiment")
    page.fill("input[name=rounds]", "0")
    page.click("#create-experiment")
    error = page.locator(".errors[data-field=rounds]")
    assert "between 1 and 1000" in error.inner_text()
    shot(page, "experiment-form-error")
    page.fill("input[name=rounds]", "3")
    page.click("#section-training summary")  # past the basics: a section opens on click
    page.fill("input[name=local_epochs]", "1")
    page.click("#create-experiment")
    page.wait_for_url("**/experiments/*")
    assert page.locator("#status").inner_text() in ("running", "pending")

    # pause and resume through the JSON API from the page's script (session cookie + X-CSRFToken), no reload
    # only the actions the state allows are enabled; a paused experiment whose round still runs reads "pausing"
    url = page.url
    page.wait_for_function("() => !document.querySelector('button[data-action=pause]').disabled")
    assert page.locator("button[data-action=start]").is_disabled()
    assert "cannot start" in page.locator("button[data-action=start]").get_attribute("title")
    page.click("button[data-action=pause]")
    page.wait_for_function("() => document.getElementById('status').textContent.startsWith('paus')")
    assert page.locator("button[data-action=pause]").is_disabled()
    assert page.locator("button[data-action=resume]").is_enabled()
    page.click("button[data-action=resume]")
    page.wait_for_function("() => ['running', 'waiting'].includes(document.getElementById('status').textContent)")
    assert page.url == url

    # progress updates without a reload, the charts are drawn
    page.wait_for_function("() => document.getElementById('progress-text').textContent.includes('Round 1 of 3')",
                           timeout=240_000)
    page.wait_for_function("() => document.getElementById('status').textContent === 'completed'", timeout=300_000)
    assert page.locator("#rounds tbody tr").count() == 3
    assert page.locator("#archive-button").is_enabled()  # the page's script enables what the new state allows
    assert page.locator("button[data-action=cancel]").is_disabled()
    for chart in ("chart-loss", "chart-f1", "chart-auc", "chart-accuracy", "chart-participants", "chart-duration"):
        assert canvas_has_pixels(page, chart), chart
    shot(page, "experiment")

    # the model downloads and is a bundle shared.predict can read
    with page.expect_download() as download:
        page.click("#download-latest")
    path = workdir / "browser-model.safetensors"
    download.value.save_as(path)
    bundle = ModelBundle.load(path)
    best = dashboard.api("GET", f"/experiments/{url.rstrip('/').rsplit('/', 1)[-1]}").json()["best_round"]
    assert bundle.source["round"] == best and 1 <= best <= 3  # the default download is the best round

    page.goto("/audit")
    assert "experiment.created" in page.content() and "factory.registered" in page.content()
    shot(page, "audit")
    page.set_viewport_size({"width": 820, "height": 1100})  # tablet
    page.goto("/")
    shot(page, "factories-tablet")
    page.goto("/experiments")
    shot(page, "experiments-tablet")
    assert blocked == []


def test_the_form_shows_only_the_fields_a_choice_uses_and_check_answers_in_place(page, dashboard):
    """Issue 27, item 2: privacy's fields open with a DP mode, FedProx's mu with FedProx; Check lists the field errors
    and what the plants will refuse without leaving the page, and stores nothing."""
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto("/experiments")
    assert page.locator("#new-experiment div[data-setting='privacy.epsilon']").is_hidden()
    page.click("#section-privacy summary")
    page.select_option("select[name=privacy_mode]", "dp_sgd")
    assert page.locator("input[name=privacy_epsilon]").is_visible()
    assert page.locator("select[name=privacy_mechanism]").is_hidden()  # central DP's only
    page.click("#section-algorithm summary")
    assert page.locator("input[name=mu]").is_hidden()
    page.select_option("select[name=algorithm]", "fedprox")
    assert page.locator("input[name=mu]").is_visible()
    before = len(dashboard.api("GET", "/experiments").json())
    page.fill("input[name=name]", "checked only")
    page.fill("input[name=rounds]", "0")
    page.click("#preflight-check")
    page.wait_for_selector("#preflight .preflight-refused")
    assert "must be between 1 and 1000" in page.locator("#preflight").inner_text()
    assert "between 1 and 1000" in page.locator(".errors[data-field=rounds]").inner_text()
    assert page.locator("#section-algorithm").get_attribute("open") is not None  # what was open stays open
    assert page.locator("input[name=mu]").is_visible() and page.url.endswith("/experiments")
    assert len(dashboard.api("GET", "/experiments").json()) == before
    shot(page, "experiment-form-check")
    assert errors == [], errors


def test_tokens_are_created_once_used_as_bearer_and_revoked(page, dashboard):
    page.goto("/tokens")
    page.fill("input[name=name]", "ci script")
    page.click("button:has-text('Create token')")
    token = page.locator("#new-token").inner_text()
    shot(page, "tokens")
    api = f"{dashboard.url}/api/experiments"
    assert requests.get(api, headers={"Authorization": f"Bearer {token}"}, timeout=10).status_code == 200
    page.reload()
    assert page.locator("#new-token").count() == 0  # shown once
    page.locator("tr:has-text('ci script') button:has-text('Revoke')").click()
    assert requests.get(api, headers={"Authorization": f"Bearer {token}"}, timeout=10).status_code == 401
    page.goto("/operators")  # admins see every operator's role (the one from the environment is admin)
    assert "admin" in page.locator(f"tr[data-operator='{ADMIN[0]}']").inner_text()
    shot(page, "operators")


def test_forms_without_a_csrf_token_are_refused(dashboard):
    session = requests.Session()
    login = session.post(f"{dashboard.url}/login", data={"email": ADMIN[0], "password": ADMIN[1]}, timeout=10)
    assert login.status_code == 400 and "CSRF" in login.text
    assert "/login" in session.get(f"{dashboard.url}/experiments", timeout=10).url  # not logged in


def completed_experiment(dashboard) -> int:
    """The experiment an earlier test ran from the browser, or a one-round one when that test did not run."""
    done = [e for e in dashboard.api("GET", "/experiments").json() if e["status"] == "completed"]
    if done:
        return done[0]["id"]
    eid = dashboard.api("POST", "/experiments", json={"name": "floor", "rounds": 1, "local_epochs": 1}).json()["id"]
    dashboard.api("POST", f"/experiments/{eid}/start")
    return dashboard.wait_experiment(eid, timeout=300)["id"]


def wait_until_every_plant_uses(dashboard, release_id: int, plants) -> float:
    started = time.monotonic()
    dashboard.wait_for(lambda: all((dashboard.factories()[a.name].get("released_model") or {}).get("id") == release_id
                                   for a in plants), 60, f"every plant to use model #{release_id}")
    return time.monotonic() - started


def test_an_operator_releases_a_model_the_plants_score_with_it_and_alerts_show(page, plants, dashboard, workdir):
    """Release from the experiment page, every plant takes it up, a dropped CSV is scored at the plant, the live
    stream's counts reach the factories, alerts and plant pages; roll back from the registry."""
    blocked = []
    page.on("console", lambda m: blocked.append(m.text) if "Content Security Policy" in m.text else None)
    eid = completed_experiment(dashboard)
    page.goto(f"/experiments/{eid}")
    page.select_option("#release-round", "best")
    page.locator("#release-form").scroll_into_view_if_needed()
    shot(page, "experiment-release")
    page.click("#release-button")
    page.wait_for_selector("#confirm-form")  # the release is confirmed, with what switches
    assert "plants that switch" in page.locator("#confirm-details").inner_text()
    shot(page, "release-confirm")
    page.click("#confirm-yes")
    page.wait_for_url("**/releases")
    release = dashboard.api("GET", "/releases").json()[0]
    taken_up = wait_until_every_plant_uses(dashboard, release["id"], plants)
    print(f"time from release to every plant using it: {taken_up:.1f} s (heartbeat interval 1 s, 3 plants)")

    # a CSV dropped into the plant's watch folder is scored beside it, at the plant
    import pandas as pd

    from shared.data.simulator import simulate

    folder = workdir / "watch" / "ui_plant_a"
    simulate("hot_climate", 300, seed=21, machines=3).to_csv(folder / ".incoming.tmp", index=False)
    (folder / ".incoming.tmp").rename(folder / "incoming.csv")
    dashboard.wait_for(lambda: (folder / "incoming.scores.csv").exists(), 60, "the dropped CSV's scores")
    scores = pd.read_csv(folder / "incoming.scores.csv")
    assert list(scores.columns) == ["row", "machine_id", "cycle", "probability", "prediction"] and len(scores) == 300
    plant = dashboard.wait_for(lambda: (f := dashboard.factories()["ui_plant_a"])["scored_rows"] and
                               f["scored_rows"] > 300 and f, 60, "the stream's scores in a heartbeat")
    assert plant["alerts_open"] is not None and plant["drift"] is not None
    # the plant measured its drift baseline on its own validation split: the pages read drift as a ratio to it
    reading = dashboard.wait_for(lambda: (r := dashboard.factories()["ui_plant_a"]["drift_reading"])["ratio"]
                                 is not None and r, 30, "the drift ratio")
    assert reading["baseline"] > 0 and reading["level"] in ("normal", "elevated", "drifted")
    assert plant["alerts_opened"] is not None and plant["alerts_opened"] >= plant["alerts_open"]

    page.reload()
    row = page.locator(f"tr[data-release='{release['id']}']")
    page.wait_for_function("() => document.querySelectorAll('.plants-using a').length === 3")
    assert "in use at 3 plants" in row.inner_text()
    shot(page, "registry")
    page.goto("/alerts")
    assert page.locator("tr[data-factory=ui_plant_a]").count() == 1
    page.wait_for_function("() => document.getElementById('chart-drift').width > 0")
    assert canvas_has_pixels(page, "chart-drift")
    shot(page, "alerts")
    page.goto("/")
    assert "rows scored" in page.locator("tr[data-factory=ui_plant_a]").inner_text()
    shot(page, "factories-floor")
    page.goto("/factories/ui_plant_a")
    page.wait_for_function("() => document.getElementById('chart-floor').width > 0")
    # status, model, alerts, drift first (the live stream moves the ratio between two reads)
    assert re.fullmatch(r"drift \d+\.\d\d× (normal|elevated|drifted)", page.locator("#floor-drift").inner_text())
    page.wait_for_function("() => document.getElementById('load-note').textContent.includes('heartbeats')")
    assert canvas_has_pixels(page, "chart-load")
    page.click("button.load-range[data-hours='1']")  # another range: the chart is drawn again from the API
    page.wait_for_function("() => document.getElementById('load-note').textContent.startsWith('last 1 h')")
    shot(page, "factory-floor")
    page.set_viewport_size({"width": 390, "height": 844})
    assert no_sideways_scroll(page)
    shot(page, "factory-floor-390")
    page.goto("/alerts")
    assert no_sideways_scroll(page)
    shot(page, "alerts-390")
    page.set_viewport_size({"width": 1366, "height": 900})

    # roll back: a second release, then every plant back to the first one from the Models page
    second = dashboard.api("POST", f"/experiments/{eid}/release", json={"round": 1}).json()
    wait_until_every_plant_uses(dashboard, second["id"], plants)
    page.goto("/releases")
    assert "superseded" in page.locator(f"tr[data-release='{release['id']}']").inner_text()
    page.click("#rollback-all")
    page.wait_for_url("**/releases")
    assert "rolled back 3 plant(s)" in page.locator(".flash.ok").inner_text()
    back = wait_until_every_plant_uses(dashboard, release["id"], plants)
    print(f"roll back reached every plant in {back:.1f} s (the bundle was still on disk: no download)")
    shot(page, "registry-rolled-back")
    assert blocked == []


def no_sideways_scroll(page) -> bool:
    return page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")


def test_actions_follow_the_state_and_cancel_asks_first(page, dashboard):
    """A pending experiment: Start and Cancel enabled, the rest disabled with a reason; a dismissed Cancel dialog
    changes nothing, an accepted one cancels; then every action is disabled. No console error (favicon)."""
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    eid = dashboard.api("POST", "/experiments", json={"name": "never started", "rounds": 2}).json()["id"]
    page.goto(f"/experiments/{eid}")
    assert page.locator("#status").inner_text() == "pending"
    assert page.locator("button[data-action=start]").is_enabled()
    assert page.locator("button[data-action=pause]").is_disabled()
    assert "no round recorded" in page.locator("#release-button").get_attribute("title")
    assert page.locator("#download-latest").get_attribute("aria-disabled") == "true"
    shot(page, "experiment-pending")
    page.once("dialog", lambda d: d.dismiss())
    page.click("button[data-action=cancel]")
    assert dashboard.api("GET", f"/experiments/{eid}").json()["status"] == "pending"
    page.once("dialog", lambda d: d.accept())
    page.click("button[data-action=cancel]")
    page.wait_for_function("() => document.getElementById('status').textContent === 'cancelled'")
    for action in ("start", "pause", "resume", "cancel"):
        assert page.locator(f"button[data-action={action}]").is_disabled(), action
    with page.expect_download() as download:
        page.click("#metrics-csv")
    assert download.value.suggested_filename == f"experiment-{eid}-metrics.csv"
    page.goto("/experiments")
    row = page.locator(f"tr[data-experiment='{eid}']")
    assert "cancelled" in row.inner_text() and row.locator("button[data-action=start]").is_disabled()
    shot(page, "experiments")
    page.goto(f"/experiments/{eid}")  # a finished experiment is archived: out of the list, kept, filterable
    page.click("#archive-button")
    page.wait_for_selector("#archived-note")
    page.goto("/experiments")
    assert page.locator(f"tr[data-experiment='{eid}']").count() == 0
    page.click("#archive-filter a")
    assert page.locator(f"tr[data-experiment='{eid}']").count() == 1
    shot(page, "experiments-archived")
    assert errors == [], errors


def test_without_javascript_cancel_is_confirmed_on_a_page_of_its_own(browser, dashboard):
    context = browser.new_context(base_url=dashboard.url, java_script_enabled=False)
    page = context.new_page()
    page.goto("/login")
    page.fill("input[name=email]", ADMIN[0])
    page.fill("input[name=password]", ADMIN[1])
    page.click("button[type=submit]")
    eid = dashboard.api("POST", "/experiments", json={"name": "no script", "rounds": 2}).json()["id"]
    page.goto(f"/experiments/{eid}")
    page.click("button[data-action=cancel]")
    page.wait_for_selector("#confirm-form")
    shot(page, "cancel-confirm")
    assert dashboard.api("GET", f"/experiments/{eid}").json()["status"] == "pending"
    page.click("#confirm-yes")
    page.wait_for_url(f"**/experiments/{eid}")
    assert page.locator("#status").inner_text() == "cancelled"
    page.goto("/password")  # one's own password: a short new one is refused next to its field
    page.fill("input[name=current]", ADMIN[1])
    page.fill("input[name=new]", "short")
    page.fill("input[name=repeat]", "short")
    page.click("#password-form button[type=submit]")
    assert "at least 12" in page.locator(".errors[data-field=new]").inner_text()
    shot(page, "password")
    context.close()


def test_audit_log_filters_and_fits_a_phone_and_the_api_docs_render(page, dashboard):
    dashboard.api("POST", "/experiments", json={"name": "audited", "rounds": 1})  # an experiment.* event at least
    page.goto("/audit")
    page.select_option("#f-action", "experiment")
    page.click("#audit-filters button[type=submit]")
    page.wait_for_url("**/audit?*action=experiment*")
    actions = page.locator("#audit tbody tr td:nth-child(3)").all_inner_texts()
    assert actions and all(a.startswith("experiment.") for a in actions)
    page.goto("/audit")
    assert "{}" not in page.locator("#audit").inner_text()  # details as key: value, never a dict's text
    shot(page, "audit-1366")
    page.goto("/api/docs")
    assert page.locator("section.operation").count() >= 12
    shot(page, "api-docs-1366")
    page.set_viewport_size({"width": 390, "height": 844})
    for path, name in (("/audit", "audit-390"), ("/experiments", "experiments-390"), ("/api/docs", "api-docs-390"),
                       ("/password", "password-390")):
        page.goto(path)
        shot(page, name)
        assert no_sideways_scroll(page), f"{path} scrolls sideways at 390 px"
    eid = dashboard.api("GET", "/experiments").json()[0]["id"]
    page.goto(f"/experiments/{eid}")
    shot(page, "experiment-390")


def test_experiments_are_compared_from_the_list_and_operators_created_on_their_page(page, dashboard):
    """Tick two experiments, Compare: the differing settings are highlighted and the curves drawn (under the
    CSP); an admin creates an operator whose generated password is shown once and logs in."""
    blocked = []
    page.on("console", lambda m: blocked.append(m.text) if "Content Security Policy" in m.text else None)
    ids = [dashboard.api("POST", "/experiments", json={"name": f"compare {n}", "rounds": n}).json()["id"]
           for n in (2, 3)]
    page.goto("/experiments")
    for eid in ids:
        page.check(f"input.compare-pick[value='{eid}']")
    page.click("#compare-button")
    page.wait_for_url("**/experiments/compare?*")
    assert page.locator("#compare-config tr.differs[data-setting=rounds]").count() == 1
    page.wait_for_function("() => document.querySelector('#chart-val_f1') && "
                           "document.querySelector('#chart-val_f1').width > 0")
    assert canvas_has_pixels(page, "chart-val_f1")
    shot(page, "compare")
    page.goto("/operators")
    page.fill("#new-operator input[name=email]", "browser-new@factoryfl.org")
    page.click("#new-operator button[type=submit]")
    password = page.locator("#new-password").inner_text()
    shot(page, "operators-new")
    assert "browser-new@factoryfl.org" in page.locator("#operators").inner_text() and len(password) >= 16
    page.reload()
    assert page.locator("#new-password").count() == 0
    assert blocked == [], blocked


def test_a_plant_is_labelled_and_decommissioned_from_its_page_and_every_page_fits_both_widths(page, plants,
                                                                                               dashboard):
    """Issue 27 item 6 and its screenshots: an operator labels a plant, an admin decommissions it behind a
    confirmation page, its heartbeats are then refused and the factories page greys it; then every page is shot at
    1366 and 390 px and none scrolls sideways on a phone. Last in this file: the plant stays decommissioned."""
    page.goto("/factories/ui_plant_c")
    page.click("#plant-labels-form summary")
    page.fill("#display_name", "Line 3 press shop")
    page.fill("#site", "Gdańsk")
    page.click("#plant-labels-form button")
    assert page.locator("#plant-display-name").inner_text() == "Line 3 press shop"
    page.click("#decommission-form button")
    page.wait_for_selector("#confirm-form")
    assert "history is kept" in page.locator("main").inner_text()
    shot(page, "decommission-confirm")
    page.click("#confirm-yes")
    page.wait_for_selector("#decommissioned-banner")
    assert page.locator("#decommissioned-badge").count() == 1
    plant = dashboard.factories()["ui_plant_c"]
    assert plant["decommissioned_at"] and plant["site"] == "Gdańsk"
    refused = dashboard.api("POST", "/experiments", json={"name": "with a retired plant",
                                                          "factories": ["ui_plant_a", "ui_plant_c"]})
    assert refused.status_code == 400 and "decommissioned" in refused.json()["error"]
    page.goto("/")
    assert "decommissioned" in page.locator("tr[data-factory=ui_plant_c]").inner_text()
    eids = [e["id"] for e in dashboard.api("GET", "/experiments").json()][:2]
    pages = {"factories": "/", "experiments": "/experiments", "experiment": f"/experiments/{eids[0]}",
             "compare": f"/experiments/compare?ids={eids[0]},{eids[1]}", "models": "/releases", "alerts": "/alerts",
             "audit": "/audit", "operators": "/operators", "enrolment": "/enrolment-tokens", "tokens": "/tokens",
             "password": "/password", "api-docs": "/api/docs", "plant": "/factories/ui_plant_a",
             "plant-decommissioned": "/factories/ui_plant_c"}
    wide = []
    for width, height in ((1366, 900), (390, 844)):
        page.set_viewport_size({"width": width, "height": height})
        for name, path in pages.items():
            assert page.goto(path).status == 200, path
            page.wait_for_timeout(400)  # charts draw after load (a live page never goes network-idle)
            shot(page, f"all-{name}-{width}")
            if width == 390 and not no_sideways_scroll(page):
                wide.append(path)
    assert wide == [], f"pages that scroll sideways at 390 px: {wide}"
