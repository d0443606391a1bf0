"""shared.adam.FunctionalAdam: torch.optim.Adam's numbers bit for bit, without importing torch._dynamo."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from shared.adam import FunctionalAdam
from shared.errors import ConfigurationError
from shared.models import ModelSpec, build_model

ROOT = Path(__file__).resolve().parents[2]


def _train(model: nn.Module, optimizer, steps: int, seed: int, features: int, length: int) -> list[torch.Tensor]:
    """`steps` steps of the plant's loop (zero_grad, weighted BCE, backward, clip to 5, step) on fixed batches."""
    data = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)  # dropout draws from the global generator
    loss_fn = nn.BCEWithLogitsLoss(pos_weight=torch.tensor(7.0))
    for _ in range(steps):
        shape = (64, length, features) if length > 1 else (64, features)
        x, y = torch.randn(shape, generator=data), (torch.rand(64, generator=data) < 0.2).float()
        optimizer.zero_grad()
        loss_fn(model(x), y).backward()
        nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimizer.step()
    return [p.detach().clone() for p in model.parameters()]


@pytest.mark.parametrize("model_type,length,lr", [("cnn", 1, 1e-3), ("cnn", 1, 0.05), ("lstm", 8, 5e-3),
                                                  ("hybrid", 8, 1e-3)])
def test_the_weights_are_those_of_torch_adam_bit_for_bit(model_type, length, lr):
    spec = ModelSpec(model_type, 9, length)
    reference, lean = build_model(spec, seed=1), build_model(spec, seed=1)
    want = _train(reference, torch.optim.Adam(reference.parameters(), lr=lr), 12, 4, 9, length)
    optimizer = FunctionalAdam(lean.parameters(), lr=lr)
    got = _train(lean, optimizer, 12, 4, 9, length)
    assert all(torch.equal(g, w) for g, w in zip(got, want, strict=True))
    assert optimizer.moments(0)[0].item() == 12


def test_the_moments_and_step_counters_are_those_of_torch_adam():
    spec = ModelSpec("cnn", 5, 1)
    reference, lean = build_model(spec, seed=2), build_model(spec, seed=2)
    torch_adam = torch.optim.Adam(reference.parameters(), lr=0.01)
    functional = FunctionalAdam(lean.parameters(), lr=0.01)
    _train(reference, torch_adam, 5, 0, 5, 1)
    _train(lean, functional, 5, 0, 5, 1)
    for i, p in enumerate(reference.parameters()):
        state = torch_adam.state[p]
        step, exp_avg, exp_avg_sq = functional.moments(i)
        assert step.dtype == state["step"].dtype and step.device == state["step"].device
        assert torch.equal(step, state["step"]) and torch.equal(exp_avg, state["exp_avg"])
        assert torch.equal(exp_avg_sq, state["exp_avg_sq"])


def test_a_parameter_without_a_gradient_is_left_alone_and_gets_no_state():
    used, unused = nn.Parameter(torch.ones(3)), nn.Parameter(torch.ones(3))
    optimizer = FunctionalAdam([used, unused], lr=0.1)
    (used * torch.tensor([1.0, -2.0, 3.0])).sum().backward()
    optimizer.step()
    assert torch.equal(unused.detach(), torch.ones(3)) and optimizer.moments(1) is None
    assert not torch.equal(used.detach(), torch.ones(3))
    optimizer.zero_grad()
    assert used.grad is None


@pytest.mark.parametrize("settings", [{"lr": math.nan}, {"lr": math.inf}, {"lr": -1e-3}, {"lr": "0.1; drop"},
                                      {"lr": None}, {"eps": math.nan}, {"eps": -1.0}, {"betas": (1.0, 0.999)},
                                      {"betas": (0.9, math.nan)}, {"betas": (-0.1, 0.9)}, {"betas": (0.9,)}])
def test_hostile_settings_are_refused_before_any_step(settings):
    with pytest.raises(ConfigurationError):
        FunctionalAdam([nn.Parameter(torch.ones(2))], **settings)


def test_sparse_gradients_are_refused():
    embedding = nn.Embedding(4, 2, sparse=True)
    optimizer = FunctionalAdam(embedding.parameters())
    embedding(torch.tensor([1])).sum().backward()
    with pytest.raises(ConfigurationError):
        optimizer.step()


def test_local_training_of_the_default_cnn_does_not_import_torch_dynamo():
    """In a fresh interpreter (this one may have imported it already): torch._dynamo and sympy are ~90 MB of a
    plant's resident memory (issue #17)."""
    code = ("import sys, numpy as np\n"
            "from shared.models import ModelSpec, build_model, get_weights\n"
            "from shared.protocol import TrainSettings\n"
            "from shared.training import PlantArrays, train_local\n"
            "rng = np.random.default_rng(0)\n"
            "x, y = rng.normal(size=(300, 6)).astype(np.float32), (rng.random(300) < 0.2).astype(np.float32)\n"
            "names = [f'f{i}' for i in range(6)]\n"
            "arrays = PlantArrays(x, y, np.zeros((300, 2), int), names, names, None)\n"
            "spec = ModelSpec('cnn', 6, 1)\n"
            "train_local(arrays, spec, get_weights(build_model(spec, seed=0)), TrainSettings(epochs=2))\n"
            "print(sorted(m for m in ('torch._dynamo', 'sympy', 'torch._inductor') if m in sys.modules))\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                            env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
