"""GET /api/openapi.json: the API's description (DESIGN §5)."""

from __future__ import annotations

from flask import Blueprint, jsonify

from shared import __version__
from shared.experiment.fields import MAX_NAME, SETTINGS

bp = Blueprint("openapi", __name__, url_prefix="/api")

_ERROR = {"description": "error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
_JSON = {"description": "ok", "content": {"application/json": {"schema": {"type": "object"}}}}
_ID = [{"name": "experiment_id", "in": "path", "required": True, "schema": {"type": "integer"}}]


def _experiment_schema() -> dict:
    """Every setting's type, range, default, help and the choice that shows it (x-shown-when), from the field
    table (shared.experiment.fields); the nested parts as objects."""
    props: dict = {}
    for setting in SETTINGS:
        target = props
        if setting.part is not None:
            target = props.setdefault(setting.part, {"type": "object", "properties": {},
                                                     "additionalProperties": False})["properties"]
        target[setting.key] = setting.schema()
    props["name"].update(minLength=1, maxLength=MAX_NAME)
    props["factories"] = {"oneOf": [{"type": "string", "enum": ["all"]},
                                    {"type": "array", "items": {"type": "string"}}], "default": "all",
                          "description": props["factories"]["description"]}
    return {"type": "object", "required": ["name"], "properties": props, "additionalProperties": False}


_TEXTS = {"type": "array", "items": {"type": "string"}}
_PREFLIGHT = {"type": "object", "properties": {  # dashboard.services.preflight.Preflight
    "ok": {"type": "boolean", "description": "no field error and no refusal"},
    "errors": {"type": "array", "items": {"type": "object", "properties": {
        "field": {"type": "string"}, "reason": {"type": "string"}}}},
    "refusals": {"type": "array", "items": {"type": "object", "properties": {
        "plant": {"type": "string"}, "reason": {"type": "string"},
        "field": {"type": "string", "description": "the setting to change"}}}},
    "warnings": {**_TEXTS, "description": "what will make the experiment wait (offline plants)"}}}


def _floor_paths() -> dict:
    """The plant floor (DESIGN §10): releases, the registry, a plant's floor history, the plants' download."""
    release_id = [{"name": "release_id", "in": "path", "required": True, "schema": {"type": "integer"}}]
    name = [{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}]
    plants = {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 1000,
              "description": "plants that trained the model; default: all of them but pinned ones"}
    return {
        "/api/experiments/{experiment_id}/release": {"post": {
            "summary": "release a round's bundle (default: best validation F1) and deploy it to the plants that "
                       "trained it, or the ones named (pinned plants are held unless named)",
            "parameters": _ID, "requestBody": {"required": False, "content": {"application/json": {"schema": {
                "type": "object", "additionalProperties": False,
                "properties": {"round": {"type": "integer", "minimum": 0}, "plants": plants,
                               "preview": {"type": "boolean", "default": False,
                                           "description": "true: what the release would change, nothing stored"}}}}}},
            "responses": {"201": _JSON, "400": _ERROR, "403": _ERROR, "404": _ERROR, "409": _ERROR}}},
        "/api/releases": {"get": {"summary": "every release, newest first, with its state (in use at N plants, "
                                             "superseded, never used) and the plants using it",
                                  "responses": {"200": _JSON, "401": _ERROR}}},
        "/api/releases/{release_id}/deploy": {"post": {
            "summary": "deploy a release to its plants or the ones named; without confirm: the preview (per plant "
                       "the current and new validation F1 and whether it switches)", "parameters": release_id,
            "requestBody": {"required": False, "content": {"application/json": {"schema": {
                "type": "object", "additionalProperties": False,
                "properties": {"plants": plants, "confirm": {"type": "boolean", "default": False}}}}}},
            "responses": {"200": _JSON, "400": _ERROR, "403": _ERROR, "404": _ERROR, "409": _ERROR}}},
        "/api/deployments": {"get": {"summary": "per plant: the release it is assigned, the one its heartbeat "
                                                "reports, pinned, and the release a roll back returns it to",
                                     "responses": {"200": _JSON, "401": _ERROR}}},
        "/api/deployments/rollback": {"post": {"summary": "roll back every plant that is not pinned",
                                               "responses": {"200": _JSON, "403": _ERROR}}},
        **{f"/api/factories/{{name}}/model/{action}": {"post": {
            "summary": summary, "parameters": name,
            "responses": {"200": _JSON, "400": _ERROR, "403": _ERROR, "404": _ERROR, "409": _ERROR}}}
           for action, summary in (("rollback", "roll this plant back to the release before its newest deploy"),
                                   ("pin", "hold this plant on its release: a default deploy skips it"),
                                   ("unpin", "let a default deploy switch this plant again"))},
        "/api/factories/{name}/floor": {"get": {
            "summary": "a plant's floor: model in use, scored rows, open and recent alerts, drift against its "
                       "baseline, and their history",
            "parameters": [{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}],
            "responses": {"200": _JSON, "400": _ERROR, "404": _ERROR}}},
        "/api/factories/{name}/load": {"get": {
            "summary": "a plant's CPU, memory and disk over the last 1, 6, 24 or 168 hours (at most 240 points)",
            "parameters": [{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}},
                           {"name": "hours", "in": "query", "required": False,
                            "schema": {"type": "integer", "enum": [1, 6, 24, 168]}}],
            "responses": {"200": _JSON, "400": _ERROR, "404": _ERROR}}},
        "/api/models/{release_id}/bundle": {"get": {
            "summary": "a release's bundle, for its experiment's plants (Authorization: Bearer <heartbeat token>)",
            "parameters": release_id,
            "responses": {"200": {"description": "bundle", "content": {"application/octet-stream": {}}},
                          "401": _ERROR, "403": _ERROR, "404": _ERROR}}},
    }


def _operator_paths() -> dict:
    """The metrics export and the audit log (issue 27 items 6 and 7)."""
    text = {"schema": {"type": "string"}}
    audit_filters = [{"name": n, "in": "query", "description": d, "schema": {"type": t}} for n, t, d in (
        ("actor", "string", "part of who did it"), ("action", "string", "an action, or a family without a dot"),
        ("plant", "string", "events about or by this plant"), ("experiment", "integer", "events about it"),
        ("since", "string", "ISO 8601 date or time, UTC, inclusive"), ("until", "string", "exclusive"),
        ("page", "integer", "from 1"), ("per_page", "integer", "1 to 200, default 50"))]
    return {
        "/api/experiments/{experiment_id}/metrics.csv": {"get": {
            "summary": "every round's aggregate and per-plant metrics as CSV", "parameters": _ID,
            "responses": {"200": {"description": "CSV", "content": {"text/csv": text}}, "404": _ERROR}}},
        **{f"/api/experiments/{{experiment_id}}/{a}": {"post": {
            "summary": f"{a} a finished experiment (archived ones are hidden from GET /api/experiments unless "
                       "?archived=true; their rounds, models and releases are kept)", "parameters": _ID,
            "responses": {"200": _JSON, "403": _ERROR, "404": _ERROR, "409": _ERROR}}} for a in ("archive", "unarchive")},
        "/api/audit": {"get": {"summary": "the audit log, newest first, filtered and paged",
                               "parameters": audit_filters, "responses": {"200": _JSON, "400": _ERROR,
                                                                          "401": _ERROR}}},
    }


def _plant_paths() -> dict:
    """One plant, its labels and its decommissioning (issue 27 item 6, dashboard.registry.lifecycle)."""
    name = [{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}]
    label = {"type": "string", "nullable": True, "description": "printable text; empty or null clears it"}
    return {
        "/api/factories/{name}": {
            "get": {"summary": "one factory as /factories lists it, with its policy and trust mode (trust)",
                    "parameters": name, "responses": {"200": _JSON, "400": _ERROR, "401": _ERROR, "404": _ERROR}},
            "patch": {"summary": "set or clear the plant's display name and site (operators; its name stays its "
                                 "identity)", "parameters": name,
                      "requestBody": {"required": True, "content": {"application/json": {"schema": {
                          "type": "object", "additionalProperties": False, "minProperties": 1, "properties": {
                              "display_name": {**label, "maxLength": 80}, "site": {**label, "maxLength": 120}}}}}},
                      "responses": {"200": _JSON, "400": _ERROR, "401": _ERROR, "403": _ERROR, "404": _ERROR}}},
        "/api/factories/{name}/decommission": {"post": {
            "summary": "retire the plant (admins): it leaves future cohorts, its history is kept, its heartbeat and "
                       "unused enrolment tokens are revoked; only a new one-time enrolment token brings it back",
            "parameters": name,
            "responses": {"200": _JSON, "400": _ERROR, "401": _ERROR, "403": _ERROR, "404": _ERROR, "409": _ERROR}}},
    }


def _admin_paths() -> dict:
    """Operators (admins) and deleting and comparing experiments (issue 27 item 6)."""
    from dashboard.config import MIN_PASSWORD
    from dashboard.models.operators import ROLES

    op_id = [{"name": "operator_id", "in": "path", "required": True, "schema": {"type": "integer"}}]
    changed = {"200": _JSON, "401": _ERROR, "403": _ERROR, "404": _ERROR, "409": _ERROR}
    role = {"type": "string", "enum": list(ROLES)}
    return {
        "/api/operators": {
            "get": {"summary": "every operator: e-mail, role, disabled (admins)", "responses": {
                "200": _JSON, "401": _ERROR, "403": _ERROR}},
            "post": {"summary": "create an operator; without a password one is generated and in this answer only "
                                "(\"password\")",
                     "requestBody": {"required": True, "content": {"application/json": {"schema": {
                         "type": "object", "required": ["email"], "additionalProperties": False,
                         "properties": {"email": {"type": "string", "maxLength": 255},
                                        "role": {**role, "default": "viewer"},
                                        "password": {"type": "string", "minLength": MIN_PASSWORD,
                                                     "maxLength": 1024}}}}}},
                     "responses": {"201": _JSON, "400": _ERROR, "401": _ERROR, "403": _ERROR}}},
        "/api/operators/{operator_id}/role": {"post": {
            "summary": "change an operator's role (not the last enabled admin's, nor one's own to lower)",
            "parameters": op_id, "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "required": ["role"], "properties": {"role": role}}}}},
            "responses": {**changed, "400": _ERROR}}},
        "/api/operators/{operator_id}/disable": {"post": {
            "summary": "disable an operator: no login, its API tokens refused (not the last enabled admin, not oneself)",
            "parameters": op_id, "responses": changed}},
        "/api/operators/{operator_id}/enable": {"post": {"summary": "enable a disabled operator again",
                                                         "parameters": op_id, "responses": changed}},
        "/api/operators/{operator_id}/password": {"post": {
            "summary": "reset an operator's password: a generated one, in this answer only (\"password\")",
            "parameters": op_id, "responses": changed}},
        "/api/experiments/compare": {"get": {
            "summary": "2 to 4 experiments side by side: settings (differing ones first), best val / test F1, curves",
            "parameters": [{"name": "ids", "in": "query", "required": True, "description": "e.g. 1,2,3",
                            "schema": {"type": "string"}}],
            "responses": {"200": _JSON, "400": _ERROR, "401": _ERROR, "404": _ERROR}}},
    }


@bp.get("/openapi.json")
def openapi():
    return jsonify(document())


def document() -> dict:
    """The OpenAPI 3 document (served as JSON here, rendered as the /api/docs page by dashboard.ui.api_docs)."""
    action = {"post": {"summary": "change the experiment's status", "parameters": _ID,
                       "responses": {"200": _JSON, "403": _ERROR, "404": _ERROR, "409": _ERROR}}}
    spec = {
        "openapi": "3.0.3",
        "info": {"title": "FactoryFL dashboard API", "version": __version__},
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Error": {"type": "object", "properties": {"error": {"type": "string"}, "detail": {}}},
                        "ExperimentRequest": _experiment_schema(), "Preflight": _PREFLIGHT}},
        "security": [{"bearer": []}],
        "paths": {
            "/api/experiments": {
                "get": {"summary": "list experiments", "responses": {"200": _JSON, "401": _ERROR}},
                "post": {"summary": "create an experiment",
                         "requestBody": {"required": True, "content": {"application/json": {
                             "schema": {"$ref": "#/components/schemas/ExperimentRequest"}}}},
                         "responses": {"201": _JSON, "400": _ERROR, "401": _ERROR, "403": _ERROR}}},
            "/api/experiments/preflight": {"post": {
                "summary": "check a creation body before anything is stored: every field error at once, and what "
                           "each chosen plant's reported policy and data will refuse, by plant and setting",
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/ExperimentRequest"}}}},
                "responses": {"200": {"description": "{ok, errors: [{field, reason}], refusals: [{plant, reason, "
                                                     "field}], warnings: [text]}", "content": {"application/json": {
                                          "schema": {"$ref": "#/components/schemas/Preflight"}}}},
                              "400": _ERROR, "401": _ERROR, "403": _ERROR}}},
            "/api/experiments/{experiment_id}": {
                "get": {"summary": "an experiment with its rounds", "parameters": _ID,
                        "responses": {"200": _JSON, "404": _ERROR}},
                "delete": {"summary": "delete an experiment that is not running or paused and has no release in use "
                                      "(admins): rounds, metrics, models and unused releases go; the audit log stays",
                           "parameters": _ID, "responses": {"200": _JSON, "401": _ERROR, "403": _ERROR,
                                                            "404": _ERROR, "409": _ERROR}}},
            **{f"/api/experiments/{{experiment_id}}/{a}": action for a in ("start", "pause", "resume", "cancel")},
            "/api/experiments/{experiment_id}/model": {"get": {
                "summary": "the model bundle (safetensors); without ?round= the best round by pooled validation F1 "
                           "(the experiment's best_round), else the latest",
                "parameters": _ID + [{"name": "round", "in": "query", "schema": {"type": "integer", "minimum": 0}}],
                "responses": {"200": {"description": "bundle", "content": {"application/octet-stream": {}}},
                              "404": _ERROR}}},
            "/api/enrolment-tokens": {"post": {
                "summary": "a one-time enrolment token for one plant name (admins; the token is in this answer only)",
                "requestBody": {"required": True, "content": {"application/json": {"schema": {
                    "type": "object", "required": ["factory_name"], "additionalProperties": False,
                    "properties": {"factory_name": {"type": "string", "maxLength": 120},
                                   "expires_in_hours": {"type": "number", "exclusiveMinimum": True, "minimum": 0,
                                                        "maximum": 720, "default": 24}}}}}},
                "responses": {"201": _JSON, "400": _ERROR, "401": _ERROR, "403": _ERROR}}},
            **_floor_paths(),
            **_operator_paths(),
            **_admin_paths(),
            "/factories": {"get": {"summary": "every factory and its status (operators: session or bearer token)",
                                   "responses": {"200": _JSON, "401": _ERROR}}},
            **_plant_paths(),
        },
    }
    return spec
