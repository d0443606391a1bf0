"""A model's description (family and sizes): plain data, no torch (shared.networks builds the model)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from shared.enums import ModelType
from shared.errors import ModelError


# the MLP's residual blocks and cross layers, chosen on validation F1 over two data shapes and five seeds
# (bench/mlp_grid.py; README "Tabular models"): 1 or 3 blocks, or 0, 1, 2, 4 cross layers, did worse
MLP_BLOCKS = 2
MLP_CROSS_LAYERS = 3


@dataclass(frozen=True)
class ModelSpec:
    model_type: str
    num_features: int
    sequence_length: int = 1
    hidden_size: int = 64
    channels: int = 16
    num_layers: int = 1  # LSTM layers; the MLP's residual blocks
    dropout: float = 0.1
    cross_layers: int = MLP_CROSS_LAYERS  # the MLP's DCN-V2 cross layers (0: none); other families ignore it

    def __post_init__(self) -> None:
        if self.model_type not in ModelType.values():
            raise ModelError(f"unknown model_type {self.model_type!r}; use one of {ModelType.values()}")
        if self.num_features < 1:
            raise ModelError("a model needs at least one input feature")
        if self.cross_layers < 0:
            raise ModelError(f"cross_layers must be >= 0, got {self.cross_layers}")
        if ModelType(self.model_type).is_sequence and self.sequence_length < 2:
            raise ModelError(f"{self.model_type} needs sequence_length >= 2, got {self.sequence_length}")

    @property
    def is_sequence(self) -> bool:
        return ModelType(self.model_type).is_sequence

    def to_dict(self) -> dict:
        """The stored form (bundles, the wire); cross_layers only for the MLP, so the other families' specs
        stay as they were before it existed."""
        out = asdict(self)
        if self.model_type != ModelType.MLP.value:
            out.pop("cross_layers")
        return out

    @classmethod
    def from_dict(cls, d: dict) -> "ModelSpec":
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


def weight_shapes(spec: ModelSpec) -> dict[str, tuple[int, ...]]:
    """The name and shape of every weight of the network `spec` describes (shared.networks; a test pins the two
    together), told without torch: a plant checks a bundle against its spec, and counts its parameters, before
    it builds anything."""
    f, h, c = spec.num_features, spec.hidden_size, spec.channels
    if ModelType(spec.model_type) is ModelType.MLP:
        return _mlp_shapes(spec)
    if ModelType(spec.model_type) is ModelType.CNN:
        return {"conv.0.weight": (c, 1, 3), "conv.0.bias": (c,), "conv.2.weight": (c, c, 3), "conv.2.bias": (c,),
                "linear.weight": (h, f), "linear.bias": (h,), "head.2.weight": (h, h + 4 * c), "head.2.bias": (h,),
                "head.4.weight": (1, h), "head.4.bias": (1,)}
    shapes: dict[str, tuple[int, ...]] = {}
    width = f
    if ModelType(spec.model_type) is ModelType.HYBRID:
        shapes.update({"conv.0.weight": (2 * c, f, 3), "conv.0.bias": (2 * c,)})
        width = 2 * c
    for layer in range(spec.num_layers):
        shapes.update({f"lstm.weight_ih_l{layer}": (4 * h, width if layer == 0 else h),
                       f"lstm.weight_hh_l{layer}": (4 * h, h),
                       f"lstm.bias_ih_l{layer}": (4 * h,), f"lstm.bias_hh_l{layer}": (4 * h,)})
    shapes.update({"head.1.weight": (1, h), "head.1.bias": (1,)})
    return shapes


def _mlp_shapes(spec: ModelSpec) -> dict[str, tuple[int, ...]]:
    """shared.networks.TabularMLP: embed, cross layers, residual blocks, head."""
    f, h = spec.num_features, spec.hidden_size
    shapes: dict[str, tuple[int, ...]] = {"embed.weight": (h, f), "embed.bias": (h,)}
    for layer in range(spec.cross_layers):
        shapes.update({f"cross.{layer}.weight": (h, h), f"cross.{layer}.bias": (h,)})
    for block in range(spec.num_layers):
        shapes.update({f"blocks.{block}.norm.weight": (h,), f"blocks.{block}.norm.bias": (h,),
                       f"blocks.{block}.inner.weight": (h, h), f"blocks.{block}.inner.bias": (h,),
                       f"blocks.{block}.outer.weight": (h, h), f"blocks.{block}.outer.bias": (h,)})
    shapes.update({"head.0.weight": (h,), "head.0.bias": (h,), "head.2.weight": (1, h), "head.2.bias": (1,)})
    return shapes


def parameter_count(spec: ModelSpec) -> int:
    """How many parameters the network of `spec` has (nothing is allocated)."""
    return sum(math.prod(shape) for shape in weight_shapes(spec).values())
