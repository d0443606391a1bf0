"""What a registrant may send (DESIGN §4) beyond its message's field types (shared.protocol.registry), checked at
the boundary before anything is stored: the plant's address (no SSRF: dashboard.registry.addresses, against this
dashboard's DASHBOARD_ALLOW_PRIVATE_PLANTS) and its capabilities against a closed schema.

A plant's capabilities drive every later round (the feature schema is merged across plants, the model is
built from it), so a broken or empty schema is a 400 here rather than a failure of every running experiment.
"""

from __future__ import annotations

from flask import current_app

from shared.errors import ValidationError
from dashboard.registry.addresses import AddressRefused, check_plant_host, check_plant_port
from shared.data.schema import FeatureSchema
from shared.enums import DataType, ModelType

MAX_FEATURES = 4096
MAX_NAME = 200  # a column, category or feature name
MAX_SAMPLES = 10 ** 12
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
