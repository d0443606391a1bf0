"""`PlantFloor`: the plant floor as the agent sees it. Three calls from the agent: `start()` after registering,
`heartbeat_fields()` for each heartbeat's body, `on_heartbeat_answer()` with each answer; `stop()` at the end.

What runs depends on the flags: the released model is always delivered and reported; --watch-dir scores the
folder's CSV files; --stream-interval (with --simulate) scores a live simulated stream; --score-port opens the
loopback endpoint (with the agent's /metrics)."""

from __future__ import annotations

import logging
import sqlite3

from factory_agent.floor.delivery import ModelDelivery
from factory_agent.floor.drift import DriftReference
from factory_agent.floor.personal import ModelChooser
from factory_agent.floor.scoring import FloorScorer
from factory_agent.floor.settings import FloorSettings
from factory_agent.floor.store import FloorStore
from shared.protocol.registry import FloorReport, ReportedAlert, ReportedModel

log = logging.getLogger(__name__)


class PlantFloor:
    def __init__(self, settings: FloorSettings, reference: DriftReference | None = None):
        self.settings = settings
        chooser = ModelChooser(settings.state_dir, settings.model_choice, settings.max_model_parameters)
        self.delivery = ModelDelivery(settings.models_dir, settings.dashboard_url, settings.max_bundle_bytes,
                                      max_parameters=settings.max_model_parameters, chooser=chooser,
                                      verify=_verifier(settings))
        self.store = FloorStore(settings.database, settings.keep_scores)
        self.scorer = FloorScorer(self.delivery, self.store, settings.drift_window, reference,
                                  settings.share_alert_details)
        self.parts: list = []  # the running watch folder, stream and endpoint, each with stop()

    def start(self) -> "PlantFloor":
        from factory_agent.floor.server import ScoringServer
        from factory_agent.floor.stream import LiveStream
        from factory_agent.floor.watch import WatchFolder

        s = self.settings
        self.delivery.current = self.delivery.load_last_good()
        if s.watch_dir is not None:
            self.parts.append(WatchFolder(s.watch_dir, self.scorer, s.watch_interval, s.max_file_bytes).start())
        if s.stream_interval and s.stream_profile:
            self.parts.append(LiveStream(self.scorer, s.stream_profile, s.stream_interval, s.stream_rows,
                                         s.stream_machines, s.seed).start())
        if s.score_port is not None:
            self.parts.append(ScoringServer(s.score_port, self.scorer, s.max_request_bytes,
                                            s.max_request_rows).start())
        return self

    def heartbeat_fields(self) -> dict:
        """The floor's part of a heartbeat; {} (the heartbeat still goes) when the store cannot be read."""
        try:
            return self.scorer.heartbeat_fields()
        except (sqlite3.Error, OSError) as exc:
            log.warning("the plant floor's store cannot be read (%s): this heartbeat carries no floor counts", exc)
            return {}

    def report(self) -> FloorReport | None:
        """The floor's part of a heartbeat as its message; None without a model (or an unreadable store)."""
        fields = self.heartbeat_fields()
        if not fields:
            return None
        model = fields["released_model"]
        return FloorReport(ReportedModel(**model) if model else None, fields["scored_rows"], fields["alerts_open"],
                           fields["drift"], fields["drift_baseline"], fields["alerts_opened"],
                           tuple(ReportedAlert(**a) for a in fields["alerts"]))

    def on_heartbeat_answer(self, answer: dict, heartbeat_token: str) -> None:
        self.delivery.offer(answer, heartbeat_token)

    def stop(self) -> None:
        for part in reversed(self.parts):
            part.stop()
        self.parts.clear()


def start_plant_floor(config, data=None) -> PlantFloor:
    """The agent's step: the plant floor for its flags (factory_agent.config.AgentConfig), started; `data` (the
    plant's shared.data PlantData) gives the drift baseline its validation split."""
    return PlantFloor(FloorSettings.from_agent_config(config), DriftReference.of(data) if data else None).start()


def _verifier(settings: FloorSettings):
    """The check of a released bundle against the models this plant derived (policy verify_models), or None."""
    if not settings.verifies_models:
        return None

    def verify(bundle):
        from factory_agent.plant.verification import verified_release  # imported on a release, not at rest

        return verified_release(bundle, settings.state_dir)
    return verify
