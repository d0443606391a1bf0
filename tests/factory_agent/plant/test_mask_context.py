"""Attack (found in review, issue 24): a relay sends one member the real round and the other members the same
attempt with a near-zero learning rate or clip, so that their contributions round to zero while their pairwise
masks still cancel; the "sum" would be the one member's update. The masks are bound to the round's common request
(shared.secagg.context), so the sum of members sent different rounds is noise, and the honest sum still opens."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from factoryfl_testing.federation import InProcessFederation
from factoryfl_testing.inprocess import InProcessChannel, InProcessPlant
from shared.errors import DataSiteError
from shared.experiment import parse_experiment
from shared.protocol import RevealRequest, RoundRef, SecAggRequest, TrainRequest, TrainSettings
from shared.secagg.protocol import RevealedShares, unmask
from shared.secagg.quantize import fraction_bits


@pytest.fixture(scope="module")
def plants(tmp_path_factory):
    root = tmp_path_factory.mktemp("mask_context")
    return [InProcessPlant.simulated(f"m{i}", profile, 300, i, root)
            for i, profile in enumerate(("default", "heavy_duty", "hot_climate"))]


def _masked(plants, experiment: int, settings_for):
    """One secure attempt with each plant sent `settings_for(plant)`: the setup, the ref and the masked replies."""
    config = parse_experiment({"name": "m", "rounds": 1, "local_epochs": 1, "secure_aggregation": True,
                               "algorithm": "fedavg", "min_factories": 3})
    part = InProcessFederation(InProcessChannel(plants)).prepare(config, experiment)
    clip = 100.0
    setup = SecAggRequest({p.name: p.state.secagg_public_key() for p in plants}, 2, fraction_bits(3, clip),
                          "samples", clip)
    ref = RoundRef(experiment, 1)
    return setup, ref, {p.name: p.answer(TrainRequest(ref, part, settings_for(p), setup)) for p in plants}


def _reveal(plant, setup, ref, replies, survivors):
    return RevealedShares.from_dict(plant.answer(RevealRequest(ref, setup, tuple(survivors), {
        u: replies[u].sealed[plant.name] for u in survivors})).revealed)


HONEST = TrainSettings(epochs=1, batch_size=64, learning_rate=0.01, seed=5)


def test_members_sent_a_different_round_cannot_open_one_members_update(plants):
    silenced = dataclasses.replace(HONEST, learning_rate=1e-9)  # its contribution rounds to (almost) zero
    setup, ref, replies = _masked(plants, 9101, lambda p: HONEST if p.name == "m0" else silenced)
    by_name = {p.name: p for p in plants}
    # every holder of a share sealed under another member's round refuses to reveal: the shares do not authenticate
    for name in ("m0", "m1"):
        with pytest.raises(DataSiteError, match="does not authenticate"):
            _reveal(by_name[name], setup, ref, replies, sorted(replies))
    # and leaving m0 out as a dropout, the two silenced members open only what they were dealt under their round:
    # m0's self mask was sealed under m0's, so its masked update stays masked
    revealed = [_reveal(by_name[n], setup, ref, replies, ["m1", "m2"]) for n in ("m2",)]
    assert all("m0" not in r.self_shares for r in revealed)


def test_members_sent_the_same_round_still_open_the_sum(plants):
    setup, ref, replies = _masked(plants, 9102, lambda p: dataclasses.replace(HONEST, seed=5 + int(p.name[1:])))
    survivors = sorted(replies)
    revealed = [_reveal(p, setup, ref, replies, survivors) for p in plants]
    total = unmask(sorted(setup.participants), {u: r.masked for u, r in replies.items()}, revealed, 2,
                   setup.fraction_bits)
    # each plant clips its delta to the setup's clip before weighting: the honest sum is bounded by their weights
    assert 0 < np.linalg.norm(total) <= 100.0 * sum(r.weight for r in replies.values()) + 1e-6
