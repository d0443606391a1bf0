"""GET /api/openapi.json: the API's description (DESIGN §5)."""

from __future__ import annotations

from dataclasses import fields

from flask import Blueprint, jsonify

from shared import __version__
from shared.experiment import CHOICES, ExperimentConfig, PrivacyConfig, RobustConfig
from shared.experiment.parse import MIN_LEARNING_RATE

bp = Blueprint("openapi", __name__, url_prefix="/api")

_ERROR = {"description": "error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
_JSON = {"description": "ok", "content": {"application/json": {"schema": {"type": "object"}}}}
_ID = [{"name": "experiment_id", "in": "path", "required": True, "schema": {"type": "integer"}}]


def _properties(cls, prefix: str = "") -> dict:
    """JSON types of a settings dataclass's fields; enums from shared.experiment.CHOICES (shared.enums)."""
    nested = {"privacy": PrivacyConfig, "robust": RobustConfig}
    props = {}
    for f in fields(cls):
        t, key = str(f.type), f"{prefix}{f.name}"
        if f.name in nested and not prefix:
            props[f.name] = {"type": "object", "properties": _properties(nested[f.name], f"{f.name}."),
                             "additionalProperties": False}
        elif f.name == "factories":
            props[f.name] = {"oneOf": [{"type": "string", "enum": ["all"]},
                                       {"type": "array", "items": {"type": "string"}}]}
        elif f.name != "noise_multiplier_source":  # derived, not asked for
            props[f.name] = {"type": "integer" if t.split(" | ")[0] == "int" else "number" if "float" in t else
                             "boolean" if t == "bool" else "string"}
            if key in CHOICES:
                props[f.name]["enum"] = CHOICES[key].values()
            if "None" in t:
                props[f.name]["nullable"] = True
    return props


def _experiment_schema() -> dict:
    props = _properties(ExperimentConfig)
    props["sampling_rate"].update(minimum=0, exclusiveMinimum=True, maximum=1, default=1.0,
                                  description="each round, each eligible plant takes part with this probability "
                                              "(Poisson sampling); under central DP the accountant counts every draw")
    props["class_weight"]["description"] = ("the failure class's loss weight: pooled (the federation's "
                                            "non-failure/failure ratio from round 0, one objective for every plant) "
                                            "or local (each plant's own ratio); both capped at 50")
    props["algorithm"]["default"] = ExperimentConfig.algorithm
    props["algorithm"]["description"] = (
        "default feddyn (the best on validation F1 on non-IID plants); not named, with privacy.mode dp_sgd or "
        "central, robust median, trimmed_mean or krum, or a server_optimizer: fedavg. "
        "fedavg (sample-weighted mean), fedprox (+ mu), fednova (normalised by local steps), feddyn (+ feddyn_alpha), "
        "scaffold (control variates against client drift, Karimireddy et al. 2020: each plant keeps its c_i and "
        "sends only its clipped change; refused with secure_aggregation (the unmasked sums of the control "
        "deltas and of the updates would give the server each plant's update), with privacy.mode central and "
        "with robust median, trimmed_mean or krum)")
    props["lr_decay"].update(minimum=0, exclusiveMinimum=True, maximum=1, default=ExperimentConfig.lr_decay,
                             description="round r trains at learning_rate * lr_decay^(r-1), never below 1% of "
                                         "learning_rate; 1: no decay")
    props["learning_rate"].update(minimum=MIN_LEARNING_RATE, exclusiveMinimum=True, maximum=1,
                                  default=ExperimentConfig.learning_rate, description="Adam at each plant, round 1")
    props["rounds"].update(minimum=1, maximum=1000, default=ExperimentConfig.rounds)
    props["patience"].update(minimum=0, maximum=1000,
                             description="stop when pooled validation F1 has not improved for this many rounds "
                                         "(0: off); GET .../model and the release default to the best round")
    props["personalization"]["description"] = (
        "after the last round each plant fine-tunes the best round's model on its own training split: finetune "
        "(every layer) or fedper (the head only, on the frozen federated body); it keeps the epoch its own "
        "validation F1 prefers, trains a local-only model for comparison and answers only the three models' "
        "scores (GET /api/experiments/{id}: personalization); none: no step")
    props["personalization_epochs"].update(minimum=1, maximum=100,
                                           description="fine-tuning epochs at each plant (its policy may allow "
                                                       "fewer); the local-only model gets rounds x local_epochs + "
                                                       "these, at most 100")
    _privacy_help(props["privacy"]["properties"])
    return {"type": "object", "required": ["name"], "properties": props, "additionalProperties": False}


def _privacy_help(props: dict) -> None:
    """Help text of DP-SGD's own training settings (shared.experiment.PrivacyConfig)."""
    props["batch_size"].update(minimum=1, maximum=65536, default=PrivacyConfig.batch_size, description=(
        "dp_sgd only: the expected batch of Opacus's Poisson sampling at each plant (sampling rate = batch_size / "
        "the plant's training rows, at most 1), in place of the experiment's batch_size: fewer, larger noisy steps"))
    props["learning_rate"].update(minimum=MIN_LEARNING_RATE, exclusiveMinimum=True, maximum=1,
                                  default=PrivacyConfig.learning_rate,
                                  description="dp_sgd only: the plants' learning rate, in place of the experiment's "
                                              "(lr_decay still applies)")
    props["local_epochs"].update(minimum=1, maximum=100, default=PrivacyConfig.local_epochs,
                                 description="dp_sgd only: local epochs per round, in place of the experiment's; "
                                             "each plant derives its noise multiplier over rounds x these epochs")


def _floor_paths() -> dict:
    """The plant floor (DESIGN §10): releases, the registry, a plant's floor history, the plants' download."""
    release_id = [{"name": "release_id", "in": "path", "required": True, "schema": {"type": "integer"}}]
    return {
        "/api/experiments/{experiment_id}/release": {"post": {
            "summary": "release a round's bundle to the experiment's plants (default: best validation F1)",
            "parameters": _ID, "requestBody": {"required": False, "content": {"application/json": {"schema": {
                "type": "object", "additionalProperties": False,
                "properties": {"round": {"type": "integer", "minimum": 0}}}}}},
            "responses": {"201": _JSON, "400": _ERROR, "403": _ERROR, "404": _ERROR, "409": _ERROR}}},
        "/api/releases": {"get": {"summary": "every release, newest first, with the plants using it",
                                  "responses": {"200": _JSON, "401": _ERROR}}},
        "/api/releases/{release_id}/activate": {"post": {
            "summary": "make this release its experiment's active one again (roll back)", "parameters": release_id,
            "responses": {"200": _JSON, "403": _ERROR, "404": _ERROR}}},
        "/api/factories/{name}/floor": {"get": {
            "summary": "a plant's floor: model in use, scored rows, open alerts, drift, and their history",
            "parameters": [{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}],
            "responses": {"200": _JSON, "400": _ERROR, "404": _ERROR}}},
        "/api/models/{release_id}/bundle": {"get": {
            "summary": "a release's bundle, for its experiment's plants (Authorization: Bearer <heartbeat token>)",
            "parameters": release_id,
            "responses": {"200": {"description": "bundle", "content": {"application/octet-stream": {}}},
                          "401": _ERROR, "403": _ERROR, "404": _ERROR}}},
    }


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
            "/factories": {"get": {"summary": "every factory and its status (operators: session or bearer token)",
                                   "responses": {"200": _JSON, "401": _ERROR}}},
        },
    }
    return jsonify(spec)
