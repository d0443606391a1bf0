"""GET /api/docs: the OpenAPI document (dashboard.api.openapi) rendered as one server-side HTML page, with no
script and nothing fetched from the network; and the favicon at the path browsers ask for."""

from __future__ import annotations

from flask import render_template, send_from_directory, current_app

from dashboard.api.openapi import document
from dashboard.ui import bp

METHODS = ("get", "post", "put", "patch", "delete")


def _schema_text(schema: dict | None) -> str:
    """A parameter's or property's type in a few words: type, enum, range, default."""
    schema = schema or {}
    if "$ref" in schema:
        return schema["$ref"].rsplit("/", 1)[-1]
    if "oneOf" in schema:
        return " or ".join(_schema_text(s) for s in schema["oneOf"])
    words = [schema.get("type", "any")]
    if "enum" in schema:
        words.append("one of " + ", ".join(str(v) for v in schema["enum"]))
    if "minimum" in schema or "maximum" in schema:
        words.append(f"{schema.get('minimum', '…')} to {schema.get('maximum', '…')}")
    if "default" in schema:
        words.append(f"default {schema['default']}")
    return ", ".join(words)


def operations(spec: dict) -> list[dict]:
    """Every path and method of the document, in its order, with parameters and response codes."""
    found = []
    for path, item in spec["paths"].items():
        for method in METHODS:
            op = item.get(method)
            if op is None:
                continue
            body = (op.get("requestBody") or {}).get("content", {}).get("application/json", {}).get("schema")
            found.append({"method": method.upper(), "path": path, "summary": op.get("summary", ""),
                          "anchor": f"{method}-{path.strip('/').replace('/', '-').replace('{', '').replace('}', '')}",
                          "parameters": [{"name": p["name"], "in": p["in"], "required": p.get("required", False),
                                          "type": _schema_text(p.get("schema")),
                                          "description": p.get("description", "")} for p in op.get("parameters", [])],
                          "body": _schema_text(body) if body else None, "responses": sorted(op.get("responses", {}))})
    return found


def properties(schema: dict) -> list[dict]:
    """A request schema's fields (nested objects as part.field), for the page's table."""
    rows = []
    for name, prop in schema.get("properties", {}).items():
        if prop.get("type") == "object" and "properties" in prop:
            rows += [{**row, "name": f"{name}.{row['name']}"} for row in properties(prop)]
        else:
            rows.append({"name": name, "type": _schema_text(prop), "description": prop.get("description", "")})
    return rows


@bp.get("/api/docs")
def api_docs():
    spec = document()
    schemas = {name: properties(s) for name, s in spec["components"]["schemas"].items() if s.get("properties")}
    return render_template("api_docs.html", spec=spec, operations=operations(spec), schemas=schemas)


@bp.get("/favicon.ico")
def favicon():
    return send_from_directory(current_app.static_folder, "favicon.svg", mimetype="image/svg+xml", max_age=86400)
