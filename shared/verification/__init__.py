"""Verified models (README, "Verified rounds"): a plant computes on a model only when it has derived that model
itself, from the model spec and the experiment's public seed (round 0) and from the members' signed transcripts of
each round's secure sum, through the same strategy code the dashboard ran. See shared.verification.chain."""

from shared.verification.chain import VERIFIABLE_ALGORITHMS, genesis, replay, same_model, strategy_of

__all__ = ["VERIFIABLE_ALGORITHMS", "genesis", "replay", "same_model", "strategy_of"]
