"""`--stream-interval SECONDS` with `--simulate`: a live stream of fresh simulated readings (shared.data.simulator,
the plant's own profile) scored every interval, as a plant's sensors would deliver them. Each batch continues
the previous one's cycle numbers, gives every machine at least one full window for sequence models, and is
drawn from its own seed (the plant's --seed and the batch number), so a run can be replayed."""

from __future__ import annotations

import logging

import pandas as pd

from factory_agent.floor.background import Background
from factory_agent.floor.scoring import FloorScorer, NoModelYet
from shared.errors import FederatedLearningError

log = logging.getLogger(__name__)


def simulated_batch(profile: str, number: int, rows: int, machines: int, seed: int,
                    sequence_length: int = 1) -> pd.DataFrame:
    """Batch `number` of the stream: at least `rows` readings over `machines` machines, cycles after the last
    batch's."""
    from shared.data.simulator import TIME_COLUMN, simulate

    per_machine = max(-(-rows // machines), sequence_length, 2)
    frame = simulate(profile, rows=max(per_machine * machines, 10), seed=seed * 1_000_003 + number, machines=machines)
    frame[TIME_COLUMN] = frame[TIME_COLUMN] + number * per_machine
    return frame


class LiveStream(Background):
    thread_name = "live-stream"

    def __init__(self, scorer: FloorScorer, profile: str, interval: float, rows: int = 50, machines: int = 5,
                 seed: int = 0):
        super().__init__()
        self.scorer = scorer
        self.profile = profile
        self.interval = interval
        self.rows = rows
        self.machines = machines
        self.seed = seed
        self.batches = 0

    def tick(self) -> int:
        """Score one batch; the number of scores (0 without a model yet)."""
        try:
            model = self.scorer.model()
        except NoModelYet:
            return 0
        frame = simulated_batch(self.profile, self.batches, self.rows, self.machines, self.seed,
                                model.bundle.spec.sequence_length)
        self.batches += 1
        batch = self.scorer.score(frame, "stream")
        log.debug("stream batch %d: %d scores in %.3f s", self.batches, len(batch.scores), batch.seconds)
        return len(batch.scores)

    def run(self) -> None:
        log.info("live stream: %d simulated %s readings scored every %.1f s once a released model is here",
                 self.rows, self.profile, self.interval)
        failing = False
        while not self.stop_event.wait(self.interval):
            try:
                self.tick()
                failing = False
            except FederatedLearningError as exc:  # e.g. a model whose features the simulator does not have
                if not failing:
                    log.warning("live stream cannot be scored: %s (said once until it works again)", exc)
                failing = True
