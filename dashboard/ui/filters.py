"""Template filters of every page: `ago` (how long since a time), `num` (a metric, or a dash when missing) and
`epoch` (a plant's epoch-second time, as UTC)."""

from __future__ import annotations

from datetime import datetime, timezone

from dashboard.models.base import utcnow
from dashboard.ui import bp


def ago(value) -> str:
    """How long since `value`: a naive UTC datetime, or the API's ISO 8601 text of one."""
    if value is None:
        return "never"
    if isinstance(value, str):
        value = datetime.fromisoformat(value).astimezone(timezone.utc).replace(tzinfo=None)
    seconds = int((utcnow() - value).total_seconds())
    if seconds < 90:
        return f"{seconds} s ago"
    if seconds < 5400:
        return f"{seconds // 60} min ago"
    return f"{seconds // 3600} h ago"


@bp.app_template_filter("ago")
def ago_filter(value):
    return ago(value)


@bp.app_template_filter("threshold")
def threshold_filter(value):
    """A decision threshold: six significant digits (thresholds sit on log-odds bin edges, up to 0.9999546, where
    three decimals would all read 1.000)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "–"
    return f"{value:.6g}"


@bp.app_template_filter("num")
def num_filter(value, digits: int = 3):
    if isinstance(value, bool) or not isinstance(value, (int, float)):  # None, missing (Undefined), text
        return "–"
    return f"{value:.{digits}f}"


@bp.app_template_filter("truncate_family")
def family_filter(action: str) -> str:
    """An audit action's family: "experiment" for "experiment.cancel" (the audit filter matches a whole family)."""
    return str(action).split(".", 1)[0]


@bp.app_template_filter("epoch")
def epoch_filter(value):
    """A time a plant reported in seconds since 1970, as UTC text; a dash when missing."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "–"
    return datetime.fromtimestamp(value, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
