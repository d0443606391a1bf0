"""The plant's choice of model on its floor (issue #15 item 4, DESIGN §10): `--model-choice global|personalized|best`.

When a released model belongs to an experiment this plant personalized (factory_agent.plant.personal keeps the
personalized model in its state folder: factory_agent.plant.personal_models, read here without torch), the plant
may score with its own model instead: `personalized` always, `best` (the default) when its validation F1 at its
own threshold is above the global model's on this plant's validation split, `global` never. The personalized model has the released bundle's spec, schema and scaler (it
was fine-tuned from the experiment's global model), its own weights and threshold, and is checked as any bundle
(delivery.check_bundle); it reports itself with kind "personalized"."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

from factory_agent.floor.delivery import MAX_PARAMETERS, InstalledModel, check_bundle
from factory_agent.plant.personal_models import PersonalModels, chosen_threshold
from shared.errors import FederatedLearningError
from shared.personalization import preferred

log = logging.getLogger(__name__)
CHOICES = ("global", "personalized", "best")


def _validation_f1(meta: dict, kind: str) -> float | None:
    value = ((meta.get("scores") or {}).get(kind) or {}).get("val_f1")
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


class ModelChooser:
    """ModelDelivery's `choose`: the released model, or this plant's personalized model of the same experiment."""

    def __init__(self, state_dir: Path, choice: str = "best", max_parameters: int = MAX_PARAMETERS):
        if choice not in CHOICES:
            raise ValueError(f"model choice {choice!r} is not one of {CHOICES}")
        self.store = PersonalModels(state_dir)
        self.choice = choice
        self.max_parameters = max_parameters

    def __call__(self, released: InstalledModel) -> InstalledModel:
        experiment = released.bundle.source.get("experiment_id")
        if self.choice == "global" or isinstance(experiment, bool) or not isinstance(experiment, int) or \
                experiment < 1:
            return released
        kept = self.store.load(experiment, "personalized")
        if kept is None:
            return released
        weights, meta = kept
        if preferred(self.choice, _validation_f1(meta, "global"), _validation_f1(meta, "personalized")) == "global":
            log.info("released model #%d: this plant's personalized model of experiment %d is not better on its "
                     "validation split; scoring with the global model", released.id, experiment)
            return released
        threshold = chosen_threshold(meta)
        bundle = dataclasses.replace(released.bundle, weights=weights,
                                     threshold=released.bundle.threshold if threshold is None else threshold,
                                     source={**released.bundle.source, "personalized": meta.get("mode")})
        try:
            check_bundle(bundle, self.max_parameters)
        except FederatedLearningError as exc:
            log.warning("this plant's personalized model of experiment %d does not fit the released bundle (%s): "
                        "scoring with the global model", experiment, exc)
            return released
        log.info("released model #%d: scoring with this plant's personalized model of experiment %d (%s)",
                 released.id, experiment, self.choice)
        return InstalledModel(released.id, released.sha256, bundle, kind="personalized")
