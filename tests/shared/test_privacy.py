import numpy as np
import pytest
from opacus.accountants import RDPAccountant

from shared.privacy.accounting import epsilon_spent, within_budget
from shared.privacy.central import clip_update, noisy_mean


def test_epsilon_matches_opacus_for_the_same_parameters():
    accountant = RDPAccountant()
    for _ in range(20):
        accountant.step(noise_multiplier=1.1, sample_rate=0.6)
    assert epsilon_spent([(1.1, 0.6)] * 20, 1e-5) == pytest.approx(accountant.get_epsilon(1e-5))
    assert epsilon_spent([], 1e-5) == 0.0


def test_the_budget_check_refuses_the_step_that_would_exceed_the_target():
    steps = []
    while True:
        ok, projected = within_budget(steps, (1.0, 1.0), 1e-5, 8.0)
        if not ok:
            break
        steps.append((1.0, 1.0))
    assert epsilon_spent(steps, 1e-5) <= 8.0 < projected
    assert len(steps) >= 1


def test_updates_are_clipped_and_noise_has_the_calibrated_scale():
    assert np.linalg.norm(clip_update(np.array([3.0, 4.0]), 1.0)) == pytest.approx(1.0)
    assert list(clip_update(np.array([0.3, 0.4]), 1.0)) == [0.3, 0.4]
    deltas = np.zeros((4, 20000))
    out = noisy_mean(deltas, max_norm=2.0, noise_multiplier=1.5, rng=np.random.default_rng(0))
    assert out.std() == pytest.approx(1.5 * 2.0 / 4, rel=0.03)
    same = noisy_mean(deltas, 2.0, 1.5, np.random.default_rng(0))
    assert np.array_equal(out, same)  # the noise draw comes from the generator passed in


def test_laplace_mechanism_clips_in_l1_and_adds_noise_of_scale_c_over_epsilon():
    from shared.privacy.central import laplace_mean_of_sum

    clipped = clip_update(np.array([3.0, -1.0]), 2.0, ord=1)
    assert np.abs(clipped).sum() == pytest.approx(2.0) and clipped[0] / clipped[1] == pytest.approx(-3.0)
    noise = laplace_mean_of_sum(np.zeros(200_000), 1, max_norm=2.0, epsilon=0.5, rng=np.random.default_rng(0))
    assert np.mean(np.abs(noise)) == pytest.approx(2.0 / 0.5, rel=0.02)  # E|Lap(b)| = b


def test_laplace_rounds_compose_by_summation_and_add_to_gaussian_ones():
    assert epsilon_spent([("laplace", 0.5)] * 3, 1e-5) == pytest.approx(1.5)
    gaussian = epsilon_spent([(1.0, 1.0)], 1e-5)
    assert epsilon_spent([("laplace", 0.5), (1.0, 1.0)], 1e-5) == pytest.approx(0.5 + gaussian)
    ok, projected = within_budget([("laplace", 1.0)] * 7, ("laplace", 1.0), 1e-5, 8.0)
    assert ok and projected == pytest.approx(8.0)
    assert not within_budget([("laplace", 1.0)] * 8, ("laplace", 1.0), 1e-5, 8.0)[0]
