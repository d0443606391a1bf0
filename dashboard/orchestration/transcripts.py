"""A secure round's transcript as its members signed it, built from the round's replies, and the proof a
request carries (shared.verification): pure, so that the workflow runs on in-process plants as on real ones. The
engine keeps each transcript beside the model it made (dashboard.orchestration.proofs)."""

from __future__ import annotations

import logging
from dataclasses import replace

from shared.protocol import Contribution, ModelProof, Reveal, RoundTranscript

log = logging.getLogger(__name__)


def transcript_of(plan, secagg, trained: dict, revealed: dict) -> RoundTranscript | None:
    """The round's transcript from the survivors' masked replies and the holders' reveals; None when a reply is
    unsigned (a plant of an older version: its round cannot be verified)."""
    if any(a.signature is None for a in trained.values()) or any(r.signature is None for r in revealed.values()):
        log.info("experiment %d round %d: a plant did not sign its part of the secure sum; the round has no "
                 "transcript plants can verify", plan.ref.experiment, plan.ref.round)
        return None
    return RoundTranscript(
        round=plan.ref.round, attempt=plan.ref.attempt, secagg=secagg, federation_size=plan.federation_size,
        contributions={n: Contribution(masked=a.masked, weight=float(a.weight), num_samples=a.num_samples,
                                       steps=a.steps, signature=a.signature) for n, a in trained.items()},
        reveals={n: Reveal(revealed=r.revealed, signature=r.signature) for n, r in revealed.items()})


def with_round(proof: ModelProof | None, transcript: RoundTranscript | None) -> ModelProof | None:
    """`proof` extended by this round's transcript (the last round's model is scored in the same round)."""
    if proof is None or transcript is None:
        return proof
    return replace(proof, transcripts=(*[t for t in proof.transcripts if t.round < transcript.round], transcript))
