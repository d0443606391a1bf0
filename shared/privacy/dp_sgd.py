"""Record-level DP-SGD inside a plant's training (Abadi et al., CCS 2016) with Opacus: per-sample gradient
clipping to C, Gaussian noise N(0, (sigma C)^2) on the clipped sum, Poisson sampling of batches at rate
q = batch_size / n, and Opacus's RDP accountant (Mironov 2017) over every step the plant ever took for the
experiment. The accountant's history is kept by the plant between rounds (its state folder), so the
epsilon it reports covers all its rounds."""

from __future__ import annotations

import json
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import DataLoader, TensorDataset

from shared.errors import SecurityError

log = logging.getLogger(__name__)
# Opacus's hooks on a model whose inputs need no gradient: torch warns at every backward; nothing is wrong
warnings.filterwarnings("ignore", message="Full backward hook is firing when gradients are computed")


@dataclass(frozen=True)
class DPSGDConfig:
    noise_multiplier: float
    max_grad_norm: float  # per-sample clipping bound C
    delta: float
    target_epsilon: float | None = None


def epsilon_of(history: list, delta: float) -> float:
    """epsilon at delta of Opacus RDP accountant history entries (noise multiplier, sample rate, steps)."""
    if not history:
        return 0.0
    from opacus.accountants import RDPAccountant

    accountant = RDPAccountant()
    accountant.history = [(float(s), float(q), int(n)) for s, q, n in history]
    return float(accountant.get_epsilon(delta))


class PrivacyLedger:
    """The plant's accountant history for one experiment, in its state folder."""

    def __init__(self, path: Path):
        self.path = path

    def load(self) -> list:
        return json.loads(self.path.read_text()) if self.path.exists() else []

    def save(self, history: list) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps([list(h) for h in history]))


def check_budget(config: DPSGDConfig, history: list, sample_rate: float, steps: int) -> float:
    """The epsilon after this round's steps; SecurityError when it would exceed the plant's target."""
    projected = epsilon_of(history + [(config.noise_multiplier, sample_rate, steps)], config.delta)
    if config.target_epsilon is not None and projected > config.target_epsilon:
        raise SecurityError(f"privacy budget exhausted: this round would bring the plant's epsilon to "
                            f"{projected:.3f} > target {config.target_epsilon} (spent "
                            f"{epsilon_of(history, config.delta):.3f} at delta {config.delta})")
    return projected


def make_private(model: torch.nn.Module, optimizer: torch.optim.Optimizer, num_examples: int, batch_size: int,
                 config: DPSGDConfig, history: list, seed: int):
    """(engine, private model, private optimizer, loader of example indices with Poisson sampling)."""
    from opacus import PrivacyEngine

    with warnings.catch_warnings():  # "secure RNG turned off": the noise comes from a seeded torch generator
        warnings.filterwarnings("ignore", message="Secure RNG turned off")
        engine = PrivacyEngine(accountant="rdp")
    engine.accountant.history = [tuple(h) for h in history]
    loader = DataLoader(TensorDataset(torch.arange(num_examples)), batch_size=min(batch_size, num_examples),
                        generator=torch.Generator().manual_seed(seed))
    private_model, private_optimizer, private_loader = engine.make_private(
        module=model, optimizer=optimizer, data_loader=loader, noise_multiplier=config.noise_multiplier,
        max_grad_norm=config.max_grad_norm, poisson_sampling=True,
        noise_generator=torch.Generator().manual_seed(seed + 1))
    return engine, private_model, private_optimizer, private_loader
