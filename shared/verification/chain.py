"""The steps of a verified chain of global models, as pure functions (no I/O; the plant keeps the chain,
factory_agent.plant.verification):

- `genesis(spec, seed)`: round 0, built from the spec and the public seed with the dashboard's own code;
- `replay(...)`: round r from round r-1 and round r's transcript: every survivor's signed masked update and every
  holder's signed revealed shares are checked against the identity keys of the members' certificates, the masks
  are removed with the aggregator's own `unmask`, and the strategy's `aggregate_sum` (the dashboard's code)
  turns the sum into the next model and server state;
- `same_model(a, b)`: whether the weights a request names are the model the plant derived, to float rounding.

The plant then computes on its own copy, never on the request's: the tolerance decides only whether a request is
answered, so the low bits of the request's weights reach no computation and carry nothing (README, Verified
rounds).

Strategies whose step needs single updates (median, trimmed mean, Krum, outlier screening) or a server-side random
draw (central DP), and SCAFFOLD (its control variate is a second, unmasked sum), cannot be replayed from a secure
sum: `strategy_of` refuses them.
"""

from __future__ import annotations

import numpy as np

from shared.aggregation.vectors import float_keys
from shared.errors import AggregationError, VerificationError
from shared.model_spec import ModelSpec
from shared.protocol.parts import RoundRef
from shared.protocol.transcript import RoundTranscript
from shared.secagg.protocol import RevealedShares, unmask
from shared.secagg.quantize import fraction_bits
from shared.secagg.statements import contribution_message, reveal_message, verify
from shared.strategies import ServerState, Strategy, build_strategy
from shared.strategies.base import SecureSum

VERIFIABLE_ALGORITHMS = ("fedavg", "fedprox", "fednova", "feddyn")
VERIFIABLE_OPTIMIZERS = ("none", "fedavgm", "fedadam", "fedyogi")
RTOL, ATOL = 1e-6, 1e-7  # float32 keeps ~7 significant digits: two honest computations agree far inside this


def strategy_of(description: dict, federation_size: int = 0) -> Strategy:
    """The strategy a proof names (shared.experiment.training.verifiable_strategy writes it), or
    VerificationError for one that cannot be replayed from a secure sum."""
    d = dict(description)
    if d.get("algorithm") not in VERIFIABLE_ALGORITHMS:
        raise VerificationError(f"algorithm {str(d.get('algorithm'))[:20]!r} cannot be verified from a secure sum; "
                                f"verifiable: {', '.join(VERIFIABLE_ALGORITHMS)}")
    if d.get("server_optimizer") not in VERIFIABLE_OPTIMIZERS:
        raise VerificationError(f"server optimiser {str(d.get('server_optimizer'))[:20]!r} is not verifiable")
    try:
        numbers = {k: (None if d[k] is None else float(d[k])) for k in ("mu", "feddyn_alpha", "server_lr",
                                                                        "server_momentum")}
        clip = float(d["clip"])
        size = int(federation_size)
    except (KeyError, TypeError, ValueError) as exc:
        raise VerificationError(f"the proof's strategy is malformed: {exc}") from None
    if any(v is not None and not (np.isfinite(v) and 0 <= v <= 1e3) for v in numbers.values()) \
            or numbers["mu"] is None or numbers["feddyn_alpha"] is None or not 0 <= size <= 100_000 \
            or not (np.isfinite(clip) and 0 < clip <= 1e6):
        raise VerificationError("the proof's strategy has a parameter out of range")
    return build_strategy(d["algorithm"], mu=numbers["mu"], feddyn_alpha=numbers["feddyn_alpha"],
                          federation_size=size, server_optimizer=d["server_optimizer"], server_lr=numbers["server_lr"],
                          server_momentum=numbers["server_momentum"])


def genesis(spec: ModelSpec, seed: int) -> dict[str, np.ndarray]:
    """Round 0: the dashboard's initial model (dashboard.orchestration.preparation), built here from the same
    spec and seed by the same code."""
    from shared.models import build_model, get_weights  # torch: only when a plant verifies

    return get_weights(build_model(spec, seed=seed))


def _check_signatures(context: str, transcript: RoundTranscript, identity_keys: dict[str, str]) -> None:
    for name, c in sorted(transcript.contributions.items()):
        key = identity_keys.get(name)
        message = contribution_message(context, name, c.masked, c.weight, c.num_samples, c.steps)
        if key is None or not verify(key, c.signature, message):
            raise VerificationError(f"round {transcript.round}: the masked update of {name!r} is not signed by "
                                    "that member's identity key")
    for name, r in sorted(transcript.reveals.items()):
        key = identity_keys.get(name)
        if key is None or not verify(key, r.signature, reveal_message(context, name, r.revealed)):
            raise VerificationError(f"round {transcript.round}: the shares revealed by {name!r} are not signed by "
                                    "that member's identity key")


def _check_bounds(description: dict, transcript: RoundTranscript) -> None:
    """The round masked under the experiment's pinned clip, and with the fraction bits that clip and cohort give
    (the transcript's secure setup is the relay's word: a smaller clip or other bits would rescale the sum)."""
    secagg = transcript.secagg
    clip = description.get("clip")
    if clip is not None and secagg.clip != float(clip):
        raise VerificationError(f"round {transcript.round} masked under clip {secagg.clip}, not the experiment's "
                                f"{clip}")
    if secagg.fraction_bits != fraction_bits(len(secagg.participants), secagg.clip):
        raise VerificationError(f"round {transcript.round}: {secagg.fraction_bits} fraction bits is not what "
                                f"{len(secagg.participants)} plants with clip {secagg.clip} use")


def replay(description: dict, weights: dict[str, np.ndarray], state: ServerState, experiment: int,
           transcript: RoundTranscript, identity_keys: dict[str, str]) -> tuple[dict[str, np.ndarray], ServerState]:
    """Round r's model and server state from round r-1's and round r's transcript; VerificationError when a
    signature fails or the sum cannot be formed. `description`: the pinned strategy; `identity_keys`: each member's identity key, from the
    certificates the caller has checked against its pinned federation key."""
    context = RoundRef(experiment, transcript.round, transcript.attempt).context
    _check_signatures(context, transcript, identity_keys)
    strategy = strategy_of(description, transcript.federation_size)
    secagg = transcript.secagg
    try:
        revealed = [RevealedShares.from_dict(r.revealed) for r in transcript.reveals.values()]
        if any(r.holder != name for name, r in zip(transcript.reveals, revealed)):
            raise VerificationError("a reveal is filed under another holder's name")
        _check_bounds(description, transcript)
        total = unmask(sorted(secagg.participants), {n: c.masked for n, c in transcript.contributions.items()},
                       revealed, secagg.threshold, secagg.fraction_bits)
        bound = secagg.clip * sum(abs(float(c.weight)) for c in transcript.contributions.values())
        if not np.linalg.norm(total) <= bound * (1 + 1e-6) + len(total) * 2.0 ** -secagg.fraction_bits:
            raise VerificationError(f"round {transcript.round}: the secure sum is larger than its members' clipped "
                                    "updates can add up to")
        if len(total) != sum(int(np.size(weights[k])) for k in float_keys(weights)):
            raise VerificationError(f"round {transcript.round}: the secure sum does not fit the model")
        summed = SecureSum(total=total, weights={n: float(c.weight) for n, c in transcript.contributions.items()},
                           samples={n: c.num_samples for n, c in transcript.contributions.items()},
                           steps={n: c.steps for n, c in transcript.contributions.items()})
        aggregated = strategy.aggregate_sum(weights, summed, state, None)
    except (AggregationError, KeyError, TypeError, ValueError) as exc:
        raise VerificationError(f"round {transcript.round}: the transcript does not yield a model: {exc}") from None
    return aggregated.weights, aggregated.state


def same_model(named: dict[str, np.ndarray], derived: dict[str, np.ndarray]) -> bool:
    """Whether a request's weights are the derived model, to float rounding (names, shapes, and every value)."""
    if set(named) != set(derived):
        return False
    for key, value in derived.items():
        other = np.asarray(named[key])
        if other.shape != np.shape(value) or not np.allclose(other.astype(np.float64), np.asarray(value, np.float64),
                                                             rtol=RTOL, atol=ATOL):
            return False
    return True

