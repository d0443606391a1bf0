"""Plants in this process, behind the dashboard's `PlantChannel` interface: the round workflow runs unchanged
over them, for unit tests and for bench/quality.py.

Each plant is what a real one holds: its private arrays (as the agent loads them), its own state folder
(`PlantState`: policy, keys, ledgers, FedDyn term) and its policy; a call goes through
`factory_agent.plant.handlers.handle` with the request's wire form and comes back through `parse_reply`, the
code the vetted fl_step runs inside a datasite, without PySyft (which changes timing, not numbers).

Here rather than in dashboard/orchestration: the dashboard never imports the plant's package, and nothing in
production should hold plants' private rows in the dashboard's process.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dashboard.orchestration.channel import OnAnswer, Participant, PhaseResult, reason_of
from factory_agent.plant.handlers import handle
from factory_agent.plant.policy import PlantPolicy
from factory_agent.plant.state import PlantState
from shared.data.csv_loader import PlantData, load_frame
from shared.data.simulator import FAILURE_MODE_COLUMNS, simulate
from shared.errors import DataSiteError
from shared.protocol import Reply, Request, parse_reply

log = logging.getLogger(__name__)

# a benchmark measures learning, not the data owner's limits: nothing capped. Until the dashboard relays membership
# certificates (issue 24, item 1, left open on the membership branch) in-process cohorts trust the dashboard and keep
# the former 2-plant minimum.
UNCAPPED = PlantPolicy(max_calls_per_hour=10 ** 9, lifetime_epsilon=1e9, max_epsilon=1e9, min_noise_multiplier=0.0,
                       max_local_epochs=10 ** 6, max_attempts=10 ** 6, min_cohort=2, trust_dashboard=True)


@dataclass
class InProcessPlant:
    name: str
    data: PlantData
    index: np.ndarray  # (split, group) per row: the agent's "index" asset
    state: PlantState
    byzantine: str | None = None  # an attack, as the agent's --byzantine (factory_agent.plant.byzantine)
    certificate: object | None = None  # its membership certificate, when an administrator admitted it

    @classmethod
    def from_data(cls, name: str, data: PlantData, state_root: Path, policy: PlantPolicy = UNCAPPED
                  ) -> "InProcessPlant":
        """A plant over `data` with its own state folder `state_root/name`, holding `policy`."""
        state = PlantState(Path(state_root) / name)
        state.save_policy(policy)
        state.save_profile(name, list(data.schema.feature_names))
        return cls(name, data, np.stack([data.split, data.groups], 1), state)

    @classmethod
    def simulated(cls, name: str, profile: str, rows: int, seed: int, state_root: Path,
                  policy: PlantPolicy = UNCAPPED) -> "InProcessPlant":
        """A plant over the simulator's data, loaded as the agent's --simulate loads it."""
        data = load_frame(simulate(profile, rows, seed=seed), "machine_failure", FAILURE_MODE_COLUMNS,
                          "machine_id", "cycle")
        return cls.from_data(name, data, state_root, policy)

    @property
    def features(self) -> list[str]:
        return list(self.data.schema.feature_names)

    def participant(self) -> Participant:
        return Participant(name=self.name, public_key=self.state.secagg_public_key(), certificate=self.certificate)

    def answer(self, request: Request) -> Reply:
        """The plant's typed reply; DataSiteError with the plant's reason when it refuses or fails."""
        wire = handle(self.data.features, self.data.labels, self.index, request.to_wire(), self.state,
                      self.byzantine)
        if not wire.get("ok"):
            raise DataSiteError(f"{self.name}: {str(wire.get('error', 'unknown error'))[:2000]}")
        return parse_reply(request, wire)


class InProcessChannel:
    """The plants answer one after the other in this thread (reproducible numbers); a plant whose own call
    takes longer than `timeout` is a dropout, as its late answer would be over PySyft."""

    def __init__(self, plants: list[InProcessPlant]):
        self.plants = {p.name: p for p in plants}

    def participants(self, names: list[str] | None = None) -> list[Participant]:
        return [self.plants[n].participant() for n in (names if names is not None else list(self.plants))]

    def dispatch(self, participants: list[Participant], make_request: Callable[[Participant], Request],
                 timeout: float, on_answer: OnAnswer | None = None) -> PhaseResult:
        result = PhaseResult()
        for participant in participants:
            started = time.monotonic()
            try:
                plant = self.plants.get(participant.name)
                if plant is None:
                    raise DataSiteError(f"{participant.name}: no such plant in this process")
                reply = plant.answer(make_request(participant))
            except Exception as exc:  # as over PySyft: any failure of one plant is that plant's dropout
                result.dropouts[participant.name] = reason_of(exc)
                log.warning("dropout %s: %s", participant.name, result.dropouts[participant.name])
            else:
                if time.monotonic() - started > timeout:
                    result.dropouts[participant.name] = f"no answer within {timeout:g} s"
                else:
                    result.answers[participant.name] = reply
            if on_answer is not None:
                on_answer(participant.name, participant.name in result.answers)
        return result

    def drain_events(self) -> list[tuple[str, str, dict]]:
        """No code is submitted or approved in process: nothing to audit."""
        return []


def union_data(plants: list[InProcessPlant]) -> PlantData:
    """All plants' rows as one plant's (the centralized baseline): each row keeps its plant's split, features are
    aligned by name (0 where a plant lacks one), machine ids kept apart."""
    from shared.data.schema import merge_schemas

    schema = merge_schemas([p.data.schema for p in plants])
    names = schema.feature_names
    blocks, groups, offset = [], [], 0
    for p in plants:
        own = {n: i for i, n in enumerate(p.features)}
        block = np.zeros((len(p.data.labels), len(names)), np.float32)
        for j, n in enumerate(names):
            if n in own:
                block[:, j] = p.data.features[:, own[n]]
        blocks.append(block)
        groups.append(p.data.groups + offset)
        offset = int(groups[-1].max(initial=0)) + 1
    return PlantData(features=np.concatenate(blocks), labels=np.concatenate([p.data.labels for p in plants]),
                     split=np.concatenate([p.data.split for p in plants]), groups=np.concatenate(groups),
                     schema=schema)
