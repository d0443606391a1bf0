"""One experiment setting as a row of the field table (shared.experiment.fields): its type, default, range or
choices, help, form section and the choice that shows it; `read` checks a hostile value against the row.

Ranges keep the API's two conventions (shared.experiment.validation): a whole number lies in [low, high], a
number in (low, high]. A row's `given` is the default of a body that does not name it, computed from the
settings read so far (`values`, dotted names) and the names the body gave (`named`); without one the default
is `default`, which is also what a stored experiment that lacks the setting loads with.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from shared.enums import StrEnum
from shared.experiment.validation import ValidationError, number, whole_number

SECTIONS = ("basic", "algorithm", "privacy", "robustness", "personalization")
Given = Callable[[Mapping[str, object], frozenset[str]], object]


@dataclass(frozen=True)
class Setting:
    name: str  # "rounds", or "privacy.epsilon" inside the privacy object
    kind: type  # int, float, str, bool (str with `choices`: one of them)
    default: object
    section: str
    help: str  # one line
    hover: str = ""  # the longer explanation
    label: str = ""
    low: float | None = None
    high: float | None = None
    choices: type[StrEnum] | None = None
    nullable: bool = False  # null is accepted and means "none" (no limit, the round's median...)
    # shown only when every (setting, values) holds, e.g. (("algorithm", ("fedprox",)),)
    shown_when: tuple[tuple[str, tuple[str, ...]], ...] = ()
    given: Given | None = None
    in_form: bool = True

    def __post_init__(self):
        if self.section not in SECTIONS:
            raise ValueError(f"{self.name}: unknown section {self.section!r}")

    @property
    def key(self) -> str:
        """The name inside its object ("epsilon" for "privacy.epsilon")."""
        return self.name.rsplit(".", 1)[-1]

    @property
    def part(self) -> str | None:
        """The nested object it lives in ("privacy", "robust"), None at the body's top level."""
        return self.name.split(".")[0] if "." in self.name else None

    def default_for(self, values: Mapping[str, object], named: frozenset[str]) -> object:
        return self.given(values, named) if self.given is not None else self.default

    def shown(self, values: Mapping[str, object]) -> bool:
        return all(values.get(name) in allowed for name, allowed in self.shown_when)

    def read(self, value: object) -> object:
        """The value checked (ValidationError naming this setting); numbers come back as float, whole
        numbers as int."""
        try:
            return self._read(value)
        except ValidationError as exc:
            raise ValidationError(self.name, exc.message) from exc

    def _read(self, value: object) -> object:
        if value is None and self.nullable:
            return None
        box = {self.key: value}
        if self.choices is not None:
            allowed = self.choices.values()
            if value not in allowed:
                listed = " or ".join(allowed) if len(allowed) == 2 else f"one of {', '.join(allowed)}"
                raise ValidationError(self.key, f"must be {listed}, got {value!r}")
            return value
        if self.kind is bool:
            if not isinstance(value, bool):
                raise ValidationError(self.key, f"must be true or false, got {value!r}")
            return value
        if self.kind is int:
            return whole_number(box, self.key, None, self.low, self.high)
        if self.kind is float:
            return number(box, self.key, None, self.low, self.high)
        return value

    def schema(self) -> dict:
        """The OpenAPI 3.0 schema of the value."""
        out: dict = {"type": {int: "integer", float: "number", bool: "boolean"}.get(self.kind, "string")}
        if self.choices is not None:
            out["enum"] = self.choices.values()
        if self.kind in (int, float) and self.low is not None:
            out.update(minimum=self.low, maximum=self.high)
            if self.kind is float:
                out["exclusiveMinimum"] = True
        if self.nullable:
            out["nullable"] = True
        if self.default is not None:  # with a `given` rule: the default of a body that names none of its inputs
            out["default"] = self.default
        out["description"] = self.hover or self.help
        if self.shown_when:
            out["x-shown-when"] = {name: list(values) for name, values in self.shown_when}
        return out
