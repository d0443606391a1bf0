"""How the round workflow reaches plants: a `PlantChannel` sends one typed request to each participant in
parallel and returns their typed replies, a failure or a timeout making a dropout (DESIGN §6, step 2).

`SyftChannel` calls each plant's approved `fl_step` over PySyft through a `ConnectionPool` (one logged-in client
and one bound code object per plant, kept between rounds and experiments); the in-process channel
(factoryfl_testing.inprocess) calls the same plant handlers without PySyft, for tests and benchmarks. The
workflow cannot tell them apart.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from concurrent.futures import TimeoutError as FuturesTimeout
from dataclasses import dataclass, field
from typing import Protocol

from dashboard.orchestration.syft_clients import ConnectionPool, PlantAddress
from shared.errors import DataSiteError, FederatedLearningError, ProtocolError
from shared.protocol import Reply, Request

log = logging.getLogger(__name__)

OnAnswer = Callable[[str, bool], None]  # (plant, answered) as each plant answers, for live progress


@dataclass(frozen=True)
class Participant:
    """A plant taking part in a phase: its name, its X25519 public key (hex, for secure aggregation) and, for
    the PySyft channel, where and as whom to reach its datasite."""

    name: str
    public_key: str | None = None
    address: PlantAddress | None = None
    certificate: object | None = None  # shared.membership.MembershipCertificate, relayed into secure rounds


@dataclass
class PhaseResult:
    answers: dict[str, Reply] = field(default_factory=dict)
    dropouts: dict[str, str] = field(default_factory=dict)  # name -> reason


class PlantChannel(Protocol):
    def dispatch(self, participants: list[Participant], make_request: Callable[[Participant], Request],
                 timeout: float, on_answer: OnAnswer | None = None) -> PhaseResult:
        """`make_request(p)` sent to every participant; each answer typed, each failure a dropout with its reason."""

    def drain_events(self) -> list[tuple[str, str, dict]]:
        """(plant, audit action, detail) that happened since the last call (code submitted, approved)."""


def reason_of(exc: BaseException) -> str:
    """A dropout's reason: our own errors say it themselves; anything else is named by its type."""
    return str(exc) if isinstance(exc, FederatedLearningError) else f"{type(exc).__name__}: {exc}"


def connection_failed(exc: BaseException) -> bool:
    """Whether a failed call says the connection itself is bad. A plant that answered (a refusal by its policy,
    a malformed answer) keeps its login and bound code: re-logging in would only cost the next round."""
    return not isinstance(exc, (DataSiteError, ProtocolError))


class SyftChannel:
    """Plants over PySyft: one thread per participant, each calling its plant's approved fl_step."""

    def __init__(self, pool: ConnectionPool):
        self.pool = pool

    def _call(self, participant: Participant, make_request: Callable[[Participant], Request]) -> Reply:
        if participant.address is None:
            raise DataSiteError(f"{participant.name}: no datasite address to reach it at")
        return self.pool.get(participant.address).call(make_request(participant))

    def dispatch(self, participants: list[Participant], make_request: Callable[[Participant], Request],
                 timeout: float, on_answer: OnAnswer | None = None) -> PhaseResult:
        """A failure or a timeout makes a dropout; `on_answer` runs in this thread as each plant answers."""
        result = PhaseResult()
        executor = ThreadPoolExecutor(max_workers=max(1, len(participants)), thread_name_prefix="round")
        futures = {executor.submit(self._call, p, make_request): p.name for p in participants}
        try:
            for future in as_completed(futures, timeout=timeout):
                name, exc = futures[future], future.exception()
                if exc is None:
                    result.answers[name] = future.result()
                else:
                    self._dropout(result, name, reason_of(exc), connection_failed(exc))
                if on_answer is not None:
                    on_answer(name, exc is None)
        except FuturesTimeout:
            for future, name in futures.items():
                if not future.done() and name not in result.answers:
                    self._dropout(result, name, f"no answer within {timeout:g} s", True)
        executor.shutdown(wait=False, cancel_futures=True)
        return result

    def _dropout(self, result: PhaseResult, name: str, reason: str, reconnect: bool) -> None:
        result.dropouts[name] = reason
        if reconnect:  # log in again next time (the plant may have restarted)
            self.pool.drop(name)
        log.warning("dropout %s: %s", name, reason)

    def drain_events(self) -> list[tuple[str, str, dict]]:
        return self.pool.drain_events()
