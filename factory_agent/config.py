"""The agent's settings: command-line flags, each also readable from a FACTORY_* environment variable
(DESIGN §3). Flags win over the environment, the environment over the defaults."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from shared.data.simulator import PROFILES
from shared.env import env_bool, env_float, env_int, env_secret, env_str
from shared.errors import ConfigurationError
from shared.protocol.fields import PLANT_NAME_RULE, is_plant_name


@dataclass(frozen=True)
class AgentConfig:
    factory_name: str
    hostname: str
    public_hostname: str | None
    port: int
    dashboard_url: str
    dev_mode: bool
    reset: bool
    verbose: bool
    data: str | None
    label_column: str | None
    drop_columns: tuple[str, ...]
    group_column: str | None
    time_column: str | None
    simulate: str
    rows: int
    seed: int
    heartbeat_interval: float
    enrollment_token: str
    state_dir: Path
    log_dir: Path
    admin_email: str
    admin_password: str | None
    orchestrator_email: str
    orchestrator_password: str
    approval_interval: float
    byzantine: str | None
    policy_overrides: dict  # the plant policy settings given as flags or FACTORY_* variables (None: not given)
    # the plant floor (DESIGN §10, factory_agent.floor): where dropped CSVs are scored, the live simulated stream,
    # the loopback scoring endpoint
    watch_dir: Path | None = None
    watch_interval: float = 2.0
    stream_interval: float | None = None
    score_port: int | None = None
    model_choice: str = "best"  # --model-choice (factory_agent.floor.personal)
    federation_key: Path | None = None  # --federation-key: the administrator's public key, pinned at enrolment

    @property
    def log_file(self) -> Path:
        return self.log_dir / f"{self.factory_name}.log"


def _numeric_suffix(mode: str) -> bool:
    kind, _, value = mode.partition(":")
    try:
        return kind in ("scale", "noise") and float(value) == float(value)
    except ValueError:
        return False


def build_parser() -> argparse.ArgumentParser:
    env = env_str
    p = argparse.ArgumentParser(
        prog="FactoryDatasite.py",
        description="Start a plant's PySyft datasite with its private data and register it with the "
                    "FactoryFL dashboard. Every flag can also be set by the FACTORY_* variable shown.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--factory_name", default=env("FACTORY_NAME", "pdm_factory_datasite"),
                   help="unique plant name [FACTORY_NAME]")
    p.add_argument("--hostname", default=env("FACTORY_HOSTNAME", "localhost"),
                   help="address the datasite binds to and the dashboard reaches it at [FACTORY_HOSTNAME]")
    p.add_argument("--public-hostname", default=env("FACTORY_PUBLIC_HOSTNAME"),
                   help="name the dashboard reaches this datasite by, when it differs from --hostname "
                        "(e.g. 0.0.0.0 inside a container) [FACTORY_PUBLIC_HOSTNAME]")
    p.add_argument("--port", type=int, default=env_int("FACTORY_PORT", 8080),
                   help="datasite port [FACTORY_PORT]")
    p.add_argument("--dashboard_url", default=env("FACTORY_DASHBOARD_URL", "http://localhost:5000"),
                   help="the dashboard's base URL [FACTORY_DASHBOARD_URL]")
    p.add_argument("--dev_mode", action="store_true", default=env_bool("FACTORY_DEV_MODE", False),
                   help="PySyft development mode: the datasite serves plain HTTP, without a certificate (a "
                        "dashboard that requires TLS refuses it) [FACTORY_DEV_MODE]")
    p.add_argument("--reset", action="store_true", default=env_bool("FACTORY_RESET", False),
                   help="wipe the datasite's users, data and approvals at start [FACTORY_RESET]")
    p.add_argument("--verbose", action="store_true", default=env_bool("FACTORY_VERBOSE", False),
                   help="log to the console too, with debug detail [FACTORY_VERBOSE]")
    _add_data_flags(p)
    _add_operation_flags(p)
    _add_policy_flags(p)
    _add_floor_flags(p)
    return p


def _add_data_flags(p: argparse.ArgumentParser) -> None:
    env = env_str
    profiles = ", ".join(f"{name} ({prof.description})" for name, prof in PROFILES.items()).replace("%", "%%")
    data = p.add_argument_group("data (a CSV of your own, or the simulator)")
    data.add_argument("--data", default=env("FACTORY_DATA"), help="the plant's CSV file [FACTORY_DATA]")
    data.add_argument("--label-column", default=env("FACTORY_LABEL_COLUMN"),
                      help="failure label column, required with --data [FACTORY_LABEL_COLUMN]")
    data.add_argument("--drop-columns", default=env("FACTORY_DROP_COLUMNS", ""),
                      help="comma-separated columns to ignore [FACTORY_DROP_COLUMNS]")
    data.add_argument("--group-column", default=env("FACTORY_GROUP_COLUMN"),
                      help="machine / unit id column [FACTORY_GROUP_COLUMN]")
    data.add_argument("--time-column", default=env("FACTORY_TIME_COLUMN"),
                      help="cycle or timestamp column [FACTORY_TIME_COLUMN]")
    data.add_argument("--simulate", default=env("FACTORY_SIMULATE", "default"), choices=sorted(PROFILES),
                      help=f"simulator profile when no --data is given [FACTORY_SIMULATE]: {profiles}")
    data.add_argument("--rows", type=int, default=env_int("FACTORY_ROWS", 3000),
                      help="rows to simulate [FACTORY_ROWS]")
    data.add_argument("--seed", type=int, default=env_int("FACTORY_SEED", 0),
                      help="seed of the simulator and of the data split [FACTORY_SEED]")


def _add_operation_flags(p: argparse.ArgumentParser) -> None:
    env = env_str
    p.add_argument("--heartbeat-interval", type=float, default=env_float("FACTORY_HEARTBEAT_INTERVAL", 30),
                   help="seconds between heartbeats [FACTORY_HEARTBEAT_INTERVAL]")
    p.add_argument("--enrollment-token", default=env_secret("FACTORY_ENROLLMENT_TOKEN", ""),
                   help="the dashboard's enrollment token [FACTORY_ENROLLMENT_TOKEN]")
    p.add_argument("--state-dir", default=env("FACTORY_STATE_DIR"),
                   help="keys and credentials, mode 0600 (default state/<factory_name>) [FACTORY_STATE_DIR]")
    p.add_argument("--log-dir", default=env("FACTORY_LOG_DIR", "logs"), help="log folder [FACTORY_LOG_DIR]")
    p.add_argument("--admin-email", default=env("FACTORY_ADMIN_EMAIL"),
                   help="the plant admin's login (default admin@<factory_name>.factoryfl.org) [FACTORY_ADMIN_EMAIL]")
    p.add_argument("--admin-password", default=env_secret("FACTORY_ADMIN_PASSWORD"),
                   help="the plant admin's password (default: random, kept in the state dir) "
                        "[FACTORY_ADMIN_PASSWORD]")
    p.add_argument("--orchestrator-email", default=env("FACTORY_ORCHESTRATOR_EMAIL",
                                                        "orchestrator@factoryfl.org"),
                   help="the dashboard's data-scientist login on this datasite [FACTORY_ORCHESTRATOR_EMAIL]")
    p.add_argument("--orchestrator-password", default=env_secret("FACTORY_ORCHESTRATOR_PASSWORD"),
                   help="its password (default: random, kept in the state dir) [FACTORY_ORCHESTRATOR_PASSWORD]")
    p.add_argument("--approval-interval", type=float, default=env_float("FACTORY_APPROVAL_INTERVAL", 2),
                   help="seconds between checks for new code requests [FACTORY_APPROVAL_INTERVAL]")
    p.add_argument("--federation-key", default=env("FACTORY_FEDERATION_KEY"),
                   help="the federation administrator's public key file (PEM), handed over out of band by the data "
                        "owner: pinned into the state folder at the first start; secure aggregation masks only "
                        "among plants it certified (README: Membership) [FACTORY_FEDERATION_KEY]")
    p.add_argument("--byzantine", default=env("FACTORY_BYZANTINE"),
                   help="FOR TESTS AND DEMOS ONLY: make this plant malicious on purpose: sign_flip, scale:F, "
                        "noise:SIGMA or label_flip [FACTORY_BYZANTINE]")


def _add_floor_flags(p: argparse.ArgumentParser) -> None:
    env = env_str
    group = p.add_argument_group("the plant floor: scoring new data with the released model (DESIGN §10)")
    group.add_argument("--watch-dir", default=env("FACTORY_WATCH_DIR"),
                       help="score every CSV dropped here into <name>.scores.csv beside it [FACTORY_WATCH_DIR]")
    group.add_argument("--watch-interval", type=float, default=env_float("FACTORY_WATCH_INTERVAL", 2),
                       help="seconds between two looks at --watch-dir [FACTORY_WATCH_INTERVAL]")
    group.add_argument("--stream-interval", type=float, default=env_float("FACTORY_STREAM_INTERVAL", 0),
                       help="with --simulate: score freshly simulated readings every this many seconds; 0: off "
                            "[FACTORY_STREAM_INTERVAL]")
    group.add_argument("--model-choice", default=env("FACTORY_MODEL_CHOICE", "best"),
                       choices=("global", "personalized", "best"),
                       help="which model scores here when this plant personalized the released model's experiment: "
                            "the global one, its own personalized one, or the better of the two on its own "
                            "validation F1 [FACTORY_MODEL_CHOICE]")
    group.add_argument("--score-port", type=int, default=env_int("FACTORY_SCORE_PORT", 0),
                       help="serve POST /score and GET /metrics on 127.0.0.1:PORT for plant systems; 0: off "
                            "[FACTORY_SCORE_PORT]")


def _floor_settings(a: argparse.Namespace) -> dict:
    if a.stream_interval and a.data:
        raise ConfigurationError("--stream-interval streams simulated readings: it needs --simulate, not --data")
    if a.stream_interval and not 0.1 <= a.stream_interval <= 86400:
        raise ConfigurationError(f"--stream-interval must be between 0.1 and 86400 seconds, got {a.stream_interval}")
    if not 0.1 <= a.watch_interval <= 3600:
        raise ConfigurationError(f"--watch-interval must be between 0.1 and 3600 seconds, got {a.watch_interval}")
    if a.score_port and not 1 <= a.score_port <= 65535:
        raise ConfigurationError(f"--score-port {a.score_port} is not a TCP port (1-65535)")
    if a.score_port and a.score_port == a.port:
        raise ConfigurationError("--score-port must differ from --port (the datasite's)")
    return {"watch_dir": Path(a.watch_dir) if a.watch_dir else None, "watch_interval": a.watch_interval,
            "stream_interval": a.stream_interval or None, "score_port": a.score_port or None,
            "model_choice": a.model_choice}


# The plant's policy (factory_agent.plant.policy, DESIGN §9): flag, FACTORY_<NAME> variable, else policy.yaml in
# the state folder, else the default.
POLICY_FLAGS = {
    "require_secure_aggregation": "release no unmasked update", "require_dp": "train only with DP-SGD",
    "min_noise_multiplier": "the least DP-SGD noise multiplier accepted",
    "max_epsilon": "the largest target epsilon one experiment may ask",
    "lifetime_epsilon": "the plant's DP-SGD budget across all experiments",
    "dp_delta": "the delta the lifetime budget is accounted at",
    "min_cohort": "fewest plants in a secure-aggregation round",
    "min_threshold": "smallest secure-aggregation threshold (always > half the cohort)",
    "max_model_parameters": "largest model trained here", "max_local_epochs": "most local epochs per round",
    "max_personal_epochs": "most epochs of one personalization (fine-tune and local-only model together)",
    "min_personal_batch": "smallest batch of a personalization (bounds its steps with max_personal_epochs)",
    "max_dp_batch_values": "DP-SGD's expected batch x model parameters (per-sample gradients held at once)",
    "max_missing_features": "most features a model may name that this plant lacks",
    "max_example_flops": "floating-point operations of one example's forward pass",
    "max_batch_values": "activation values one batch holds (evaluation batches are sized to it)",
    "max_request_flops": "floating-point operations of one request, all its passes",
    "max_attempts": "attempts per round", "min_release_rows": "fewest rows behind any released number",
    "scaler_tolerance": "how far a global scaler may be from this plant's statistics (factor)",
    "max_calls_per_hour": "calls to fl_step per hour",
    "evaluation_noise": "noise multiplier of every evaluation (DP, charged to the ledger); 0: exact, unless "
                        "--require-dp (then 10)",
    "trust_dashboard": "mask in whatever cohort the dashboard names, without membership certificates (README: "
                       "Membership)",
    "verify_models": "train, evaluate and personalize only models this plant derived itself from the members' "
                     "signed secure sums (README: Verified rounds)",
    "share_alert_details": "heartbeats name each alert's machine and peak probability (default: only its id, "
                           "times and model; README: Plant floor)"}


def _add_policy_flags(p: argparse.ArgumentParser) -> None:
    group = p.add_argument_group("the plant's policy (default: policy.yaml in the state folder, else built in)")
    for name, text in POLICY_FLAGS.items():
        var = "FACTORY_" + name.upper()
        # `--require-dp` alone means yes; `--require-dp no` is allowed
        switch = name.startswith("require_") or name in ("trust_dashboard", "verify_models", "share_alert_details")
        group.add_argument("--" + name.replace("_", "-"), dest="policy_" + name, default=env_str(var),
                           nargs="?" if switch else None, const="true" if switch else None,
                           metavar="yes|no" if switch else "N", help=f"{text} [{var}]")


def parse_config(argv: list[str] | None = None) -> AgentConfig:
    a = build_parser().parse_args(argv)
    if a.data and not a.label_column:
        raise ConfigurationError("--data needs --label-column: the name of the column that marks failures")
    if not 1 <= a.port <= 65535:
        raise ConfigurationError(f"--port {a.port} is not a TCP port (1-65535)")
    if a.heartbeat_interval < 1:
        raise ConfigurationError("--heartbeat-interval must be at least 1 second")
    if not is_plant_name(a.factory_name):  # also the TLS certificate's common name (X.509: at most 64)
        raise ConfigurationError(f"--factory_name {a.factory_name[:40]!r}: {PLANT_NAME_RULE}")
    if not a.dashboard_url.startswith(("http://", "https://")):
        raise ConfigurationError(f"--dashboard_url {a.dashboard_url!r} must start with http:// or https://")
    if a.byzantine and not (a.byzantine in ("sign_flip", "label_flip") or _numeric_suffix(a.byzantine)):
        raise ConfigurationError(f"--byzantine {a.byzantine!r}: use sign_flip, label_flip, scale:F or noise:SIGMA")
    domain_name = a.factory_name.lower().replace("_", "-")
    return AgentConfig(
        factory_name=a.factory_name, hostname=a.hostname, public_hostname=a.public_hostname, port=a.port, dashboard_url=a.dashboard_url.rstrip("/"),
        dev_mode=a.dev_mode, reset=a.reset, verbose=a.verbose, data=a.data, label_column=a.label_column,
        drop_columns=tuple(c.strip() for c in a.drop_columns.split(",") if c.strip()),
        group_column=a.group_column, time_column=a.time_column, simulate=a.simulate, rows=a.rows,
        seed=a.seed, heartbeat_interval=a.heartbeat_interval, enrollment_token=a.enrollment_token,
        state_dir=Path(a.state_dir or Path("state") / a.factory_name), log_dir=Path(a.log_dir),
        admin_email=a.admin_email or f"admin@{domain_name}.factoryfl.org", admin_password=a.admin_password,
        orchestrator_email=a.orchestrator_email, orchestrator_password=a.orchestrator_password or "",
        approval_interval=a.approval_interval, byzantine=a.byzantine,
        policy_overrides={name: getattr(a, "policy_" + name) for name in POLICY_FLAGS},
        federation_key=Path(a.federation_key) if a.federation_key else None, **_floor_settings(a))
