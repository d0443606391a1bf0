"""The Models page's per-plant view of deployments (issue 27 item 1): for every registered plant and every plant
ever deployed a model, the release it is assigned (dashboard.services.deployments) beside the one its last
heartbeat reported scoring with, whether it is pinned, and the release a roll back would return it to.
`GET /api/deployments` and the Models page both read `plant_models`."""

from __future__ import annotations

from dashboard.extensions import db
from dashboard.models import Deployment, Factory
from dashboard.models.base import isoformat
from dashboard.services.deployments import stack


def plant_models() -> list[dict]:
    """One entry per plant, by name."""
    histories: dict[str, list[Deployment]] = {}
    for row in db.session.scalars(db.select(Deployment).order_by(Deployment.id)):
        histories.setdefault(row.factory_name, []).append(row)
    plants = {f.name: f for f in db.session.scalars(db.select(Factory))}
    return [_entry(name, plants.get(name), histories.get(name, [])) for name in sorted(set(plants) | set(histories))]


def _entry(name: str, plant: Factory | None, rows: list[Deployment]) -> dict:
    now = rows[-1] if rows else None
    releases = stack(rows)
    reported = None if plant is None or plant.released_model_id is None else {
        "id": plant.released_model_id, "kind": plant.released_model_kind}
    assigned = None if now is None else {"release_id": now.release_id, "pinned": now.pinned, "by": now.actor,
                                         "at": isoformat(now.at), "action": now.action}
    decommissioned = plant is not None and plant.decommissioned_at is not None
    return {"plant": name, "registered": plant is not None, "decommissioned": decommissioned,
            "status": "decommissioned" if decommissioned else plant.status if plant else None,
            "assigned": assigned, "reported": reported,
            "in_sync": (now.release_id if now else None) == (reported["id"] if reported else None),
            "roll_back_to": releases[-2] if len(releases) >= 2 else None}
