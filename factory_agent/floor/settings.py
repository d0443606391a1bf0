"""The plant floor's settings, read once from the agent's flags (factory_agent.config)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from factory_agent.plant.policy import PlantPolicy, load_policy
from factory_agent.plant.state import floor_database, policy_file, released_models_dir

MIB = 1024 * 1024


@dataclass(frozen=True)
class FloorSettings:
    state_dir: Path  # the plant's state folder (PlantState): released models and floor.sqlite live here
    dashboard_url: str
    watch_dir: Path | None = None  # --watch-dir: CSV files dropped here are scored
    watch_interval: float = 2.0  # seconds between two looks at the folder
    stream_profile: str | None = None  # simulator profile of the live stream (None: the plant has its own data)
    stream_interval: float | None = None  # --stream-interval: seconds between simulated batches (None: off)
    stream_rows: int = 50  # readings per simulated batch (at least a window per machine for sequence models)
    stream_machines: int = 5
    seed: int = 0
    score_port: int | None = None  # --score-port: POST /score and GET /metrics on 127.0.0.1 only
    max_bundle_bytes: int = 64 * MIB  # a released model larger than this is refused
    max_file_bytes: int = 256 * MIB  # a dropped CSV larger than this gets an error file
    max_request_bytes: int = 16 * MIB  # the loopback endpoint's largest body
    max_request_rows: int = 200_000
    keep_scores: int = 200_000  # scores kept in floor.sqlite (older ones are deleted)
    drift_window: int = 5_000  # the drift score covers about this many most recent scored rows
    max_model_parameters: int = PlantPolicy.max_model_parameters  # the policy's: a larger released model is refused
    model_choice: str = "best"  # --model-choice: global | personalized | best (factory_agent.floor.personal)
    verifies_models: bool = False  # the policy's: score only a released model this plant derived itself
    share_alert_details: bool = False  # the policy's: heartbeats name each alert's machine and peak probability

    @property
    def models_dir(self) -> Path:
        return released_models_dir(self.state_dir)

    @property
    def database(self) -> Path:
        return floor_database(self.state_dir)

    @classmethod
    def from_agent_config(cls, config) -> "FloorSettings":
        policy = load_policy(policy_file(config.state_dir), config.policy_overrides)  # what the agent itself resolved
        return cls(state_dir=Path(config.state_dir), dashboard_url=config.dashboard_url,
                   watch_dir=config.watch_dir, watch_interval=config.watch_interval,
                   stream_profile=None if config.data else config.simulate,
                   stream_interval=config.stream_interval, seed=config.seed, score_port=config.score_port,
                   max_model_parameters=policy.max_model_parameters, verifies_models=policy.verifies_models,
                   share_alert_details=policy.share_alert_details,
                   model_choice=getattr(config, "model_choice", "best"))
