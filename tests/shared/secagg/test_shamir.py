import itertools
import secrets

import pytest

from shared.errors import AggregationError
from shared.secagg import shamir


@pytest.mark.parametrize("n,t", [(2, 2), (3, 2), (5, 3), (10, 6), (10, 10)])
def test_any_t_shares_reconstruct_and_fewer_do_not(n, t):
    secret = secrets.randbits(256)
    shares = shamir.split(secret, n, t)
    for subset in itertools.islice(itertools.combinations(shares, t), 20):
        assert shamir.reconstruct(list(subset), t) == secret
    with pytest.raises(AggregationError):
        shamir.reconstruct(shares[:t - 1], t)


def _interpolate(points: list[tuple[int, int]], x: int) -> int:
    """f(x) of the polynomial of degree len(points) - 1 through points, over the field."""
    total = 0
    for i, (xi, yi) in enumerate(points):
        num, den = 1, 1
        for j, (xj, _) in enumerate(points):
            if i != j:
                num = num * (x - xj) % shamir.PRIME
                den = den * (xi - xj) % shamir.PRIME
        total = (total + yi * num * pow(den, -1, shamir.PRIME)) % shamir.PRIME
    return total


def test_t_minus_one_shares_are_consistent_with_every_secret():
    # Perfect secrecy: for any candidate secret s there is a polynomial of degree t-1 through the t-1 shares
    # and (0, s). Build it, then check that it predicts the real shares the attacker does NOT hold: the real
    # polynomial does so for the true secret only, so the test fails if the shares leak (or if a wrong
    # candidate reproduced them).
    secret = 12345
    shares = shamir.split(secret, 5, 3)
    seen, hidden = shares[:2], shares[2:]
    true_curve = seen + [(0, secret)]
    assert all(_interpolate(true_curve, x) == y for x, y in hidden)
    for candidate in (0, 99999):
        curve = seen + [(0, candidate)]
        assert all(_interpolate(curve, x) == y for x, y in seen)  # the t-1 shares fit candidate too...
        assert _interpolate(curve, 0) == candidate
        assert any(_interpolate(curve, x) != y for x, y in hidden)  # ...and only a t-th share tells them apart


def test_a_majority_threshold():
    assert [shamir.default_threshold(n) for n in (2, 3, 4, 5, 10)] == [2, 2, 3, 3, 6]


def test_bad_parameters_are_refused():
    with pytest.raises(ValueError):
        shamir.split(1, 3, 4)
    with pytest.raises(ValueError):
        shamir.split(shamir.PRIME, 3, 2)
