"""What a plant tells the dashboard about itself when it registers (DESIGN §4), and the data it serves."""

from __future__ import annotations

import os

from factory_agent import AGENT_VERSION
from factory_agent.config import AgentConfig
from factory_agent.plant.policy import PlantPolicy
from factory_agent.plant.state import PlantState
from shared.data.csv_loader import PlantData, load_csv, load_frame
from shared.data.simulator import FAILURE_MODE_COLUMNS, GROUP_COLUMN, LABEL_COLUMN, TIME_COLUMN, simulate
from shared.enums import DataType, FactoryStatus, ModelType
from shared.membership import federation_id
from shared.protocol.registry import Registration


def load_plant_data(config: AgentConfig) -> PlantData:
    if config.data:
        return load_csv(config.data, config.label_column, config.drop_columns, config.group_column,
                        config.time_column, seed=config.seed)
    frame = simulate(config.simulate, rows=config.rows, seed=config.seed)
    return load_frame(frame, LABEL_COLUMN, FAILURE_MODE_COLUMNS, GROUP_COLUMN, TIME_COLUMN, seed=config.seed)


def registration_of(c: AgentConfig, data: PlantData, device: str, policy: PlantPolicy, creds, state: PlantState,
                    server_name: str, certificate_request: str | None) -> Registration:
    """The registration body: address, capabilities (what it can train, its schema and splits), the
    orchestrator account, its public keys, its policy and its certificate request, and its trust mode (whether its
    policy trusts the dashboard, and the federation key it pinned) for the dashboard to show and to refuse early
    what this plant will refuse (shared.experiment.trust)."""
    sequence_ready = bool(c.group_column or c.time_column or not c.data)
    return Registration(
        factory_name=c.factory_name, factory_hostname=server_name, factory_port=c.port,
        device=device, status=FactoryStatus.ONLINE.value,
        capabilities={
            "supported_models": ModelType.values() if sequence_ready else ModelType.tabular(),
            "data_type": (DataType.TIME_SERIES if sequence_ready else DataType.TABULAR).value,
            "num_samples": data.num_samples, "features": data.schema.feature_names,
            "schema": data.schema.to_dict(), "splits": data.split_counts(),
            "source": c.data and os.path.basename(c.data) or f"simulator:{c.simulate}",
            **({"byzantine": c.byzantine} if c.byzantine else {})},
        orchestrator={"email": creds.orchestrator_email, "password": creds.orchestrator_password},
        secagg_public_key=state.secagg_public_key(), identity_public_key=state.identity_public_key(),
        agent_version=AGENT_VERSION, policy=policy.to_dict(),
        certificate_request=certificate_request, trust_dashboard=policy.trust_dashboard,
        federation_key=federation_key_of(state))


def federation_key_of(state: PlantState) -> str | None:
    """The fingerprint of the federation key this plant pinned at enrolment (--federation-key), or None."""
    key = state.federation_key()
    return federation_id(key) if key is not None else None
