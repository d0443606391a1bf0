"""FedPer's split (shared.fedper): only the head stays trainable; a network without a head is refused."""

import pytest

from shared.errors import ModelError
from shared.fedper import freeze_body, is_head
from shared.models import ModelSpec, build_model


@pytest.mark.parametrize("model_type", ["cnn", "lstm", "hybrid"])
def test_fedper_freezes_every_layer_but_the_head(model_type):
    model = build_model(ModelSpec(model_type, 5, sequence_length=4), seed=0)
    trainable = freeze_body(model)
    assert trainable and all(is_head(n) for n in trainable)
    assert all(p.requires_grad == is_head(n) for n, p in model.named_parameters())
    assert any(not p.requires_grad for p in model.parameters())


def test_a_model_without_a_head_cannot_be_personalized():
    from torch import nn

    with pytest.raises(ModelError, match="no head"):
        freeze_body(nn.Linear(3, 1))
