"""FactoryFL shared package: what the dashboard and the factory agents both import."""

# 0.4: score histograms of 400 log-odds bins (shared.metrics), which 0.3 plants and dashboards cannot read
__version__ = "0.4.0"


def release_line(version: str) -> str:
    """The part of a version that must match for a dashboard and an agent to talk: "1" for 1.2.3, "0.4" for
    0.4.1 (semantic versioning lets a 0.x minor break compatibility)."""
    parts = str(version).split(".")
    return parts[0] if parts[0] != "0" else ".".join(parts[:2])
