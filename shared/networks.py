"""The torch half of shared.models: the network families and weight access (imported only when a model is
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


class ResidualBlock(nn.Module):
    """A pre-norm residual MLP block, x + Dropout(W2 Dropout(ReLU(W1 LayerNorm(x)))) (the tabular ResNet of
    Gorishniy et al., "Revisiting Deep Learning Models for Tabular Data", NeurIPS 2021). LayerNorm, not
    BatchNorm: batch norm's running statistics are each plant's own, and averaging them across non-IID plants
    breaks FedAvg (Li et al., "FedBN", ICLR 2021); LayerNorm normalises each row and keeps no statistics."""

    def __init__(self, width: int, dropout: float):
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.inner = nn.Linear(width, width)
        self.outer = nn.Linear(width, width)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.dropout(self.outer(self.dropout(torch.relu(self.inner(self.norm(x))))))


class TabularMLP(nn.Module):
    """The tabular model: embed -> DCN-V2 cross layers -> residual MLP blocks -> head (one logit per row).

    Embedding: the category columns reach the model one-hot (shared.data.schema.FeatureSchema.encode, then the
    federated scaler), so `embed`, one linear layer over the whole row, IS an embedding of each category (the
    column of W for a category's one-hot input is that category's h-dimensional vector, up to the scaler's
    affine shift) summed with a linear projection of the numeric features; no separate lookup table is faked.
    Cross layers (Wang et al., "DCN V2", WWW 2021, eq. 1): x_{l+1} = x_0 * (W_l x_l + b_l) + x_l with x_0 the
    embedding, so l layers hold explicit feature crosses up to degree l + 1 (torque x speed is power, wear x
    torque is overstrain). Every layer is a Linear or LayerNorm: Opacus computes their per-sample gradients."""

    def __init__(self, spec: ModelSpec):
        super().__init__()
        h = spec.hidden_size
        self.embed = nn.Linear(spec.num_features, h)
        self.cross = nn.ModuleList(nn.Linear(h, h) for _ in range(spec.cross_layers))
        self.blocks = nn.Sequential(*(ResidualBlock(h, spec.dropout) for _ in range(spec.num_layers)))
        self.head = nn.Sequential(nn.LayerNorm(h), nn.ReLU(), nn.Linear(h, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (batch, features)
        x0 = self.embed(x)
        out = x0
        for layer in self.cross:
            out = x0 * layer(out) + out
        return self.head(self.blocks(out)).squeeze(1)


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


_FAMILIES = {ModelType.CNN: TabularCNN, ModelType.MLP: TabularMLP, ModelType.LSTM: SequenceLSTM,
             ModelType.HYBRID: CNNLSTM}


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
