"""The model bundle (DESIGN §7): one safetensors file holding the weights and, in its metadata, the
model spec, the feature schema, the global scaler, the decision threshold and where it came from."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from shared.data.scaler import Scaler
from shared.data.schema import FeatureSchema
from shared.errors import ModelError
from shared.models import ModelSpec
from shared.serialization import metadata_from_bytes, weights_from_bytes, weights_to_bytes

FORMAT = "factoryfl-bundle/1"


@dataclass
class ModelBundle:
    spec: ModelSpec
    schema: FeatureSchema
    scaler: Scaler
    weights: dict[str, np.ndarray]
    threshold: float = 0.5
    source: dict = field(default_factory=dict)  # experiment id / name / round / metrics

    @property
    def fill_values(self) -> np.ndarray:
        """What a missing numeric value is read as: the federation's mean of that column (the global scaler's)."""
        return np.asarray(self.scaler.mean[:len(self.schema.numeric_columns)], dtype=np.float64)

    def to_bytes(self) -> bytes:
        meta = {"format": FORMAT, "spec": self.spec.to_dict(), "schema": self.schema.to_dict(),
                "scaler": self.scaler.to_dict(), "threshold": self.threshold,
                "source": self.source}
        return weights_to_bytes(self.weights, meta)

    @classmethod
    def from_bytes(cls, blob: bytes) -> "ModelBundle":
        meta = metadata_from_bytes(blob)
        if meta.get("format") != FORMAT:
            raise ModelError(f"unsupported bundle format {meta.get('format')!r}; expected {FORMAT}")
        return cls(spec=ModelSpec.from_dict(meta["spec"]), schema=FeatureSchema.from_dict(meta["schema"]),
                   scaler=Scaler.from_dict(meta["scaler"]), weights=weights_from_bytes(blob),
                   threshold=float(meta["threshold"]),
                   source=meta.get("source", {}))

    def save(self, path: str | Path) -> None:
        Path(path).write_bytes(self.to_bytes())

    @classmethod
    def load(cls, path: str | Path) -> "ModelBundle":
        path = Path(path)
        if not path.is_file():
            raise ModelError(f"model bundle {str(path)!r} does not exist")
        return cls.from_bytes(path.read_bytes())
