"""A model's description (family and sizes): plain data, no torch (shared.networks builds the model)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from shared.enums import ModelType
from shared.errors import ModelError


@dataclass(frozen=True)
class ModelSpec:
    model_type: str
    num_features: int
    sequence_length: int = 1
    hidden_size: int = 64
    channels: int = 16
    num_layers: int = 1
    dropout: float = 0.1

    def __post_init__(self) -> None:
        if self.model_type not in ModelType.values():
            raise ModelError(f"unknown model_type {self.model_type!r}; use one of {ModelType.values()}")
        if self.num_features < 1:
            raise ModelError("a model needs at least one input feature")
        if ModelType(self.model_type).is_sequence and self.sequence_length < 2:
            raise ModelError(f"{self.model_type} needs sequence_length >= 2, got {self.sequence_length}")

    @property
    def is_sequence(self) -> bool:
        return ModelType(self.model_type).is_sequence

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ModelSpec":
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})
