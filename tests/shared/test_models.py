import numpy as np
import pytest
import torch

from shared.errors import ModelError
from shared.models import ModelSpec, build_model, get_weights, set_weights


@pytest.mark.parametrize("model_type,shape", [("cnn", (7, 5)), ("mlp", (7, 5)), ("lstm", (7, 12, 5)),
                                              ("hybrid", (7, 12, 5))])
def test_each_family_gives_one_logit_per_input(model_type, shape):
    spec = ModelSpec(model_type, num_features=5, sequence_length=12 if len(shape) == 3 else 1)
    assert build_model(spec, seed=0)(torch.randn(*shape)).shape == (7,)


def test_same_seed_same_initial_weights_and_weights_round_trip_as_numpy():
    spec = ModelSpec("lstm", 4, 6)
    a, b = get_weights(build_model(spec, seed=1)), get_weights(build_model(spec, seed=1))
    assert all(np.array_equal(a[k], b[k]) for k in a)
    model = build_model(spec, seed=2)
    set_weights(model, a)
    assert all(np.array_equal(get_weights(model)[k], a[k]) for k in a)


def test_mismatched_weights_and_bad_specs_are_model_errors():
    model = build_model(ModelSpec("cnn", 4))
    weights = get_weights(build_model(ModelSpec("cnn", 5)))
    with pytest.raises(ModelError, match="has shape"):
        set_weights(model, weights)
    with pytest.raises(ModelError, match="sequence_length >= 2"):
        ModelSpec("lstm", 4, 1)
    with pytest.raises(ModelError, match="unknown model_type"):
        ModelSpec("transformer", 4)


@pytest.mark.parametrize("spec", [ModelSpec("mlp", 9), ModelSpec("mlp", 9, hidden_size=8, num_layers=3, cross_layers=0),
                                  ModelSpec("cnn", 9)])
def test_the_row_models_are_layers_opacus_computes_per_sample_gradients_for(spec):
    from opacus.validators import ModuleValidator

    model = build_model(spec, seed=0)
    assert ModuleValidator.validate(model, strict=False) == []
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules())


def test_the_mlp_crosses_its_embedding_as_dcn_v2_says():
    """x_{l+1} = x_0 * (W_l x_l + b_l) + x_l with x_0 the embedding, then the residual blocks and the head."""
    spec = ModelSpec("mlp", 4, hidden_size=6, num_layers=1, cross_layers=2, dropout=0.0)
    model = build_model(spec, seed=3).eval()
    x = torch.randn(5, 4)
    x0 = model.embed(x)
    x1 = x0 * model.cross[0](x0) + x0
    x2 = x0 * model.cross[1](x1) + x1
    block = model.blocks[0]
    x3 = x2 + block.outer(torch.relu(block.inner(block.norm(x2))))
    expected = model.head[2](torch.relu(model.head[0](x3))).squeeze(1)
    torch.testing.assert_close(model(x), expected)


def test_an_mlp_spec_keeps_its_cross_layers_and_the_others_do_not_store_one():
    spec = ModelSpec("mlp", 4, cross_layers=3)
    assert ModelSpec.from_dict(spec.to_dict()) == spec
    assert "cross_layers" not in ModelSpec("cnn", 4).to_dict()
    with pytest.raises(ModelError, match="cross_layers"):
        ModelSpec("mlp", 4, cross_layers=-1)


def test_opacus_per_sample_gradients_of_the_mlp_are_each_examples_own():
    """DP-SGD clips each example's gradient: Opacus's must equal the gradient of that example alone (the cross
    layers reuse x_0, which a per-sample hook could get wrong)."""
    import warnings

    from opacus import GradSampleModule

    spec = ModelSpec("mlp", 6, hidden_size=8, num_layers=1, cross_layers=2, dropout=0.0)
    x = torch.randn(4, 6)
    private = GradSampleModule(build_model(spec, seed=0), loss_reduction="sum")
    with warnings.catch_warnings():  # torch: the first layer's input needs no gradient (expected)
        warnings.simplefilter("ignore", UserWarning)
        private(x).sum().backward()
    alone = build_model(spec, seed=0)
    names = [n for n, _ in alone.named_parameters()]
    per_sample = {n.removeprefix("_module."): p.grad_sample for n, p in private.named_parameters()}
    for i in range(len(x)):
        grads = torch.autograd.grad(alone(x[i:i + 1]).sum(), list(alone.parameters()))
        for name, grad in zip(names, grads):
            torch.testing.assert_close(per_sample[name][i], grad, atol=1e-5, rtol=1e-4)
