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


def test_t_minus_one_shares_say_nothing_about_the_secret():
    # for any candidate secret there is a polynomial through the t-1 shares: interpolating them with a
    # chosen f(0) succeeds for two different secrets
    shares = shamir.split(12345, 5, 3)[:2]
    for candidate in (0, 99999):
        assert shamir.reconstruct(shares + [(0, candidate)], 3) == candidate


def test_a_majority_threshold():
    assert [shamir.default_threshold(n) for n in (2, 3, 4, 5, 10)] == [2, 2, 3, 3, 6]


def test_bad_parameters_are_refused():
    with pytest.raises(ValueError):
        shamir.split(1, 3, 4)
    with pytest.raises(ValueError):
        shamir.split(shamir.PRIME, 3, 2)
