"""Privacy accounting for central DP, with the RDP analysis of Opacus (Mironov 2017; Mironov, Talwar and
Zhang 2019 for the subsampled Gaussian mechanism).

Plant-level DP: two federations are neighbours when one plant's update is replaced by zeros ("zero-out",
Kairouz et al., ICML 2021): which plants take part is recorded for operators; what is protected is the
plant's data. A step of an experiment's history is one of:

- ``(sigma, q)``: the Gaussian mechanism with noise multiplier sigma, Poisson-subsampled at rate q (Opacus).
  The dashboard records q = 1: every eligible plant is asked every round, and a dropout is not sampling (it
  is neither random nor hidden from an adversary).
- ``("draw", sigma, q)``: one Poisson draw of plants at rate q, then a round with noise sigma when enough
  plants were drawn, or nothing at all. Its Renyi divergence of order a is at most
  log(1 - q + q exp((a - 1) a / (2 sigma^2))) / (a - 1), because exp((a - 1) D_a(P || Q)), the integral of
  p^a q^(1 - a), is jointly convex in (P, Q) for a > 1 (the perspective of t^a): with probability 1 - q the
  plant is not drawn and both neighbours give the same output; with probability q the output is a Gaussian
  mechanism of RDP a / (2 sigma^2), or nothing.
  This holds whatever the other plants do (drop out, fall short of min_factories) and even when the draw
  is known afterwards (secure aggregation tells the round's plants who takes part); Opacus's tighter bound
  would need a secret draw and a round that runs whatever was drawn.
- ``("laplace", epsilon)``: the Laplace mechanism, pure epsilon per round, added up (Dwork and Roth 2014,
  Thm 3.16).

It is also the one accountant of record-level DP-SGD (shared.privacy.dp_sgd), for the plant's own ledger
(factory_agent.plant.ledgers: running RDP curves, `rdp_curve` and `epsilon_of_rdp`) and the dashboard's view
of each plant's history (`epsilon_of`, `noise_for_epsilon`): nothing else calls Opacus's analysis.
"""

from __future__ import annotations

import math
import warnings
from collections import Counter

import numpy as np

from shared.errors import SecurityError

# Opacus's own orders (RDPAccountant.DEFAULT_ALPHAS), so that epsilon matches its accountant exactly
ORDERS = [1 + x / 10.0 for x in range(1, 100)] + list(range(12, 64))
MAX_NOISE_MULTIPLIER = 1e6


def rdp_curve(noise_multiplier: float, sampling_rate: float, steps: int = 1) -> np.ndarray:
    """RDP at each of ORDERS of `steps` Poisson-subsampled Gaussian steps (Mironov, Talwar and Zhang 2019),
    Opacus's compute_rdp. Curves add up under composition (Mironov 2017, Prop. 1)."""
    # imported here: importing opacus configures the root logger (WARNING level, a stderr handler), which
    # would silence the dashboard's own INFO logs in every process that merely imports this module
    from opacus.accountants.analysis.rdp import compute_rdp

    return np.asarray(compute_rdp(q=float(sampling_rate), noise_multiplier=float(noise_multiplier), steps=int(steps),
                                  orders=ORDERS), dtype=np.float64)


def epsilon_of_rdp(rdp: np.ndarray, delta: float) -> float:
    """epsilon at delta of an RDP curve over ORDERS (Opacus's get_privacy_spent, Balle et al. 2020's conversion)."""
    from opacus.accountants.analysis.rdp import get_privacy_spent

    epsilon, _ = get_privacy_spent(orders=ORDERS, rdp=np.asarray(rdp, dtype=np.float64), delta=delta)
    return float(epsilon)


def epsilon_of(history: list, delta: float) -> float:
    """epsilon at delta of a DP-SGD history, entries (noise multiplier, sample rate, steps): what Opacus's
    RDPAccountant.get_epsilon gives for the same history; 0 for none."""
    if not history:
        return 0.0
    return epsilon_of_rdp(sum(rdp_curve(s, q, n) for s, q, n in history), delta)


def noise_for_epsilon(target_epsilon: float, delta: float, sample_rate: float, steps: int) -> float:
    """The smallest noise multiplier that keeps `steps` DP-SGD steps at sampling rate q within (epsilon, delta)
    (Opacus's binary search over its RDP accountant); SecurityError when none does."""
    from opacus.accountants.utils import get_noise_multiplier

    try:
        with warnings.catch_warnings():  # the search's probes far from the answer hit the ends of the orders
            warnings.filterwarnings("ignore", message="Optimal order is the")
            return float(get_noise_multiplier(target_epsilon=target_epsilon, target_delta=delta,
                                              sample_rate=sample_rate, steps=steps, accountant="rdp"))
    except ValueError as exc:
        raise SecurityError(f"no noise multiplier reaches epsilon {target_epsilon} at delta {delta} over {steps} "
                            f"steps: {exc}") from exc


def _rdp_of(step: tuple, orders: np.ndarray) -> np.ndarray:
    """RDP at each order of one Gaussian step: (sigma, q) or ("draw", sigma, q)."""
    if step[0] == "draw":
        sigma, rate = float(step[1]), float(step[2])
        gaussian = orders / (2 * sigma ** 2)
        if rate >= 1.0:
            return gaussian
        return np.logaddexp(math.log1p(-rate), math.log(rate) + (orders - 1) * gaussian) / (orders - 1)
    return rdp_curve(float(step[0]), float(step[1]))


def epsilon_spent(steps: list[tuple], delta: float) -> float:
    """epsilon after the given steps (module docstring), at delta; 0 before any step. Gaussian steps compose in
    RDP and are converted once; Laplace steps add their epsilon."""
    laplace = sum(float(s[1]) for s in steps if s[0] == "laplace")
    gaussian = [tuple(s) for s in steps if s[0] != "laplace"]
    if not gaussian:
        return laplace
    orders = np.asarray(ORDERS, dtype=np.float64)
    rdp = sum(count * _rdp_of(s, orders) for s, count in Counter(gaussian).items())  # RDP adds up
    return laplace + epsilon_of_rdp(rdp, delta)


def within_budget(steps: list[tuple], next_step: tuple, delta: float,
                  target_epsilon: float) -> tuple[bool, float]:
    """(would one more step stay within the target?, epsilon after it)."""
    projected = epsilon_spent(steps + [next_step], delta)
    return projected <= target_epsilon, projected


def gaussian_step(noise_multiplier: float, sampling_rate: float) -> tuple:
    """What one round (q = 1) or one Poisson draw of plants (q < 1) costs the accountant."""
    if sampling_rate >= 1.0:
        return (noise_multiplier, 1.0)
    return ("draw", noise_multiplier, sampling_rate)


def plant_level_steps(history: list) -> list[tuple]:
    """An experiment's stored central-DP history as steps. Histories written before plants could be sampled
    recorded q = plants that trained / plants online: a dropout taken for subsampling, which understated
    epsilon; such a step is read as q = 1."""
    steps = []
    for s in history or []:
        if s[0] in ("laplace", "draw"):
            steps.append(tuple(s))
        else:
            steps.append((float(s[0]), 1.0))
    return steps


def noise_multiplier_for(target_epsilon: float, delta: float, steps: int, sampling_rate: float = 1.0,
                         tolerance: float = 0.01) -> float:
    """The smallest noise multiplier (to within `tolerance` in epsilon, rounding up) whose `steps` Gaussian
    steps (gaussian_step) spend at most target_epsilon at delta: the binary search of Opacus's
    get_noise_multiplier, over this module's accountant. SecurityError when no multiplier up to 1e6 does."""
    def spent(sigma: float) -> float:
        with warnings.catch_warnings():  # probes far from the answer hit the ends of Opacus's orders: expected
            warnings.simplefilter("ignore", UserWarning)
            return epsilon_spent([gaussian_step(sigma, sampling_rate)] * steps, delta)

    low, high = 0.0, 10.0
    eps_high = spent(high)
    while eps_high > target_epsilon:
        low, high = high, 2 * high
        if high > MAX_NOISE_MULTIPLIER:
            raise SecurityError(f"no noise multiplier up to {MAX_NOISE_MULTIPLIER:g} keeps {steps} round(s) within "
                                f"epsilon {target_epsilon} at delta {delta}")
        eps_high = spent(high)
    for _ in range(200):  # far more than double precision needs; a bound, not a convergence test
        if target_epsilon - eps_high <= tolerance:
            break
        middle = (low + high) / 2
        eps = spent(middle)
        if eps < target_epsilon:
            high, eps_high = middle, eps
        else:
            low = middle
    return high
