"""The scheduler's jobs: factory liveness and the federated round engine."""
