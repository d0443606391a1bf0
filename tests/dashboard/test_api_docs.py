"""GET /api/docs renders the OpenAPI document (every path and method, the settings' fields), linked from every
page's footer; the favicon is served where browsers ask for it."""

from dashboard.ui.api_docs import operations
from tests.dashboard.conftest import ADMIN


def test_the_docs_page_lists_every_operation_of_the_openapi_document(client):
    spec = client.get("/api/openapi.json").get_json()
    page = client.get("/api/docs")
    assert page.status_code == 200 and page.mimetype == "text/html"
    ops = operations(spec)
    assert len(ops) >= 12 and {"GET /api/audit", "GET /api/experiments/{experiment_id}/metrics.csv"} <= \
        {f"{o['method']} {o['path']}" for o in ops}
    for op in ops:
        assert f'id="{op["anchor"]}"' in page.text
    assert "<code>privacy.epsilon</code>" in page.text and "<script" not in page.text.split("</head>")[1]
    assert len({o["anchor"] for o in ops}) == len(ops)


def test_every_page_links_the_docs_and_has_a_favicon(client):
    client.post("/login", data={"email": ADMIN[0], "password": ADMIN[1]})
    page = client.get("/experiments").text
    assert 'href="/api/docs" id="api-docs-link"' in page and 'rel="icon" href="/static/favicon.svg"' in page
    icon = client.get("/favicon.ico")
    assert icon.status_code == 200 and icon.mimetype == "image/svg+xml" and b"<svg" in icon.data
    assert client.get("/static/favicon.svg").status_code == 200
