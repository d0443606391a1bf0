"""The secure-sum stage (shared.secagg): the dashboard relays sealed shares and removes the masks from the sum;
it never sees a single plant's update."""

from __future__ import annotations

from dashboard.orchestration.channel import Participant, PhaseResult, PlantChannel
from shared.errors import AggregationError
from shared.protocol import RevealRequest, RoundRef, SecAggRequest, TrainReply
from shared.secagg.protocol import RevealedShares, unmask
from shared.strategies import SecureSum


def secure_sum(channel: PlantChannel, participants: list[Participant], ref: RoundRef, setup: SecAggRequest,
               answers: dict[str, TrainReply], timeout: float, on_answer=None) -> tuple[SecureSum, PhaseResult]:
    """Ask the survivors (plants that sent a masked update) to reveal shares, then remove the masks.
    AggregationError when too few plants send an update or reveal."""
    survivors = sorted(answers)
    if len(survivors) < setup.threshold:
        raise AggregationError(f"secure aggregation: {len(survivors)} plant(s) sent a masked update, "
                               f"{setup.threshold} are needed to remove the masks")
    holders = [p for p in participants if p.name in answers]
    phase = channel.dispatch(holders, lambda p: RevealRequest(
        ref=ref, secagg=setup, survivors=tuple(survivors),
        sealed={u: answers[u].sealed[p.name] for u in survivors}), timeout, on_answer)
    revealed = [RevealedShares.from_dict(answer.revealed) for answer in phase.answers.values()]
    total = unmask(sorted(setup.participants), {u: answers[u].masked for u in survivors}, revealed,
                   setup.threshold, setup.fraction_bits)
    summed = SecureSum(total=total, weights={u: float(answers[u].weight) for u in survivors},
                       samples={u: answers[u].num_samples for u in survivors},
                       steps={u: answers[u].steps for u in survivors})
    return summed, phase
