"""Neural networks for failure prediction (seed 000's three families).

- `cnn`: a 1-D convolution over a tabular row's features plus a linear path, for row-by-row scoring;
- `lstm`: an LSTM over a window of consecutive cycles of one machine;
- `hybrid`: a CNN-LSTM: a temporal convolution extracts local patterns, an LSTM reads them in order.

Each outputs one logit per input (failure vs. normal). Weights cross the wire as a dict of numpy arrays
(see shared.serialization), never pickled objects. (dashboard/models/ holds the database models.)
"""

from __future__ import annotations

from shared.model_spec import ModelSpec

# torch is imported only when a network is built or read (shared.networks): a plant at rest, the agent and the
# protocol parser need ModelSpec alone (issue #17: a plant's memory at rest).
_NETWORK_NAMES = frozenset({"TabularCNN", "SequenceLSTM", "CNNLSTM", "build_model", "get_weights", "set_weights"})

__all__ = ["ModelSpec", *sorted(_NETWORK_NAMES)]


def __getattr__(name: str):
    if name in _NETWORK_NAMES:
        from shared import networks

        return getattr(networks, name)
    raise AttributeError(f"module 'shared.models' has no attribute {name!r}")
