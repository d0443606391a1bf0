"""Shamir secret sharing, t of n, over the prime field GF(2^521 - 1) (Shamir, CACM 1979).

Written here because no well-kept Python library shares integers over a prime field with the audit
surface we want (a few lines of arithmetic); the randomness comes from `secrets`. 2^521 - 1 is a Mersenne
prime larger than any 256-bit seed we share, so a seed is one field element.
"""

from __future__ import annotations

import secrets

from shared.errors import AggregationError

PRIME = 2 ** 521 - 1


def split(secret: int, holders: int, threshold: int) -> list[tuple[int, int]]:
    """Shares (x, f(x)) for x = 1..holders of a random polynomial f of degree threshold - 1 with f(0) = secret."""
    if not 0 <= secret < PRIME:
        raise ValueError("the secret must be a field element")
    if not 1 <= threshold <= holders:
        raise ValueError(f"threshold {threshold} must be between 1 and the number of holders {holders}")
    coefficients = [secret] + [secrets.randbelow(PRIME) for _ in range(threshold - 1)]
    shares = []
    for x in range(1, holders + 1):
        y = 0
        for c in reversed(coefficients):  # Horner
            y = (y * x + c) % PRIME
        shares.append((x, y))
    return shares


def reconstruct(shares: list[tuple[int, int]], threshold: int) -> int:
    """f(0) by Lagrange interpolation from any `threshold` shares with distinct x."""
    points = dict(shares)
    if len(points) < threshold:
        raise AggregationError(f"{len(points)} share(s) cannot reconstruct a secret shared {threshold}-of-n")
    chosen = sorted(points.items())[:threshold]
    secret = 0
    for i, (xi, yi) in enumerate(chosen):
        num, den = 1, 1
        for j, (xj, _) in enumerate(chosen):
            if i != j:
                num = num * (-xj) % PRIME
                den = den * (xi - xj) % PRIME
        secret = (secret + yi * num * pow(den, -1, PRIME)) % PRIME
    return secret


def default_threshold(holders: int) -> int:
    """t = floor(n/2) + 1 (at least 2): a majority. With t > n/2 an aggregator that tells different plants
    different dropout lists cannot collect t self-mask shares and t pairwise shares of the same plant,
    because each plant answers one list per round (Bonawitz et al. §4 use the same bound without signatures
    in the honest-but-curious setting)."""
    return max(2, holders // 2 + 1) if holders >= 2 else 1
