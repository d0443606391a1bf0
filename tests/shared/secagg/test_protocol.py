import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from shared.errors import AggregationError, SecurityError
from shared.secagg import shamir
from shared.secagg.keys import CHANNEL, MASK, pairwise_key, public_hex
from shared.secagg.masking import expand, pair_sign
from factory_agent.plant.state import PlantState
from shared.secagg.protocol import RevealedShares, RoundSetup, mask_and_share, reveal, unmask
from shared.secagg.quantize import dequantize, fraction_bits, quantize


def federation(n: int):
    keys = {f"plant-{i:02d}": X25519PrivateKey.generate() for i in range(n)}
    return keys, {name: public_hex(k) for name, k in keys.items()}


def setups(keys, public, context="7:3:1", t=None, bits=24):
    t = t or shamir.default_threshold(len(keys))
    return {me: RoundSetup(context=context, me=me, participants=public, threshold=t, fraction_bits=bits) for me in keys}


def run_round(n, d, dropped_before=(), dropped_after=(), seed=0, tmp_path=None):
    """Masks from every plant except `dropped_before`; reveals from every survivor except `dropped_after`."""
    keys, public = federation(n)
    s = setups(keys, public)
    rng = np.random.default_rng(seed)
    updates = {me: rng.normal(0, 0.5, d) for me in keys}
    names = sorted(keys)
    sent = {me: mask_and_share(s[me], keys[me], updates[me]) for me in names if me not in dropped_before}
    survivors = sorted(sent)
    revealed = [reveal(s[h], keys[h], survivors, {u: sent[u].sealed[h] for u in survivors},
                       PlantState(tmp_path / h).record_reveal) for h in survivors if h not in dropped_after]
    total = unmask(names, {u: sent[u].masked for u in survivors}, revealed, s[names[0]].threshold, 24)
    expected = dequantize(sum((quantize(updates[u], 24) for u in survivors), np.zeros(d, dtype=np.uint64)), 24)
    return total, expected, updates, sent, s, keys


@pytest.mark.parametrize("n", range(2, 11))
def test_the_unmasked_sum_equals_the_sum_of_quantized_updates_exactly(n, tmp_path):
    total, expected, *_ = run_round(n, 257, tmp_path=tmp_path)
    assert np.array_equal(total, expected)


@pytest.mark.parametrize("n,dropped", [(3, 1), (5, 2), (10, 4)])
def test_up_to_n_minus_t_dropouts_after_masking_are_recovered(n, dropped, tmp_path):
    names = sorted(federation(n)[0])  # names only depend on n
    total, expected, *_ = run_round(n, 100, dropped_after=names[:dropped], tmp_path=tmp_path)
    assert np.array_equal(total, expected)


@pytest.mark.parametrize("n,dropped", [(3, 1), (5, 2), (10, 3)])
def test_dropouts_before_masking_are_removed_from_the_sum(n, dropped, tmp_path):
    names = [f"plant-{i:02d}" for i in range(n)]
    total, expected, updates, *_ = run_round(n, 100, dropped_before=names[-dropped:], tmp_path=tmp_path)
    assert np.array_equal(total, expected)
    assert np.allclose(total, sum(updates[u] for u in names[:-dropped]), atol=1e-6)


def test_more_dropouts_than_the_threshold_allows_fail_with_an_aggregation_error(tmp_path):
    names = [f"plant-{i:02d}" for i in range(5)]  # t = 3: three silent holders leave two
    with pytest.raises(AggregationError, match="only 2 plant"):
        run_round(5, 10, dropped_after=names[:3], tmp_path=tmp_path)


def test_a_dropped_plants_late_update_cannot_be_unmasked(tmp_path):
    """Plant 2 is declared dropped; its masked update arrives later. Everything the aggregator learned (the
    pairwise seeds of the dropout, the self masks of the survivors) does not remove its self mask, and no
    holder reveals it."""
    n = 4
    keys, public = federation(n)
    s = setups(keys, public)
    names = sorted(keys)
    x = {me: np.random.default_rng(i).normal(0, 1, 50) for i, me in enumerate(names)}
    sent = {me: mask_and_share(s[me], keys[me], x[me]) for me in names}
    late, survivors = names[2], [n_ for n_ in names if n_ != names[2]]
    revealed = [reveal(s[h], keys[h], survivors, {u: sent[u].sealed[h] for u in survivors}, PlantState(tmp_path / h).record_reveal)
                for h in survivors]
    t = s[names[0]].threshold
    # best effort of the aggregator: remove every pairwise mask of the late plant, which it can reconstruct
    guess = sent[late].masked.copy()
    for u in survivors:
        seed = shamir.reconstruct([(r.x, r.pair_shares[u][late]) for r in revealed], t)
        mask_ = expand(seed.to_bytes(32, "big"), 50)
        if pair_sign(late, u) > 0:
            guess -= mask_
        else:
            guess += mask_
    assert not np.allclose(dequantize(guess, 24), x[late], atol=1.0)  # the self mask b_late stays
    # and a holder asked again with the late plant among the survivors refuses
    holder = survivors[0]
    with pytest.raises(SecurityError, match="refused"):
        reveal(s[holder], keys[holder], names, {u: sent[u].sealed[holder] for u in names}, PlantState(tmp_path / holder).record_reveal)


def test_the_same_survivor_list_may_be_asked_again(tmp_path):
    keys, public = federation(3)
    s = setups(keys, public)
    names = sorted(keys)
    sent = {me: mask_and_share(s[me], keys[me], np.ones(4)) for me in names}
    ledger = PlantState(tmp_path).record_reveal
    first = reveal(s[names[0]], keys[names[0]], names, {u: sent[u].sealed[names[0]] for u in names}, ledger)
    again = reveal(s[names[0]], keys[names[0]], names, {u: sent[u].sealed[names[0]] for u in names}, ledger)
    assert first == again
    assert RevealedShares.from_dict(first.to_dict()) == first


def test_a_share_replayed_from_another_round_is_rejected(tmp_path):
    keys, public = federation(3)
    old, new = setups(keys, public, context="7:2:1"), setups(keys, public, context="7:3:1")
    names = sorted(keys)
    old_sent = {me: mask_and_share(old[me], keys[me], np.ones(4)) for me in names}
    with pytest.raises(SecurityError, match="does not authenticate"):
        reveal(new[names[0]], keys[names[0]], names, {u: old_sent[u].sealed[names[0]] for u in names},
               PlantState(tmp_path).record_reveal)


def test_a_share_forwarded_to_the_wrong_holder_is_rejected(tmp_path):
    keys, public = federation(3)
    s = setups(keys, public)
    a, b, c = sorted(keys)
    sent = {me: mask_and_share(s[me], keys[me], np.ones(4)) for me in (a, b, c)}
    with pytest.raises(SecurityError):
        reveal(s[a], keys[a], [a, b, c], {u: sent[u].sealed[b] for u in (a, b, c)}, PlantState(tmp_path).record_reveal)


def test_a_plant_refuses_a_setup_that_holds_another_public_key_for_it():
    keys, public = federation(2)
    me = sorted(keys)[0]
    public[me] = public_hex(X25519PrivateKey.generate())
    with pytest.raises(SecurityError, match="not this plant's key"):
        mask_and_share(setups(keys, public)[me], keys[me], np.ones(3))


def test_pairwise_keys_agree_between_the_pair_and_differ_by_purpose_and_round():
    keys, public = federation(2)
    a, b = sorted(keys)
    ab = pairwise_key(keys[a], a, b, public[b], MASK, "1:1:1")
    assert ab == pairwise_key(keys[b], b, a, public[a], MASK, "1:1:1")
    assert ab != pairwise_key(keys[a], a, b, public[b], CHANNEL, "1:1:1")
    assert ab != pairwise_key(keys[a], a, b, public[b], MASK, "1:2:1")


def test_a_masked_update_looks_nothing_like_the_update():
    keys, public = federation(3)
    s = setups(keys, public)
    me = sorted(keys)[0]
    x = np.zeros(1000)
    masked = mask_and_share(s[me], keys[me], x).masked
    assert np.count_nonzero(masked) > 990
    assert fraction_bits(3, 100.0) >= 8
