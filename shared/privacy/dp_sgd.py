"""Record-level DP-SGD inside a plant's training (Abadi et al., CCS 2016) with Opacus: per-sample gradient
clipping to C, Gaussian noise N(0, (sigma C)^2) on the clipped sum, Poisson sampling of batches at rate
q = batch_size / n, and Opacus's RDP accountant (Mironov 2017). The plant keeps every step it ever took in
its ledger (factory_agent.plant.state), so the epsilon it reports covers all its rounds and the lifetime
budget covers all experiments.

Randomness: Opacus's secure mode needs torchcsprng, which is not maintained for this torch; instead the
noise and the Poisson sampling use torch generators seeded from `secrets` by the plant for every round, so
neither the dashboard nor anyone who knows the experiment can reproduce them.
"""

from __future__ import annotations

import logging
import warnings

import torch
from torch.utils.data import DataLoader, TensorDataset


log = logging.getLogger(__name__)
# Opacus's hooks on a model whose inputs need no gradient: torch warns at every backward; nothing is wrong
warnings.filterwarnings("ignore", message="Full backward hook is firing when gradients are computed")


def mean_noise_std(noise_multiplier: float, max_grad_norm: float, sample_rate: float, num_examples: int) -> float:
    """The standard deviation, per coordinate, of the noise on one step's averaged gradient: sigma C / (q n).
    Opacus adds N(0, (sigma C)^2) to the sum of the clipped per-sample gradients and divides by the expected
    batch q n (Abadi et al., CCS 2016, Alg. 1). At a fixed epsilon and number of epochs a larger batch raises
    sigma less than it raises q n, so each of its fewer steps is less noisy (De et al. 2022, sec. 3)."""
    return noise_multiplier * max_grad_norm / (sample_rate * num_examples)


def make_private(model: torch.nn.Module, optimizer: torch.optim.Optimizer, num_examples: int, batch_size: int,
                 noise_multiplier: float, max_grad_norm: float, noise_seed: int, sampling_seed: int,
                 device: torch.device | None = None):
    """(private model, private optimizer, loader of example indices with Poisson sampling). The noise is drawn
    on `device`, where the model's gradients are (Opacus draws it beside them); the sampling on the CPU."""
    from opacus import PrivacyEngine

    with warnings.catch_warnings():  # "secure RNG turned off": see the module docstring
        warnings.filterwarnings("ignore", message="Secure RNG turned off")
        engine = PrivacyEngine(accountant="rdp")
    loader = DataLoader(TensorDataset(torch.arange(num_examples)), batch_size=min(batch_size, num_examples),
                        generator=torch.Generator().manual_seed(sampling_seed))
    private_model, private_optimizer, private_loader = engine.make_private(
        module=model, optimizer=optimizer, data_loader=loader, noise_multiplier=noise_multiplier,
        max_grad_norm=max_grad_norm, poisson_sampling=True, noise_generator=torch.Generator(device or "cpu").manual_seed(noise_seed))
    return private_model, private_optimizer, private_loader
