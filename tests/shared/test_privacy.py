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


def test_the_one_accountant_gives_opacus_s_epsilon_for_a_dp_sgd_history():
    from shared.privacy.accounting import epsilon_of

    history = [(1.3, 0.02, 150), (0.9, 0.05, 60), (1.3, 0.02, 150)]
    accountant = RDPAccountant()
    accountant.history = list(history)
    assert epsilon_of(history, 1e-5) == pytest.approx(accountant.get_epsilon(1e-5), rel=1e-12)
    assert epsilon_of([], 1e-5) == 0.0


def test_only_the_accounting_module_calls_opacus_s_privacy_analysis():
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    callers = {str(p.relative_to(root)) for package in ("shared", "dashboard", "factory_agent")
               for p in (root / package).rglob("*.py")
               for node in ast.walk(ast.parse(p.read_text()))
               if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("opacus.accountants")}
    assert callers == {"shared/privacy/accounting.py"}


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


# --- the noise source: the operating system's CSPRNG (STYLE habit 16); statistics, never values ----------------

def test_system_random_noise_is_gaussian_and_laplace_with_the_requested_scale():
    from shared.privacy.noise import SystemRandomNoise

    source = SystemRandomNoise()
    normal = source.normal(0.0, 2.0, size=(200, 1000))
    assert normal.shape == (200, 1000)
    assert abs(normal.mean()) < 0.02 and normal.std() == pytest.approx(2.0, rel=0.01)
    assert np.mean(normal ** 4) / np.mean(normal ** 2) ** 2 == pytest.approx(3.0, rel=0.03)  # Gaussian kurtosis
    assert np.mean(np.abs(normal) < 2.0) == pytest.approx(0.6827, abs=0.005)  # within one sigma
    laplace = source.laplace(1.0, 0.5, size=200_000)
    assert abs(np.median(laplace) - 1.0) < 0.01
    assert np.mean(np.abs(laplace - 1.0)) == pytest.approx(0.5, rel=0.01)  # E|Lap(b)| = b
    assert np.var(laplace) == pytest.approx(2 * 0.5 ** 2, rel=0.03)
    assert isinstance(source.normal(), float) and source.normal(size=3).shape == (3,)


def test_two_system_noise_draws_are_independent():
    from shared.privacy.noise import SystemRandomNoise

    a, b = SystemRandomNoise().normal(size=100_000), SystemRandomNoise().normal(size=100_000)
    assert abs(np.corrcoef(a, b)[0, 1]) < 0.02
    assert abs(np.corrcoef(a[:-1], a[1:])[0, 1]) < 0.02  # no serial correlation within one draw either


def test_the_central_mechanisms_accept_the_system_noise_source():
    from shared.privacy.central import laplace_mean_of_sum
    from shared.privacy.noise import SystemRandomNoise

    out = noisy_mean(np.zeros((4, 50_000)), max_norm=2.0, noise_multiplier=1.5, rng=SystemRandomNoise())
    assert out.std() == pytest.approx(1.5 * 2.0 / 4, rel=0.02)
    noise = laplace_mean_of_sum(np.zeros(100_000), 2, max_norm=1.0, epsilon=0.5, rng=SystemRandomNoise())
    assert np.mean(np.abs(noise)) == pytest.approx(1.0 / 0.5 / 2, rel=0.02)


# --- Poisson sampling of plants --------------------------------------------------------------------------------

def test_poisson_sampling_includes_each_plant_independently_with_probability_q():
    import random

    from shared.privacy.sampling import poisson_sample

    rng, plants, q, draws = random.Random(7), [f"p{i}" for i in range(10)], 0.3, 20_000
    samples = [poisson_sample(plants, q, rng) for _ in range(draws)]
    for plant in plants:
        assert sum(plant in s for s in samples) / draws == pytest.approx(q, abs=0.015)
    sizes = np.array([len(s) for s in samples])
    assert sizes.mean() == pytest.approx(10 * q, rel=0.02) and sizes.var() == pytest.approx(10 * q * (1 - q), rel=0.05)
    assert sum("p0" in s and "p1" in s for s in samples) / draws == pytest.approx(q * q, abs=0.01)  # independent
    assert all(s == sorted(s, key=plants.index) for s in samples[:100])  # in the plants' order


def test_sampling_rate_one_takes_every_plant_and_out_of_range_rates_are_refused():
    import random

    from shared.privacy.sampling import poisson_sample

    assert poisson_sample(["a", "b"], 1.0, random.Random(0)) == ["a", "b"]
    for bad in (0.0, -0.1, 1.5):
        with pytest.raises(ValueError):
            poisson_sample(["a"], bad, random.Random(0))


def test_the_chance_of_a_draw_reaching_the_minimum_is_the_binomial_tail():
    import random

    from shared.privacy.sampling import poisson_sample, probability_of_at_least

    assert probability_of_at_least(2, 3, 0.5) == pytest.approx(0.5)
    assert probability_of_at_least(0, 4, 0.2) == pytest.approx(1.0)
    rng = random.Random(3)
    hits = sum(len(poisson_sample(range(6), 0.4, rng)) >= 3 for _ in range(20_000)) / 20_000
    assert hits == pytest.approx(probability_of_at_least(3, 6, 0.4), abs=0.015)


# --- accounting: q = 1 unless plants are really sampled; draws; noise from a target epsilon -------------------

def test_a_draw_at_rate_one_is_a_plain_gaussian_round_and_a_draw_below_one_costs_less():
    from shared.privacy.accounting import gaussian_step

    assert gaussian_step(1.2, 1.0) == (1.2, 1.0)
    assert epsilon_spent([("draw", 1.2, 1.0)] * 5, 1e-5) == pytest.approx(epsilon_spent([(1.2, 1.0)] * 5, 1e-5))
    every_round = epsilon_spent([(1.2, 1.0)] * 10, 1e-5)
    drawn = epsilon_spent([gaussian_step(1.2, 0.3)] * 10, 1e-5)
    secret_draw = epsilon_spent([(1.2, 0.3)] * 10, 1e-5)  # Opacus: needs a secret draw and no minimum
    assert secret_draw < drawn < every_round


def test_the_draw_bound_is_the_joint_convexity_formula():
    """log(1 - q + q exp((a - 1) a / (2 sigma^2))) / (a - 1) at each order a, converted by Opacus."""
    from opacus.accountants.analysis.rdp import get_privacy_spent

    from shared.privacy.accounting import ORDERS

    sigma, q, draws = 2.0, 0.25, 7
    orders = np.array(ORDERS)
    rdp = draws * np.log(1 - q + q * np.exp((orders - 1) * orders / (2 * sigma ** 2))) / (orders - 1)
    expected, _ = get_privacy_spent(orders=orders, rdp=rdp, delta=1e-6)
    assert epsilon_spent([("draw", sigma, q)] * draws, 1e-6) == pytest.approx(expected)


def test_a_dropout_was_never_sampling_old_histories_are_read_at_q_1():
    from shared.privacy.accounting import plant_level_steps

    old = [[1.2, 2 / 3], [1.2, 1.0], ["laplace", 0.5], ["draw", 1.2, 0.5]]
    assert plant_level_steps(old) == [(1.2, 1.0), (1.2, 1.0), ("laplace", 0.5), ("draw", 1.2, 0.5)]
    assert epsilon_spent(plant_level_steps([[1.2, 2 / 3]] * 3), 1e-5) > epsilon_spent([(1.2, 2 / 3)] * 3, 1e-5)


@pytest.mark.parametrize("target,rounds", [(8.0, 5), (8.0, 50), (1.0, 20), (30.0, 3)])
def test_the_noise_multiplier_for_a_target_epsilon_matches_opacus_at_q_1(target, rounds):
    from opacus.accountants.utils import get_noise_multiplier

    from shared.privacy.accounting import noise_multiplier_for

    sigma = noise_multiplier_for(target, 1e-5, rounds)
    assert sigma == pytest.approx(get_noise_multiplier(target_epsilon=target, target_delta=1e-5, sample_rate=1.0,
                                                       steps=rounds, accountant="rdp"), rel=1e-6)
    assert target - 0.01 <= epsilon_spent([(sigma, 1.0)] * rounds, 1e-5) <= target


def test_the_noise_multiplier_for_sampled_plants_fits_its_draws_and_an_impossible_target_is_refused():
    from shared.errors import SecurityError
    from shared.privacy.accounting import gaussian_step, noise_multiplier_for

    sigma = noise_multiplier_for(4.0, 1e-5, 20, sampling_rate=0.2)
    assert 4.0 - 0.01 <= epsilon_spent([gaussian_step(sigma, 0.2)] * 20, 1e-5) <= 4.0
    assert sigma < noise_multiplier_for(4.0, 1e-5, 20)
    with pytest.raises(SecurityError, match="no noise multiplier"):
        noise_multiplier_for(1e-4, 1e-5, 1000)


def test_dp_sgd_steps_and_sampling_rate_of_a_batch_size():
    from shared.training import dp_steps

    assert dp_steps(1400, 512, 1) == (1 / 3, 3)  # q = 1 / ceil(n / b), one pass = 1/q steps
    assert dp_steps(1400, 64, 2) == (1 / 22, 44)
    assert dp_steps(1400, 65536, 3) == (1.0, 3)  # a batch larger than the plant is the whole plant, q capped at 1
    assert dp_steps(1, 1, 1) == (1.0, 1)


def test_at_the_same_epsilon_larger_batches_give_less_noise_on_the_averaged_gradient():
    from shared.privacy.accounting import noise_for_epsilon
    from shared.privacy.dp_sgd import mean_noise_std
    from shared.training import dp_steps

    noise = {}
    for batch in (64, 512):
        rate, steps = dp_steps(1400, batch, 1)
        sigma = noise_for_epsilon(4.0, 1e-5, rate, steps * 4)
        noise[batch] = (sigma, mean_noise_std(sigma, 1.0, rate, 1400))
    assert noise[512][0] > noise[64][0]  # more noise per step at the larger rate ...
    assert noise[512][1] < noise[64][1] / 2  # ... but far less relative to the averaged gradient
    assert mean_noise_std(2.0, 0.5, 0.25, 400) == pytest.approx(2.0 * 0.5 / 100)


def test_the_plants_noise_for_a_target_covers_every_planned_step():
    from shared.privacy.accounting import epsilon_of, noise_for_epsilon

    sigma = noise_for_epsilon(1.0, 1e-5, 1 / 3, 3 * 10)
    assert 0.98 <= epsilon_of([(sigma, 1 / 3, 3)] * 10, 1e-5) <= 1.0
    assert epsilon_of([(sigma, 1 / 3, 3)] * 11, 1e-5) > 1.0  # an eleventh round would not fit
