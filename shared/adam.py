"""Adam for a plant's local training through torch's functional API (`torch.optim.adam.adam`, public in that
module's `__all__`) rather than the `torch.optim.Adam` class: the same update, without torch._dynamo.

Why (issue #17, a plant's memory while training): in torch 2.13 the `Optimizer` class imports torch._dynamo,
and with it sympy, mpmath, torch.distributed, torch.onnx and torch._inductor (~90 MB resident, ~800 modules),
the first time any of its methods runs: `__init__` calls `add_param_group`, which, like `zero_grad` and
`state_dict`, is wrapped in `torch._disable_dynamo` (imports torch._dynamo on its first call), and `step` is
wrapped in `_use_grad_for_differentiable` (imports it on every call, for its graph breaks). The functional
`adam` touches torch._dynamo only while torch.compile traces it, which a plant never does. No flag of the class
(`foreach`, `fused`, `capturable`) avoids the import.

Same numbers: the state is made as `Adam._init_group` makes it (a float32 CPU step counter, zeroed moments like
the parameter), the step runs under no_grad (`Adam.step` with differentiable=False), and `adam` is called with
the arguments `Adam.step` passes for the defaults (foreach/fused None: torch picks the implementation the same
way). tests/shared/test_adam.py checks the weights bit for bit against `torch.optim.Adam`.
Under DP-SGD the plant keeps `torch.optim.Adam`: Opacus's DPOptimizer wraps an `Optimizer` (shared.privacy).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch.optim.adam import adam

from shared.errors import ConfigurationError

__all__ = ["FunctionalAdam"]


class FunctionalAdam:
    """Adam (Kingma & Ba, ICLR 2015) over a fixed list of parameters, without weight decay or AMSGrad:
    g_t = grad, m_t = b1 m_{t-1} + (1 - b1) g_t, v_t = b2 v_{t-1} + (1 - b2) g_t^2,
    theta_t = theta_{t-1} - lr (m_t / (1 - b1^t)) / (sqrt(v_t / (1 - b2^t)) + eps),
    computed by torch's own `torch.optim.adam.adam`. `zero_grad` and `step` behave as `torch.optim.Adam`'s."""

    def __init__(self, params: Iterable[torch.Tensor], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8):
        self.params = list(params)
        self.lr, self.betas, self.eps = _checked(lr, betas, eps)
        # per parameter (by position): (step counter, first moment, second moment), made on its first gradient
        self._state: dict[int, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}

    def zero_grad(self) -> None:
        """Gradients to None, as `Optimizer.zero_grad(set_to_none=True)` does."""
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        """One Adam update of every parameter that has a gradient (the others, and their state, are left as
        they are)."""
        positions = [i for i, p in enumerate(self.params) if p.grad is not None]
        for i in positions:
            if i not in self._state:
                self._state[i] = _fresh_state(self.params[i])
        params = [self.params[i] for i in positions]
        for p in params:
            if p.grad.is_sparse:
                raise ConfigurationError("Adam does not take sparse gradients")
        steps, exp_avgs, exp_avg_sqs = ([self._state[i][k] for i in positions] for k in range(3))
        adam(params, [p.grad for p in params], exp_avgs, exp_avg_sqs, [], steps, foreach=None, capturable=False,
             differentiable=False, fused=None, grad_scale=None, found_inf=None,
             has_complex=any(torch.is_complex(p) for p in params), decoupled_weight_decay=False, amsgrad=False,
             beta1=self.betas[0], beta2=self.betas[1], lr=self.lr, weight_decay=0.0, eps=self.eps, maximize=False)

    def moments(self, position: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
        """(step, first moment, second moment) of the parameter at `position`, None before its first step."""
        return self._state.get(position)


def _fresh_state(p: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Adam's lazy state as `Adam._init_group` makes it when neither capturable nor fused: the step counter a
    scalar on the CPU in the default float type (float64 only under a float64 default), the moments zeros."""
    scalar = torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32
    return (torch.tensor(0.0, dtype=scalar, device="cpu"), torch.zeros_like(p, memory_format=torch.preserve_format),
            torch.zeros_like(p, memory_format=torch.preserve_format))


def _checked(lr: float, betas: tuple[float, float], eps: float) -> tuple[float, tuple[float, float], float]:
    """The hyper-parameters as floats, refused (ConfigurationError naming the value) when not finite or out of
    Adam's range: lr >= 0, 0 <= beta < 1, eps >= 0."""
    try:
        lr, eps, b1, b2 = float(lr), float(eps), float(betas[0]), float(betas[1])
    except (TypeError, ValueError, IndexError) as exc:
        raise ConfigurationError(f"Adam's settings must be numbers: lr={lr!r}, betas={betas!r}, eps={eps!r}") from exc
    if not (math.isfinite(lr) and lr >= 0):
        raise ConfigurationError(f"Adam's learning rate must be finite and >= 0, not {lr}")
    if not (math.isfinite(eps) and eps >= 0):
        raise ConfigurationError(f"Adam's eps must be finite and >= 0, not {eps}")
    for name, beta in (("beta1", b1), ("beta2", b2)):
        if not 0.0 <= beta < 1.0:
            raise ConfigurationError(f"Adam's {name} must be in [0, 1), not {beta}")
    return lr, (b1, b2), eps
