"""The pages' forms (Flask-WTF). The experiment form is built from the field table (shared.experiment.fields:
each setting's label, type, default, choices, one-line help and hover text, and the choice that shows it), the
one place they live; the API validates what the form sends (`ExperimentForm.to_body`), and FORM_FIELD_OF puts
each of its errors under the right field."""

from __future__ import annotations

from flask_wtf import FlaskForm
import json

from wtforms import (BooleanField, FloatField, IntegerField, PasswordField, SelectField, SelectMultipleField,
                     StringField)
from wtforms.validators import DataRequired, Optional

from dashboard.registry.enrolment import MAX_ENROLMENT_HOURS
from dashboard.models.operators import ROLES
from shared.experiment.fields import SETTING, SETTINGS, TUNED_WITH, default_algorithm
from shared.experiment.setting import Setting

LABELS = {  # what a select shows for a value (the values themselves: the field table's choices)
    "model_type": {"mlp": "MLP with feature crosses (one row at a time)", "cnn": "CNN (one row at a time)",
                   "lstm": "LSTM (windows of cycles)", "hybrid": "CNN-LSTM (windows of cycles)"},
    "class_weight": {"pooled": "pooled over all plants (one objective)", "local": "each plant's own ratio"},
    "personalization": {"none": "none (every plant uses the global model)",
                        "finetune": "fine-tune every layer at each plant",
                        "fedper": "FedPer: fine-tune the head only, on the frozen federated body"},
    "privacy.mechanism": {"gaussian": "Gaussian (RDP accounting)", "laplace": "Laplace (pure epsilon per round)"},
}
RENAMED = {"privacy.noise_multiplier": "privacy_noise", "privacy.max_grad_norm": "privacy_clip"}
# empty in the form: their default depends on other settings (a `given` rule) or on the budget (the noise)
EMPTY = ("privacy.noise_multiplier",)
FORM_SETTINGS = [s for s in SETTINGS if s.in_form]
CHOSEN = [s for s in FORM_SETTINGS if s.choices is not None]  # the selects that show or hide the others


# the page's sections in order: the four basics first, then the rest of the basic rows as training, then each
# choice's section (issue 27, item 2); a row's section is its field-table section but for the basics' split
BASICS = ("name", "model_type", "factories", "rounds", "sequence_length")
SECTION_TITLES = {"basic": "Basics", "training": "Training", "algorithm": "Algorithm", "privacy": "Privacy",
                  "robustness": "Robustness", "personalization": "Personalization"}


def form_name(setting: Setting) -> str:
    return RENAMED.get(setting.name, setting.name.replace(".", "_"))


# an API error's field (shared.experiment: "privacy.epsilon") -> the form field that shows it
FORM_FIELD_OF = {"privacy": "privacy_mode", "robust": "robust_method", **{s.name: form_name(s) for s in FORM_SETTINGS}}


def _field(setting: Setting):
    """The WTForms field of a setting: a select of its choices, or a number, text or check box."""
    args = {"label": setting.label or setting.key, "description": setting.help,
            "render_kw": {"title": setting.hover} if setting.hover else None}
    if setting.name == "factories":  # the registered plants, set per request (ExperimentForm.offer_plants)
        return SelectMultipleField(choices=[], validate_choice=False, **args)
    if setting.choices is not None:  # the API validates the choice (one rule, one message)
        return SelectField(choices=[(v, LABELS.get(setting.name, {}).get(v, v)) for v in setting.choices.values()],
                           default=setting.default, validate_choice=False, **args)
    if setting.kind is bool:
        return BooleanField(default=setting.default, **args)
    empty = setting.given is not None or setting.name in EMPTY
    default = None if empty else setting.default
    if setting.kind in (int, float):
        kind = IntegerField if setting.kind is int else FloatField
        return kind(default=default, validators=[Optional()], **args)
    return StringField(validators=[DataRequired()] if setting.name == "name" else [], **args)


class RoleForm(FlaskForm):
    role = SelectField("Role", choices=[(r, r) for r in ROLES])


class NewOperatorForm(FlaskForm):
    """The Operators page's "new operator": checked by dashboard.services.operators (one rule with the API)."""

    email = StringField("E-mail", validators=[DataRequired()])
    role = SelectField("Role", choices=[(r, r) for r in ROLES], default="viewer",
                       description="viewer: read; operator: also run experiments; admin: also plants and operators")
    password = PasswordField("Initial password", description="Leave empty to have one generated and shown once; "
                                                             "they change it at /password.")


class EnrolmentForm(FlaskForm):
    factory_name = StringField("Plant name", validators=[DataRequired()],
                               description="The --factory_name the plant's agent will use.")
    expires_in_hours = FloatField("Expires after (hours)", default=24, validators=[Optional()],
                                  description=f"At most {MAX_ENROLMENT_HOURS}.")


class ExperimentForm(FlaskForm):
    """One field per setting of the field table that operators set from the page (built below)."""

    start_now = BooleanField("Start now", default=True)

    def to_body(self) -> dict:
        """The API's body (POST /api/experiments) for what the form holds: every setting the choices show
        (empty numbers take the defaults)."""
        chosen = {s.name: self[form_name(s)].data for s in CHOSEN}
        body: dict = {"privacy": {}, "robust": {}}
        for setting in FORM_SETTINGS:
            value = self[form_name(setting)].data
            if setting.name == "factories" or value is None or not setting.shown(chosen):
                continue
            if setting.part is None:
                body[setting.name] = bool(value) if setting.kind is bool else value
            else:
                body[setting.part][setting.key] = value
        body["name"] = body.get("name") or ""
        privacy_mode = chosen["privacy.mode"]
        if privacy_mode != "none" and body["personalization"] == SETTING["personalization"].default:
            del body["personalization"]  # the select's default, not a choice: a DP experiment takes none (H2)
        fallback = default_algorithm(privacy_mode, chosen["robust.method"], chosen["server_optimizer"])
        if body["algorithm"] == SETTING["algorithm"].default and fallback != body["algorithm"]:
            del body["algorithm"]  # the select's default with DP, a robust rule or a server optimiser: fedavg
        for name in TUNED_WITH:  # a number left as prefilled is not a choice: the tuned lr_decay and class weight
            if body.get(name) == SETTING[name].default:  # apply (issue 25)
                del body[name]
        if body.get("secure_aggregation") is False:  # the box as prefilled: the plants decide (services.trust:
            del body["secure_aggregation"]  # on when a selected plant does not trust the dashboard)
        names = [n.strip() for n in (self.factories.data or []) if isinstance(n, str) and n.strip()]
        body["factories"] = names or "all"
        return body

    def offer_plants(self, plants) -> None:
        """The plants select's options: every registered plant (dashboard.services.preflight.PlantFacts) with its
        status and data shape; a decommissioned plant is not offered (it takes part in no experiment)."""
        self.factories.choices = [(p.name, f"{p.name} — {p.status}, {p.shape()}") for p in plants
                                  if not p.decommissioned]

    def sections(self) -> list[tuple[str, str, list[dict]]]:
        """(key, title, fields) in the page's order; each field with its setting's name and the choices that
        show it (data-shown-when: the page's script hides the others; without it every field shows)."""
        out: dict[str, list[dict]] = {}
        for setting in FORM_SETTINGS:
            key = "basic" if setting.name in BASICS else "training" if setting.section == "basic" else setting.section
            shown = json.dumps({n: list(v) for n, v in setting.shown_when}) if setting.shown_when else None
            out.setdefault(key, []).append({"field": self[form_name(setting)], "setting": setting.name,
                                            "shown_when": shown, "hover": setting.hover,
                                            "label_kw": {"title": setting.hover} if setting.hover else {}})
        return [(key, SECTION_TITLES[key], out[key]) for key in SECTION_TITLES if key in out]


for _setting in FORM_SETTINGS:
    setattr(ExperimentForm, form_name(_setting), _field(_setting))
