import numpy as np
import pytest

from shared.errors import AggregationError
from shared.secagg.quantize import MAX_WEIGHT, dequantize, fraction_bits, quantize


def test_round_trip_within_half_a_step():
    bits = 20
    x = np.random.default_rng(0).normal(0, 3, 1000)
    assert np.max(np.abs(dequantize(quantize(x, bits), bits) - x)) <= 2.0 ** -(bits + 1)


def test_the_modular_sum_reads_back_as_the_signed_sum_at_the_extreme_of_the_bound():
    plants, clip = 10, 100.0
    bits = fraction_bits(plants, clip)
    # every plant at the largest weight, every coordinate at +/- the clip bound: the worst case
    worst = np.array([clip * MAX_WEIGHT, -clip * MAX_WEIGHT])
    total = np.zeros(2, dtype=np.uint64)
    for _ in range(plants):
        total += quantize(worst, bits)
    assert np.allclose(dequantize(total, bits), worst * plants)


def test_fraction_bits_shrink_with_the_bound_and_refuse_when_nothing_is_left():
    assert fraction_bits(3, 1.0) == 32
    assert fraction_bits(10, 100.0) < fraction_bits(10, 1.0)
    with pytest.raises(AggregationError):
        fraction_bits(10, 1e9)


def test_out_of_range_values_are_refused():
    with pytest.raises(AggregationError):
        quantize(np.array([2.0 ** 40]), 30)
