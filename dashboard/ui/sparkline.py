"""Inline SVG sparklines, drawn on the server so the factories page needs no JavaScript."""

from __future__ import annotations

from markupsafe import Markup


def sparkline(values: list[float | None], width: int = 90, height: int = 22, ceiling: float = 100.0) -> Markup:
    points = [v for v in values if v is not None]
    if len(points) < 2:
        return Markup('<span class="muted">–</span>')
    step = width / (len(points) - 1)
    coords = " ".join(f"{i * step:.1f},{height - min(max(v, 0.0), ceiling) / ceiling * (height - 2) - 1:.1f}"
                      for i, v in enumerate(points))
    label = f"CPU over the last {len(points)} heartbeats: from {points[0]:.0f} % to {points[-1]:.0f} %"
    return Markup(f'<svg class="spark" width="{width}" height="{height}" role="img" aria-label="{label}">'
                  f'<title>{label}</title><polyline fill="none" stroke="#3b82f6" stroke-width="1.5" '
                  f'points="{coords}"/></svg>')
