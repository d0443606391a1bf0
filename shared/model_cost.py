"""What running a model costs, told from its spec alone (no torch, nothing allocated): the activation values one
example's forward pass holds and the floating-point operations it takes, for every family of shared.networks
(a test pins the two together), and from those the work of a whole request.

A plant bounds its work by these numbers (factory_agent.plant.policy), not by the parameter count: a model of
239k parameters over 4,096 features and 256 channels holds 4 million activation values per row in its
convolutions (issue 24), a hundred times the product's largest default model.

Counting: a multiply-add is 2 operations; every activation value costs one more (ReLU, pooling, the LSTM's
gates). Values are the tensors a forward pass makes, input included, as if none were freed early: an upper
bound of what a batch holds at once. A training pass is TRAINING_PASSES forward passes of work (the backward
pass is about twice the forward, Kaplan et al. 2020, "Scaling Laws for Neural Language Models", §2.1) and holds
TRAINING_VALUES times the forward values (the saved activations and their gradients).
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.enums import ModelType
from shared.model_spec import ModelSpec

TRAINING_PASSES = 3
TRAINING_VALUES = 2


@dataclass(frozen=True)
class ExampleCost:
    """One example's forward pass (a row, or a window of sequence_length rows)."""

    values: int  # activation values it makes, input included
    flops: int  # floating-point operations


def example_cost(spec: ModelSpec) -> ExampleCost:
    family = ModelType(spec.model_type)
    if family is ModelType.CNN:
        return _cnn(spec)
    if family is ModelType.MLP:
        return _mlp(spec)
    return _recurrent(spec, hybrid=family is ModelType.HYBRID)


def _cnn(spec: ModelSpec) -> ExampleCost:
    """shared.networks.TabularCNN: two convolutions of width 3 over the row's features, a linear path, the head."""
    f, h, c = spec.num_features, spec.hidden_size, spec.channels
    macs = 3 * c * f + 3 * c * c * f + f * h + (h + 4 * c) * h + h
    values = f + 4 * c * f + 4 * c + h + 3 * (h + 4 * c) + 2 * h + 1  # conv, ReLU, conv, ReLU; pool; head
    return ExampleCost(values=values, flops=2 * macs + values)


def _mlp(spec: ModelSpec) -> ExampleCost:
    """shared.networks.TabularMLP: embed, cross layers (linear, product, sum), residual blocks, head."""
    f, h, crosses, blocks = spec.num_features, spec.hidden_size, spec.cross_layers, spec.num_layers
    macs = f * h + crosses * h * h + blocks * 2 * h * h + h
    values = f + h + crosses * 3 * h + blocks * 7 * h + 3 * h + 1
    return ExampleCost(values=values, flops=2 * macs + values)


def _recurrent(spec: ModelSpec, hybrid: bool) -> ExampleCost:
    """shared.networks.SequenceLSTM, or CNNLSTM (a convolution of width 3 to 2 x channels first), over a window of
    sequence_length rows: per layer and step, four gates of hidden_size over the input and the hidden state."""
    t, f, h, layers = spec.sequence_length, spec.num_features, spec.hidden_size, spec.num_layers
    width, macs, values = f, 0, 2 * t * f  # the window, and its transposed copy
    if hybrid:
        width = 2 * spec.channels
        macs += 3 * f * width * t
        values += 3 * t * width  # the convolution, its ReLU, the transposed copy
    for layer in range(layers):
        macs += t * 4 * h * ((width if layer == 0 else h) + h)
        values += t * 10 * h  # four gates, their activations, the cell and hidden states
    macs += h
    values += 2 * h + 1
    return ExampleCost(values=values, flops=2 * macs + values)


def evaluation_flops(spec: ModelSpec, examples: int) -> int:
    """Scoring `examples` examples (forward passes only)."""
    return examples * example_cost(spec).flops


def training_flops(spec: ModelSpec, examples: int, epochs: int) -> int:
    """`epochs` passes of training over `examples` examples."""
    return epochs * examples * TRAINING_PASSES * example_cost(spec).flops


def batch_values(spec: ModelSpec, batch: int, training: bool) -> int:
    """The activation values a batch of `batch` examples holds at once."""
    return batch * example_cost(spec).values * (TRAINING_VALUES if training else 1)


def evaluation_batch(spec: ModelSpec, max_values: int, largest: int) -> int:
    """The most examples a scoring batch may hold within `max_values` activation values: at least 1, at most
    `largest`."""
    return max(1, min(largest, max_values // max(1, example_cost(spec).values)))
