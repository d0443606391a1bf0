"""Privacy accounting with Opacus's RDP accountant: each round of central DP is one step of the
subsampled Gaussian mechanism with noise multiplier sigma and sampling rate q = plants in the round /
plants in the federation."""

from __future__ import annotations


def epsilon_spent(steps: list[tuple], delta: float) -> float:
    """epsilon after the given steps, at delta; 0 before any step. A step is (noise_multiplier, sample_rate) of
    the Gaussian mechanism (RDP accounting) or ("laplace", epsilon) of the Laplace mechanism (pure DP, added:
    sequential composition, Dwork & Roth 2014, Thm 3.16)."""
    laplace = sum(float(s[1]) for s in steps if s[0] == "laplace")
    steps = [s for s in steps if s[0] != "laplace"]
    if not steps:
        return laplace
    # imported here: importing opacus configures the root logger (WARNING level, a stderr handler), which
    # would silence the dashboard's own INFO logs in every process that merely imports this module
    from opacus.accountants import RDPAccountant

    accountant = RDPAccountant()
    for sigma, rate in steps:
        accountant.step(noise_multiplier=sigma, sample_rate=rate)
    return laplace + float(accountant.get_epsilon(delta))


def within_budget(steps: list[tuple], next_step: tuple, delta: float,
                  target_epsilon: float) -> tuple[bool, float]:
    """(would one more step stay within the target?, epsilon after it)."""
    projected = epsilon_spent(steps + [next_step], delta)
    return projected <= target_epsilon, projected
