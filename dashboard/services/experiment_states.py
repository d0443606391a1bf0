"""Which actions an experiment allows in which state, and how its state reads (issue 27 item 3): the one rule the
pages (which buttons are enabled, and why not) and the API (409 for an action the state refuses) both use.

Pure functions over an experiment's status, the round in flight and the rounds recorded: no database here.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.enums import ExperimentStatus
from shared.errors import ExperimentError

PENDING, RUNNING, PAUSED = ExperimentStatus.PENDING.value, ExperimentStatus.RUNNING.value, ExperimentStatus.PAUSED.value

# action -> (the statuses it is valid in, the status it leads to)
TRANSITIONS: dict[str, tuple[frozenset[str], str]] = {
    "start": (frozenset({PENDING}), RUNNING),
    "pause": (frozenset({RUNNING}), PAUSED),
    "resume": (frozenset({PAUSED}), RUNNING),
    "cancel": (frozenset({PENDING, RUNNING, PAUSED}), ExperimentStatus.CANCELLED.value),
}
# actions on what the experiment produced: they need a recorded (completed) round, whatever the status
NEED_A_ROUND = ("release", "download")
# archiving hides a finished experiment from the default list (kept whole); one that may still run cannot be
ACTIVE = frozenset({PENDING, RUNNING, PAUSED})
ACTIONS = (*TRANSITIONS, *NEED_A_ROUND, "archive", "unarchive")
# what the operator confirms before the action is done (the page asks; the API, used by scripts, does not)
CONFIRM = {
    "cancel": "Cancel this experiment? A round in progress is aborted and the experiment cannot be restarted; "
              "the rounds recorded so far and their models are kept.",
    "release": "Release this model to the plants? Each plant switches to it with its next heartbeat.",
}


@dataclass(frozen=True)
class Action:
    """One button: whether it is enabled, and if not why (shown as its title and aria-description)."""

    name: str
    enabled: bool
    reason: str | None = None
    confirm: str | None = None

    def to_dict(self) -> dict:
        return {"enabled": self.enabled, "reason": self.reason, "confirm": self.confirm}


@dataclass(frozen=True)
class State:
    """How a status reads: `name` picks the colour (CSS class state-<name>, one palette on every page), `label`
    is the badge's text and `tone` the message box's (info: plain text, warn: amber, error: red)."""

    name: str
    label: str
    tone: str

    def to_dict(self) -> dict:
        return {"name": self.name, "label": self.label, "tone": self.tone}


def _transition_refusal(action: str, status: str) -> str | None:
    allowed, _ = TRANSITIONS[action]
    if status in allowed:
        return None
    return f"cannot {action} an experiment that is {status} (only when {' or '.join(sorted(allowed))})"


def check_transition(action: str, status: str) -> str:
    """The status `action` leads to from `status`; ExperimentError (HTTP 409) when the status does not allow it."""
    if action not in TRANSITIONS:
        raise ExperimentError(f"unknown action {action[:20]!r}; actions are {', '.join(TRANSITIONS)}")
    refusal = _transition_refusal(action, status)
    if refusal:
        raise ExperimentError(refusal)
    return TRANSITIONS[action][1]


def archive_refusal(action: str, status: str, archived: bool) -> str | None:
    """Why `action` (archive or unarchive) is not valid now, or None."""
    if action == "unarchive":
        return None if archived else "the experiment is not archived"
    if archived:
        return "the experiment is archived already"
    if status in ACTIVE:
        return f"cannot archive an experiment that is {status}: cancel it or let it finish first"
    return None


def actions(status: str, rounds_recorded: int, archived: bool = False) -> dict[str, Action]:
    """Every action of the experiment page and list, enabled or with the reason it is not."""
    out = {name: Action(name, (why := _transition_refusal(name, status)) is None, why, CONFIRM.get(name))
           for name in TRANSITIONS}
    no_round = None if rounds_recorded > 0 else "no round recorded yet: there is no model to release or download"
    for name in NEED_A_ROUND:
        out[name] = Action(name, no_round is None, no_round, CONFIRM.get(name))
    for name in ("archive", "unarchive"):
        why = archive_refusal(name, status, archived)
        out[name] = Action(name, why is None, why)
    return out


def state(status: str, running_round: int | None, message: str | None) -> State:
    """The badge: "pausing after round N" while a paused experiment's round N still runs (pause takes effect
    between rounds), "waiting" (amber) while a running experiment has no round in flight and says what it waits
    for (engine._wait), the status itself otherwise."""
    if status == PAUSED and running_round is not None:
        return State("pausing", f"pausing after round {running_round}", "info")
    if status == RUNNING and running_round is None and message:
        return State("waiting", "waiting", "warn")
    tone = {ExperimentStatus.FAILED.value: "error", ExperimentStatus.BUDGET_EXHAUSTED.value: "warn",
            ExperimentStatus.CANCELLED.value: "warn"}.get(status, "info")
    return State(status, status.replace("_", " "), tone)
