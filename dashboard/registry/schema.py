"""What a registrant may send (DESIGN §4), checked at the boundary before anything is stored: the plant's
address (no SSRF: dashboard.registry.addresses), its capabilities against a closed schema, and its public keys.

A plant's capabilities drive every later round (the feature schema is merged across plants, the model is
built from it), so a broken or empty schema is a 400 here rather than a failure of every running experiment.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from flask import current_app

from shared.errors import ValidationError
from dashboard.registry.addresses import AddressRefused, check_plant_host, check_plant_port
from shared.data.schema import FeatureSchema
from shared.enums import DataType, ModelType

MAX_FEATURES = 4096
MAX_NAME = 200  # a column, category or feature name
MAX_SAMPLES = 10 ** 12
RAW_KEY_HEX = re.compile(r"[0-9a-f]{64}")  # X25519 / Ed25519 raw public keys: 32 bytes, lowercase hex
KEY_FIELDS = ("secagg_public_key", "identity_public_key")
CAPABILITIES = {"supported_models", "data_type", "num_samples", "features", "schema", "splits", "source",
                "byzantine"}
REQUIRED_CAPABILITIES = ("supported_models", "data_type", "num_samples", "features", "schema")
SCHEMA_KEYS = {"label_column", "numeric_columns", "categorical", "group_column", "time_column"}
SPLITS = ("train", "validation", "test")


def validate_registration(body: dict) -> None:
    """Raise ValidationError (400 naming the field) for an address, capability or key the dashboard must not
    accept. Reads DASHBOARD_ALLOW_PRIVATE_PLANTS from the app's config."""
    try:
        check_plant_host(body.get("factory_hostname"), current_app.config["ALLOW_PRIVATE_PLANTS"])
    except AddressRefused as exc:
        raise ValidationError("factory_hostname", str(exc)) from None
    try:
        check_plant_port(body.get("factory_port"))
    except AddressRefused as exc:
        raise ValidationError("factory_port", str(exc)) from None
    validate_capabilities(body.get("capabilities"))
    for field in KEY_FIELDS:
        validate_raw_key(body, field)


def validate_raw_key(body: dict, field: str) -> None:
    value = body.get(field)
    if value is None:
        return
    if not isinstance(value, str) or not RAW_KEY_HEX.fullmatch(value):
        shown = repr(value[:80]) if isinstance(value, str) else type(value).__name__
        raise ValidationError(field, f"must be a raw 32-byte public key as 64 lowercase hex characters, got {shown}")


def _text(value, field: str, *, max_len: int = MAX_NAME, allow_empty: bool = False) -> str:
    if not isinstance(value, str):
        raise ValidationError(field, f"must be text, got {type(value).__name__}")
    if not allow_empty and not value.strip():
        raise ValidationError(field, "must not be empty")
    if len(value) > max_len:
        raise ValidationError(field, f"must be at most {max_len} characters, got {len(value)}")
    return value


def _names(value, field: str, *, max_items: int = MAX_FEATURES) -> list[str]:
    if not isinstance(value, list):
        raise ValidationError(field, f"must be a list of names, got {type(value).__name__}")
    if len(value) > max_items:
        raise ValidationError(field, f"must hold at most {max_items} names, got {len(value)}")
    for i, name in enumerate(value):
        _text(name, f"{field}[{i}]")
    if len(set(value)) != len(value):
        duplicate = next(n for n in value if value.count(n) > 1)
        raise ValidationError(field, f"names {duplicate!r} twice")
    return value


def validate_capabilities(capabilities) -> None:
    if not isinstance(capabilities, dict):
        raise ValidationError("capabilities", "is required: an object with " + ", ".join(REQUIRED_CAPABILITIES))
    unknown = sorted(set(capabilities) - CAPABILITIES)
    if unknown:
        raise ValidationError(f"capabilities.{unknown[0][:64]}", "is not a capability this dashboard knows "
                                                                 f"(known: {', '.join(sorted(CAPABILITIES))})")
    for key in REQUIRED_CAPABILITIES:
        if capabilities.get(key) is None:
            raise ValidationError(f"capabilities.{key}", "is required")
    models = capabilities["supported_models"]
    known_models = ModelType.values()
    if not isinstance(models, list) or not models or not all(isinstance(m, str) for m in models):
        raise ValidationError("capabilities.supported_models", f"must be a non-empty list of {', '.join(known_models)}")
    if not set(models) <= set(known_models):
        raise ValidationError("capabilities.supported_models", f"unknown model type(s) "
                              f"{', '.join(repr(m[:40]) for m in models if m not in known_models)}; known: "
                              f"{', '.join(known_models)}")
    data_types = [d.value for d in DataType]
    if capabilities["data_type"] not in data_types:
        raise ValidationError("capabilities.data_type", f"must be one of {', '.join(data_types)}, got "
                                                        f"{str(capabilities['data_type'])[:40]!r}")
    samples = capabilities["num_samples"]
    if isinstance(samples, bool) or not isinstance(samples, int) or not 0 <= samples <= MAX_SAMPLES:
        raise ValidationError("capabilities.num_samples", f"must be a whole number of rows, 0 or more, got {samples!r}")
    features = _names(capabilities["features"], "capabilities.features")
    schema = validate_schema(capabilities["schema"])
    if features != schema.feature_names:
        raise ValidationError("capabilities.features", "must be the schema's feature names in order (numeric "
                                                       "columns, then column=category for each category)")
    splits = capabilities.get("splits")
    if splits is not None:
        if not isinstance(splits, dict) or set(splits) - set(SPLITS):
            raise ValidationError("capabilities.splits", f"must be an object with {', '.join(SPLITS)}")
        for name, count in splits.items():
            if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= MAX_SAMPLES:
                raise ValidationError(f"capabilities.splits.{name}", f"must be a row count, got {count!r}")
    for key, limit in (("source", MAX_NAME), ("byzantine", 64)):
        if capabilities.get(key) is not None:
            _text(capabilities[key], f"capabilities.{key}", max_len=limit)


def validate_schema(schema) -> FeatureSchema:
    """The plant's feature schema, as shared.data.schema.FeatureSchema.from_dict reads it, with at least one
    feature and no name used twice."""
    field = "capabilities.schema"
    if not isinstance(schema, dict) or not schema:
        raise ValidationError(field, "must be the plant's feature schema: an object with label_column, "
                                     "numeric_columns and categorical")
    unknown = sorted(set(schema) - SCHEMA_KEYS)
    if unknown:
        raise ValidationError(f"{field}.{unknown[0][:64]}",
                              f"is not a schema field (known: {', '.join(sorted(SCHEMA_KEYS))})")
    if schema.get("label_column") is None:
        raise ValidationError(f"{field}.label_column", "is required")
    label = _text(schema["label_column"], f"{field}.label_column")
    numeric = _names(schema.get("numeric_columns", []), f"{field}.numeric_columns")
    categorical = schema.get("categorical", {})
    if categorical is None:
        categorical = {}
    if not isinstance(categorical, dict):
        raise ValidationError(f"{field}.categorical", f"must be an object of column: [categories], got "
                                                      f"{type(categorical).__name__}")
    if len(categorical) > MAX_FEATURES:
        raise ValidationError(f"{field}.categorical", f"must hold at most {MAX_FEATURES} columns")
    total = len(numeric)
    for column, categories in categorical.items():
        _text(column, f"{field}.categorical")
        _names(categories, f"{field}.categorical.{column[:64]}")
        total += len(categories)
        if total > MAX_FEATURES:
            raise ValidationError(f"{field}", f"encodes more than {MAX_FEATURES} features")
    if total == 0:
        raise ValidationError(field, "has no feature: a plant needs at least one numeric column or category")
    inputs = list(numeric) + list(categorical)
    if len(set(inputs)) != len(inputs):
        raise ValidationError(field, "names a column both as numeric and as categorical")
    if label in inputs:
        raise ValidationError(f"{field}.label_column", f"{label[:64]!r} is also a feature column")
    for key in ("group_column", "time_column"):
        if schema.get(key) is not None:
            _text(schema[key], f"{field}.{key}")
    try:
        parsed = FeatureSchema.from_dict(schema)
    except (KeyError, TypeError, ValueError) as exc:  # the checks above should leave nothing for this
        raise ValidationError(field, f"cannot be read ({exc.__class__.__name__}: {exc})") from None
    names = parsed.feature_names
    if len(set(names)) != len(names):
        raise ValidationError(field, "encodes two features under one name (a numeric column named like "
                                     "column=category)")
    return parsed


# --- heartbeats: what a plant reports from its floor (DESIGN §10), validated as hostile ----------------------
MAX_DB_ID = 2 ** 31 - 1  # factories.released_model_id is a 32-bit integer column (Postgres: larger is a 500)
MAX_SCORED_ROWS = 10 ** 15
MAX_ALERTS = 10 ** 9
MAX_DRIFT = 10 ** 6
SHA256_HEX = re.compile(r"[0-9a-f]{64}")
MODEL_KINDS = ("global", "personalized")  # personalized: the learning-quality issue's per-plant model
FLOOR_FIELDS = ("released_model", "scored_rows", "alerts_open", "drift")


@dataclass(frozen=True)
class ReportedModel:
    id: int
    sha256: str
    kind: str = "global"


@dataclass(frozen=True)
class FloorReport:
    """Counts and a drift score, never rows; None where the plant did not say."""

    released_model: ReportedModel | None
    scored_rows: int | None
    alerts_open: int | None
    drift: float | None


def _count(body: dict, key: str, limit: int) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= limit:
        raise ValidationError(key, f"must be a whole number between 0 and {limit}, got {str(value)[:40]!r}")
    return value


def _reported_model(value) -> ReportedModel | None:
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) - {"id", "sha256", "kind"}:
        raise ValidationError("released_model", "must be an object with id, sha256 and kind")
    model_id, digest, kind = value.get("id"), value.get("sha256"), value.get("kind", "global")
    if isinstance(model_id, bool) or not isinstance(model_id, int) or not 0 < model_id <= MAX_DB_ID:
        raise ValidationError("released_model.id", f"must be a release id (a positive whole number), got "
                                                   f"{str(model_id)[:40]!r}")
    if not isinstance(digest, str) or not SHA256_HEX.fullmatch(digest):
        raise ValidationError("released_model.sha256", "must be a SHA-256 digest as 64 lowercase hex characters")
    if kind not in MODEL_KINDS:
        raise ValidationError("released_model.kind", f"must be one of {', '.join(MODEL_KINDS)}, got "
                                                     f"{str(kind)[:40]!r}")
    return ReportedModel(model_id, digest, kind)


def validate_floor_report(body: dict) -> FloorReport | None:
    """The plant floor fields of a heartbeat, or None when it carries none of them (an agent without a model)."""
    if all(body.get(key) is None for key in FLOOR_FIELDS):
        return None
    drift = body.get("drift")
    if drift is not None and (isinstance(drift, bool) or not isinstance(drift, (int, float))
                              or not math.isfinite(drift) or not 0 <= drift <= MAX_DRIFT):
        raise ValidationError("drift", f"must be a finite number between 0 and {MAX_DRIFT}, got {str(drift)[:40]!r}")
    return FloorReport(released_model=_reported_model(body.get("released_model")),
                       scored_rows=_count(body, "scored_rows", MAX_SCORED_ROWS),
                       alerts_open=_count(body, "alerts_open", MAX_ALERTS),
                       drift=None if drift is None else round(float(drift), 6))
