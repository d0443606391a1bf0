"""shared.model_cost against the networks it describes: the operations torch counts in a real forward pass, and
the activation values its modules make."""

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from shared import model_cost
from shared.model_spec import ModelSpec
from shared.networks import build_model

ROW_SPECS = [ModelSpec("cnn", 12), ModelSpec("cnn", 12, hidden_size=256), ModelSpec("cnn", 40, channels=64),
             ModelSpec("mlp", 12, num_layers=2), ModelSpec("mlp", 40, hidden_size=128, num_layers=3, cross_layers=0)]
SEQUENCE_SPECS = [ModelSpec("lstm", 12, sequence_length=10), ModelSpec("lstm", 30, sequence_length=20, num_layers=3),
                  ModelSpec("hybrid", 12, sequence_length=10), ModelSpec("hybrid", 30, sequence_length=20, channels=64,
                                                                         num_layers=2)]


def _input(spec: ModelSpec, batch: int = 2) -> torch.Tensor:
    shape = (batch, spec.sequence_length, spec.num_features) if spec.is_sequence else (batch, spec.num_features)
    return torch.zeros(shape)


def _measured(spec: ModelSpec) -> tuple[float, float]:
    """(operations torch counts, values the leaf modules output) of one example's forward pass."""
    model, made = build_model(spec).eval(), [0]

    def count(_module, _inputs, out):
        made[0] += (out[0] if isinstance(out, tuple) else out).numel()

    for module in model.modules():
        if not list(module.children()):
            module.register_forward_hook(count)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(_input(spec))
    return counter.get_total_flops() / 2, made[0] / 2


@pytest.mark.parametrize("spec", ROW_SPECS, ids=lambda s: f"{s.model_type}-{s.num_features}-{s.hidden_size}")
def test_row_models_cost_what_torch_counts(spec):
    flops, values = _measured(spec)
    cost = model_cost.example_cost(spec)
    assert flops <= cost.flops <= 1.1 * flops  # the matmuls and convolutions, plus one per activation value
    assert values <= cost.values <= 2 * values  # an upper bound: the input and the concatenations count too


@pytest.mark.parametrize("spec", SEQUENCE_SPECS, ids=lambda s: f"{s.model_type}-{s.num_layers}")
def test_sequence_models_cost_an_lstm_step_as_one_affine_map_to_four_gates(spec):
    """torch does not count nn.LSTM's fused kernel; an LSTM step is one affine map of [x_t, h_t-1] to the four
    gates (torch.nn.LSTM's documentation), so the same model with that map as an nn.Linear, counted by torch,
    is the reference."""
    h, t = spec.hidden_size, spec.sequence_length
    width = 2 * spec.channels if spec.model_type == "hybrid" else spec.num_features
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        if spec.model_type == "hybrid":
            nn.Conv1d(spec.num_features, width, 3, padding=1)(torch.zeros(1, spec.num_features, t))
        for layer in range(spec.num_layers):
            gates = nn.Linear((width if layer == 0 else h) + h, 4 * h)
            for _ in range(t):
                gates(torch.zeros(1, gates.in_features))
        nn.Linear(h, 1)(torch.zeros(1, h))
    reference = counter.get_total_flops()
    cost = model_cost.example_cost(spec)
    assert reference <= cost.flops <= 1.1 * reference
    _, values = _measured(spec)
    assert cost.values >= values


def test_the_cost_attack_of_issue_24_costs_thousands_of_times_the_default_model():
    """One model over 4,096 absent features and 256 channels (within the parameter limit) against the product's
    default CNN: the convolutions hold 4 values per feature and channel, and 3 x channels^2 operations each."""
    attack = model_cost.example_cost(ModelSpec("cnn", 4096, channels=256, hidden_size=16))
    default = model_cost.example_cost(ModelSpec("cnn", 12))
    assert attack.values > 4_000_000 and attack.flops > 1.6e9
    assert attack.flops > 10_000 * default.flops and attack.values > 2_000 * default.values


def test_the_work_of_a_request_grows_with_its_rows_epochs_and_batch():
    spec = ModelSpec("lstm", 12, sequence_length=10)
    one = model_cost.example_cost(spec)
    assert model_cost.evaluation_flops(spec, 100) == 100 * one.flops
    assert model_cost.training_flops(spec, 100, 4) == 4 * 100 * model_cost.TRAINING_PASSES * one.flops
    assert model_cost.batch_values(spec, 64, training=True) == 64 * one.values * model_cost.TRAINING_VALUES
    assert model_cost.batch_values(spec, 64, training=False) == 64 * one.values


def test_an_evaluation_batch_holds_what_the_limit_allows_and_at_least_one_example():
    spec = ModelSpec("cnn", 12)
    per = model_cost.example_cost(spec).values
    assert model_cost.evaluation_batch(spec, 10 * per, 4096) == 10
    assert model_cost.evaluation_batch(spec, 10 ** 12, 4096) == 4096
    assert model_cost.evaluation_batch(spec, 1, 4096) == 1
