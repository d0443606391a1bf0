"""The torch half of shared.models: the three network families and weight access (imported only when a model is
built, so that a plant at rest never loads torch; `shared.models` re-exports every name here)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from shared.enums import ModelType
from shared.errors import ModelError
from shared.model_spec import ModelSpec


class TabularCNN(nn.Module):
    def __init__(self, spec: ModelSpec):
        super().__init__()
        c = spec.channels
        self.conv = nn.Sequential(
            nn.Conv1d(1, c, kernel_size=3, padding=1), nn.ReLU(),
            nn.Conv1d(c, c, kernel_size=3, padding=1), nn.ReLU(),
            nn.AdaptiveMaxPool1d(4))
        self.linear = nn.Linear(spec.num_features, spec.hidden_size)
        self.head = nn.Sequential(nn.ReLU(), nn.Dropout(spec.dropout),
                                  nn.Linear(spec.hidden_size + 4 * c, spec.hidden_size), nn.ReLU(),
                                  nn.Linear(spec.hidden_size, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (batch, features)
        conv = self.conv(x.unsqueeze(1)).flatten(1)
        return self.head(torch.cat([self.linear(x), conv], dim=1)).squeeze(1)


class SequenceLSTM(nn.Module):
    def __init__(self, spec: ModelSpec):
        super().__init__()
        self.lstm = nn.LSTM(spec.num_features, spec.hidden_size, num_layers=spec.num_layers,
                            batch_first=True, dropout=spec.dropout if spec.num_layers > 1 else 0.0)
        self.head = nn.Sequential(nn.Dropout(spec.dropout), nn.Linear(spec.hidden_size, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (batch, time, features)
        out, _ = self.lstm(x)
        return self.head(out[:, -1]).squeeze(1)


class CNNLSTM(nn.Module):
    def __init__(self, spec: ModelSpec):
        super().__init__()
        self.conv = nn.Sequential(nn.Conv1d(spec.num_features, spec.channels * 2, kernel_size=3, padding=1),
                                  nn.ReLU())
        self.lstm = nn.LSTM(spec.channels * 2, spec.hidden_size, num_layers=spec.num_layers, batch_first=True)
        self.head = nn.Sequential(nn.Dropout(spec.dropout), nn.Linear(spec.hidden_size, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (batch, time, features)
        local = self.conv(x.transpose(1, 2)).transpose(1, 2)
        out, _ = self.lstm(local)
        return self.head(out[:, -1]).squeeze(1)


_FAMILIES = {ModelType.CNN: TabularCNN, ModelType.LSTM: SequenceLSTM, ModelType.HYBRID: CNNLSTM}


def build_model(spec: ModelSpec, seed: int | None = None) -> nn.Module:
    """A freshly initialised model; the same seed gives the same initial weights."""
    if seed is not None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return _FAMILIES[ModelType(spec.model_type)](spec)
    return _FAMILIES[ModelType(spec.model_type)](spec)


def get_weights(model: nn.Module) -> dict[str, np.ndarray]:
    return {k: v.detach().cpu().numpy().copy() for k, v in model.state_dict().items()}


def set_weights(model: nn.Module, weights: dict[str, np.ndarray]) -> None:
    expected = model.state_dict()
    missing = set(expected) - set(weights)
    unexpected = set(weights) - set(expected)
    if missing or unexpected:
        raise ModelError(f"weights do not fit the model: missing {sorted(missing)}, unexpected {sorted(unexpected)}")
    for name, tensor in expected.items():
        if tuple(np.shape(weights[name])) != tuple(tensor.shape):
            raise ModelError(f"weight {name!r} has shape {np.shape(weights[name])}, the model expects "
                             f"{tuple(tensor.shape)}")
    model.load_state_dict({k: torch.as_tensor(np.asarray(v)) for k, v in weights.items()})
