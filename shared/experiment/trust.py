"""Which experiments a plant that does not trust the dashboard will refuse (issue 24, item 5), as one rule for the
API and the web form (dashboard.services.trust), and the plant's trust mode as its badge says it.

A plant reports its mode at registration (shared.protocol.registry.Registration): `trust_dashboard` (its policy's
opt-out: the dashboard's cohort, single updates, central DP) and the fingerprint of the federation key it pinned
(`--federation-key`, or None). An agent that does not report them is of unknown mode and counts as not trusting. Such a plant masks only among members certified by its federation key and
releases nothing but its share of a secure sum, so it refuses, and the dashboard refuses first with a 400 naming
the plants and their policy:
- secure aggregation off (its single update, which robust rules and outlier screening read, would reach the
  dashboard);
- robust rules that need single updates (median, trimmed mean, Krum);
- central DP (a random draw at the dashboard that no plant can check);
- an experiment whose rounds may hold fewer plants than the plant's min_cohort (a single-plant experiment);
- a secure experiment with a plant that pinned no federation key (it masks in no cohort at all).

What a plant reports here only decides what the dashboard refuses early, never what the plant accepts: the plant
enforces its own policy on every request (a dashboard's database that claims a plant trusts it gets no secure cohort
that plant cannot verify).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from shared.enums import RobustMethod
from shared.errors import ValidationError

if TYPE_CHECKING:
    from shared.experiment.config import ExperimentConfig

DEFAULT_MIN_COHORT = 3  # the plants' default policy (factory_agent.plant.policy.PlantPolicy.min_cohort)
MAX_MIN_COHORT = 10_000  # the most plants an experiment may ask for (shared.experiment.fields: min_factories)
VERIFIES, TRUSTS, NO_KEY, UNKNOWN = "verifies", "trusts", "no_key", "unknown"
STATE = {VERIFIES: "state-running", TRUSTS: "state-paused", NO_KEY: "state-failed", UNKNOWN: "state-pending"}
TRUST_FIELD = "factories"  # the setting a refusal is shown under (the plants chosen)


@dataclass(frozen=True)
class PlantTrust:
    """One plant's trust mode as the registry holds it; None where its agent did not say."""

    name: str
    trust_dashboard: bool | None = None
    federation_key: str | None = None  # the pinned federation key's fingerprint (shared.membership.federation_id)
    min_cohort: int = DEFAULT_MIN_COHORT
    verify_models: bool = False  # its policy's verify_models as it reported it (README, Verified rounds)

    @property
    def mode(self) -> str:
        if self.trust_dashboard:
            return TRUSTS
        if self.trust_dashboard is None:
            return UNKNOWN
        return VERIFIES if self.federation_key else NO_KEY

    @property
    def trusts(self) -> bool:
        return self.mode == TRUSTS

    @property
    def state(self) -> str:
        """The badge's class in the pages' one palette of states (green verifies, amber trusts, red refuses)."""
        return STATE[self.mode]

    @property
    def label(self) -> str:
        """The badge: what this plant does with a secure round the dashboard names."""
        mode = self.mode
        if mode == TRUSTS:
            return "trusts the dashboard"
        if mode == VERIFIES:
            what = "models and membership" if self.verify_models else "membership"
            return f"verifies {what} (key {self.federation_key[:8]}…)"
        if mode == NO_KEY:
            return "no federation key: refuses secure rounds"
        return "trust mode unknown: its agent does not report it"

    @property
    def policy(self) -> str:
        """The plant and its policy, as a refusal names them."""
        return f"{self.name} ({self.label}, min_cohort {self.min_cohort})"

    def to_dict(self) -> dict:
        return {"mode": self.mode, "label": self.label, "trust_dashboard": self.trust_dashboard,
                "federation_key": self.federation_key, "min_cohort": self.min_cohort,
                "verify_models": self.verify_models}


def verify_models_of(policy: dict | None) -> bool:
    """Whether the plant reported a policy that verifies models (True only for a JSON true)."""
    return (policy or {}).get("verify_models") is True


def min_cohort_of(policy: dict | None) -> int:
    """The plant's reported min_cohort when it is a sensible whole number, else the plants' default (3)."""
    value = (policy or {}).get("min_cohort")
    if isinstance(value, bool) or not isinstance(value, int) or not 2 <= value <= MAX_MIN_COHORT:
        return DEFAULT_MIN_COHORT
    return value


def unverifiable(config: ExperimentConfig) -> list[str]:
    """What in these settings a plant can check neither at its side nor through the secure sum."""
    found = []
    if not config.secure_aggregation:
        found.append("secure_aggregation is off: each plant's single update (which robust rules and outlier "
                     "screening read) would reach the dashboard")
    method = config.robust.method
    if RobustMethod(method).needs_single_updates:
        found.append(f"robust.method {method} needs each plant's single update")
    if config.privacy.central:
        found.append("privacy.mode central draws its noise at the dashboard, where no plant can check it")
    return found


def smallest_round(config: ExperimentConfig, selected: int) -> int:
    """The fewest plants a round of this experiment may hold: min_factories, or every selected plant when fewer."""
    return min(config.min_factories, selected)


def reasons(config: ExperimentConfig, plants: list[PlantTrust]) -> list[tuple[str, list[PlantTrust]]]:
    """Why the selected `plants` that do not trust the dashboard will refuse this experiment: each reason with the
    plants it applies to (the one rule; `refusals` words it for the API, the pre-flight check lists it per plant)."""
    untrusting = [p for p in plants if not p.trusts]
    if not untrusting:
        return []
    found = [(r, untrusting) for r in unverifiable(config)]
    if config.secure_aggregation:
        size = smallest_round(config, len(plants))
        small = [p for p in untrusting if size < p.min_cohort]
        if small:
            found.append((f"its rounds may hold {size} plant(s) (min_factories {config.min_factories}, "
                          f"{len(plants)} selected), fewer than these plants' min_cohort", small))
        no_key = [p for p in untrusting if p.mode == NO_KEY]
        if no_key:
            found.append(("these plants pinned no federation key, so they mask in no cohort", no_key))
    return found


def refusals(config: ExperimentConfig, plants: list[PlantTrust]) -> list[ValidationError]:
    """Why the selected `plants` that do not trust the dashboard will refuse this experiment: one ValidationError
    (field "factories") naming those plants and their policy, or none."""
    found = reasons(config, plants)
    if not found:
        return []
    every = unverifiable(config)  # these apply to every untrusting plant: named once, above
    named = {p.name: p for _, group in found for p in group}
    message = (f"refused: {len(named)} selected plant(s) do not trust the dashboard and would refuse this "
               f"experiment: {'; '.join(p.policy for p in named.values())}. Why: "
               + "; ".join(reason if reason in every else f"{reason} ({', '.join(p.name for p in group)})"
                           for reason, group in found)
               + ". Use secure aggregation with enough plants per round and a rule the plants can verify, leave "
                 "these plants out, or start them with --trust-dashboard if their owners run this dashboard")
    return [ValidationError(TRUST_FIELD, message)]
