"""FedPer's split of a network (Arivazhagan et al. 2019, "Federated learning with personalization layers"):
every network of shared.networks names its last layers `head.*`, the personalization layers; the body,
everything else, holds the federated base layers. Used by training (a head-only round) and personalization
alike; imports no torch, so importing it costs nothing at a plant at rest."""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.errors import ModelError

if TYPE_CHECKING:
    from torch import nn

HEAD = "head."


def is_head(name: str) -> bool:
    """A parameter of the personal head (FedPer's personalization layers)."""
    return name.startswith(HEAD)


def freeze_body(model: nn.Module) -> list[str]:
    """FedPer: requires_grad off for every parameter outside the head (W_B, the federated base layers), on for
    the head's (W_P, the personalization layers), Arivazhagan et al. 2019 §3; the names left trainable.
    ModelError when the model has no head to personalize."""
    trainable = []
    for name, parameter in model.named_parameters():
        parameter.requires_grad_(is_head(name))
        if is_head(name):
            trainable.append(name)
    if not trainable:
        raise ModelError("the model has no head layers (head.*) to personalize")
    return trainable
