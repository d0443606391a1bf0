"""GET /api/openapi.json: the API's description (DESIGN §5)."""

from __future__ import annotations

from flask import Blueprint, jsonify

from dashboard.experiment_config import ExperimentConfig
from shared import __version__

bp = Blueprint("openapi", __name__, url_prefix="/api")

_ERROR = {"description": "error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
_JSON = {"description": "ok", "content": {"application/json": {"schema": {"type": "object"}}}}
_ID = [{"name": "experiment_id", "in": "path", "required": True, "schema": {"type": "integer"}}]


def _experiment_schema() -> dict:
    props = {}
    for name, f in ExperimentConfig.__dataclass_fields__.items():
        t = str(f.type)
        kind = "integer" if t == "int" else "number" if "float" in t else "boolean" if t == "bool" else \
            "object" if t == "dict" else "string"
        props[name] = {"type": kind} if name != "factories" else {
            "oneOf": [{"type": "string", "enum": ["all"]}, {"type": "array", "items": {"type": "string"}}]}
    props["model_type"]["enum"] = ["cnn", "lstm", "hybrid"]
    props["algorithm"]["enum"] = ["fedavg", "fedprox", "fednova", "feddyn"]
    props["sampling_rate"].update(minimum=0, exclusiveMinimum=True, maximum=1, default=1.0,
                                  description="each round, each eligible plant takes part with this probability "
                                              "(Poisson sampling); under central DP the accountant counts every draw")
    return {"type": "object", "required": ["name"], "properties": props, "additionalProperties": False}


@bp.get("/openapi.json")
def openapi():
    action = {"post": {"summary": "change the experiment's status", "parameters": _ID,
                       "responses": {"200": _JSON, "403": _ERROR, "404": _ERROR, "409": _ERROR}}}
    spec = {
        "openapi": "3.0.3",
        "info": {"title": "FactoryFL dashboard API", "version": __version__},
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Error": {"type": "object", "properties": {"error": {"type": "string"}, "detail": {}}},
                        "ExperimentRequest": _experiment_schema()}},
        "security": [{"bearer": []}],
        "paths": {
            "/api/experiments": {
                "get": {"summary": "list experiments", "responses": {"200": _JSON, "401": _ERROR}},
                "post": {"summary": "create an experiment",
                         "requestBody": {"required": True, "content": {"application/json": {
                             "schema": {"$ref": "#/components/schemas/ExperimentRequest"}}}},
                         "responses": {"201": _JSON, "400": _ERROR, "401": _ERROR, "403": _ERROR}}},
            "/api/experiments/{experiment_id}": {"get": {"summary": "an experiment with its rounds",
                                                         "parameters": _ID,
                                                         "responses": {"200": _JSON, "404": _ERROR}}},
            **{f"/api/experiments/{{experiment_id}}/{a}": action for a in ("start", "pause", "resume", "cancel")},
            "/api/experiments/{experiment_id}/model": {"get": {
                "summary": "the model bundle (safetensors)",
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
            "/factories": {"get": {"summary": "every factory and its status (operators: session or bearer token)",
                                   "responses": {"200": _JSON, "401": _ERROR}}},
        },
    }
    return jsonify(spec)
