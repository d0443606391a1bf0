"""GET /api/experiments/<id>/metrics.csv: every round's aggregate and per-plant metrics, safe to open in a
spreadsheet whatever a plant reported."""

import csv
import io

from dashboard.extensions import db
from dashboard.models import Experiment, Round, RoundResult
from dashboard.services.metrics_export import cell


def test_the_csv_has_the_baseline_every_round_and_every_plant_and_neutralises_formulas(app, client, api):
    eid = client.post("/api/experiments", json={"name": "csv", "rounds": 2}, headers=api).get_json()["id"]
    with app.app_context():
        e = db.session.get(Experiment, eid)
        e.baseline = {"val_f1": 0.1}
        for n in (1, 2):
            r = Round(experiment_id=eid, number=n, status="completed", participants=["a", "=HYPERLINK(1)"],
                      metrics={"val_f1": 0.5 + n / 10, "test_f1": -0.25, "note": "text is dropped"}, threshold=0.4)
            r.results = [RoundResult(factory_name="a", num_samples=10, steps=1, metrics={"test_f1": 0.3}),
                         RoundResult(factory_name="=HYPERLINK(1)", num_samples=10, steps=1,
                                     metrics={"test_f1": 0.2, "@SUM(A1)": 1.0})]
            db.session.add(r)
        db.session.add(Round(experiment_id=eid, number=3, status="failed", participants=["a"]))
        db.session.commit()
    resp = client.get(f"/api/experiments/{eid}/metrics.csv", headers=api)
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    assert f"experiment-{eid}-metrics.csv" in resp.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(resp.text)))
    assert [(r["round"], r["plant"]) for r in rows] == [("0", "all"), ("1", "all"), ("1", "'=HYPERLINK(1)"),
                                                        ("1", "a"), ("2", "all"), ("2", "'=HYPERLINK(1)"), ("2", "a")]
    assert rows[1]["test_f1"] == "-0.25" and rows[1]["participants"] == "2" and rows[1]["threshold"] == "0.4"
    assert "'@SUM(A1)" in rows[0] and "note" not in rows[0]
    assert client.get(f"/api/experiments/{eid}/metrics.csv").status_code == 401
    assert client.get("/api/experiments/999/metrics.csv", headers=api).status_code == 404


def test_only_text_is_prefixed_numbers_stay_numbers():
    assert cell(-1.5) == -1.5 and cell("-1") == "'-1" and cell("ok") == "ok" and cell(None) == ""
