"""The pages' forms (Flask-WTF). The experiment form's defaults and choices come from the settings themselves
(shared.experiment: ExperimentConfig's dataclass defaults, CHOICES), the one place they live; the API validates
what the form sends (`ExperimentForm.to_body`), and FORM_FIELD_OF puts its errors under the right field."""

from __future__ import annotations

from dataclasses import MISSING, fields

from flask_wtf import FlaskForm
from wtforms import BooleanField, FloatField, IntegerField, PasswordField, SelectField, StringField
from wtforms.validators import DataRequired, Email, Optional

from dashboard.registry.enrolment import MAX_ENROLMENT_HOURS
from dashboard.models.operators import ROLES
from shared.experiment import CHOICES, ExperimentConfig, PrivacyConfig, RobustConfig
from shared.experiment.combinations import default_algorithm
from shared.experiment.config import DP_SGD_MAX_GRAD_NORM

MODEL_LABELS = {"mlp": "MLP with feature crosses (one row at a time)", "cnn": "CNN (one row at a time)",
                "lstm": "LSTM (windows of cycles)",
                "hybrid": "CNN-LSTM (windows of cycles)"}
CLASS_WEIGHT_LABELS = {"pooled": "pooled over all plants (one objective)", "local": "each plant's own ratio"}
PERSONALIZATION_LABELS = {"none": "none (every plant uses the global model)",
                          "finetune": "fine-tune every layer at each plant",
                          "fedper": "FedPer: fine-tune the head only, on the frozen federated body"}
ALGORITHM_HELP = ("Default FedDyn (the best on validation F1 on non-IID plants); left at it with DP (central or "
                  "DP-SGD), median / trimmed mean / Krum or a server optimiser, the experiment runs FedAvg. FedAvg "
                  "weights plants by samples; FedProx adds a proximal term (mu); FedNova normalises by each "
                  "plant's local steps; FedDyn adds a dynamic regulariser (alpha). SCAFFOLD corrects each plant's "
                  "steps for client drift with control variates: each plant keeps its own, sends only its change "
                  "(clipped), works with DP-SGD; refused with secure aggregation (the sum of the control deltas "
                  "and the sum of the updates would give the server each plant's update), central DP and median / "
                  "trimmed mean / Krum.")
MECHANISM_LABELS = {"gaussian": "Gaussian (RDP accounting)", "laplace": "Laplace (pure epsilon per round)"}
# the numbers the form sends when filled in (top-level settings of the API body)
NUMBERS = ("rounds", "local_epochs", "batch_size", "learning_rate", "sequence_length", "hidden_size", "mu",
           "feddyn_alpha", "server_lr", "min_factories", "sampling_rate", "lr_decay", "patience", "personalization_epochs")
# an API error's field (shared.experiment: "privacy.epsilon") -> the form field that shows it
FORM_FIELD_OF = {"privacy.mode": "privacy_mode", "robust.method": "robust_method", "privacy": "privacy_mode",
                 "robust": "robust_method", "privacy.epsilon": "privacy_epsilon",
                 "privacy.noise_multiplier": "privacy_noise", "privacy.max_grad_norm": "privacy_clip",
                 "robust.max_norm": "robust_max_norm", "privacy.mechanism": "privacy_mechanism",
                 "privacy.round_epsilon": "privacy_round_epsilon", "privacy.batch_size": "privacy_batch_size",
                 "privacy.learning_rate": "privacy_learning_rate", "privacy.local_epochs": "privacy_local_epochs"}
# DP-SGD's own training settings: form field -> the privacy option it sends (with privacy.mode dp_sgd only)
DP_SGD_FIELDS = {"privacy_batch_size": "batch_size", "privacy_learning_rate": "learning_rate",
                 "privacy_local_epochs": "local_epochs"}


def _default(name: str, settings: type = ExperimentConfig):
    """The default of a setting, read from its dataclass (ExperimentConfig, or a nested part: PrivacyConfig)."""
    field = next(f for f in fields(settings) if f.name == name)
    if field.default is MISSING:
        raise LookupError(f"{settings.__name__}.{name} has no plain default")
    return field.default


def _choices(setting: str, labels: dict[str, str] | None = None) -> list[tuple[str, str]]:
    return [(v, (labels or {}).get(v, v)) for v in CHOICES[setting].values()]


class TokenForm(FlaskForm):
    name = StringField("Token name", validators=[DataRequired()], description="e.g. the script that will use it")


class LoginForm(FlaskForm):
    email = StringField("E-mail", validators=[DataRequired(), Email(check_deliverability=False)])
    password = PasswordField("Password", validators=[DataRequired()])


class RoleForm(FlaskForm):
    role = SelectField("Role", choices=[(r, r) for r in ROLES])


class EnrolmentForm(FlaskForm):
    factory_name = StringField("Plant name", validators=[DataRequired()],
                               description="The --factory_name the plant's agent will use.")
    expires_in_hours = FloatField("Expires after (hours)", default=24, validators=[Optional()],
                                  description=f"At most {MAX_ENROLMENT_HOURS}.")


class ExperimentForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired()], description="A short name operators will recognise.")
    model_type = SelectField("Model", choices=_choices("model_type", MODEL_LABELS), default=_default("model_type"),
                             description="Row models: MLP (feature crosses, residual blocks, LayerNorm) or CNN. "
                                         "Window models need plants with a group or time column.")
    algorithm = SelectField("Algorithm", choices=_choices("algorithm"), default=_default("algorithm"),
                            description=ALGORITHM_HELP)
    server_optimizer = SelectField("Server optimiser", choices=_choices("server_optimizer"),
                                   default=_default("server_optimizer"))
    rounds = IntegerField("Rounds", default=_default("rounds"), validators=[Optional()], description="1 to 1000.")
    local_epochs = IntegerField("Local epochs", default=_default("local_epochs"), validators=[Optional()],
                                description="Passes over each plant's training split per round.")
    batch_size = IntegerField("Batch size", default=_default("batch_size"), validators=[Optional()])
    learning_rate = FloatField("Learning rate", default=_default("learning_rate"), validators=[Optional()],
                               description="Adam, per plant.")
    lr_decay = FloatField("Learning-rate decay per round", default=_default("lr_decay"), validators=[Optional()],
                          description="Round r trains at learning rate x decay^(r-1); 1: no decay (0 to 1).")
    class_weight = SelectField("Failure class weight", choices=_choices("class_weight", CLASS_WEIGHT_LABELS),
                               default=_default("class_weight"),
                               description="pooled: every plant weights failures by the federation's "
                                           "non-failure/failure ratio (counted at round 0; a plant with fewer than "
                                           "its min_release_rows failures withholds its count); local: each plant "
                                           "by its own ratio. Both capped at 50.")
    patience = IntegerField("Early-stopping patience (rounds)", default=_default("patience"), validators=[Optional()],
                            description="Stop when pooled validation F1 has not improved for this many rounds; the "
                                        "download and the release default to the best round. 0: run every round.")
    personalization = SelectField("Personalization", choices=_choices("personalization", PERSONALIZATION_LABELS),
                                  default=_default("personalization"),
                                  description="After the last round each plant fine-tunes the best round's model "
                                              "on its own training split (keeping the epoch its own validation F1 "
                                              "prefers, never worse than the global model there), trains a "
                                              "local-only model for comparison, and reports the three models' "
                                              "scores; its models stay at the plant, which scores with its own "
                                              "choice (the agent's --model-choice). None under dp_sgd or central "
                                              "DP: it trains on the plants' rows without DP.")
    personalization_epochs = IntegerField("Personalization epochs", default=_default("personalization_epochs"),
                                          validators=[Optional()],
                                          description="Fine-tuning epochs at each plant (1 to 100; each plant's "
                                                      "policy may allow fewer).")
    sequence_length = IntegerField("Sequence length", default=_default("sequence_length"), validators=[Optional()],
                                   description="Cycles per window (LSTM, CNN-LSTM).")
    hidden_size = IntegerField("Hidden units", default=_default("hidden_size"), validators=[Optional()],
                               description="Width of the model's hidden layer (4 to 2048).")
    mu = FloatField("FedProx mu", default=_default("mu"), validators=[Optional()])
    feddyn_alpha = FloatField("FedDyn alpha", default=_default("feddyn_alpha"), validators=[Optional()])
    server_lr = FloatField("Server learning rate", validators=[Optional()],
                           description="Step size of FedAdam / FedYogi / FedAvgM; empty: 0.01 for FedAdam and "
                                       "FedYogi, 1.0 for FedAvgM.")
    factories = StringField("Plants", description="Comma-separated names; empty for all online plants.")
    min_factories = IntegerField("Minimum plants per round", default=_default("min_factories"),
                                 validators=[Optional()],
                                 description="A round waits until this many plants are online.")
    sampling_rate = FloatField("Sampling rate", default=_default("sampling_rate"), validators=[Optional()],
                               description="Each round, each plant takes part with this probability (Poisson "
                                           "sampling); 1: every plant every round. Under central DP (Gaussian) "
                                           "it lowers epsilon.")
    secure_aggregation = BooleanField("Secure aggregation", default=_default("secure_aggregation"))
    privacy_mode = SelectField("Differential privacy", choices=_choices("privacy.mode"),
                               default=_default("mode", PrivacyConfig),
                               description="dp_sgd: each plant trains with Opacus (per-sample clipping and noise) and "
                                           "accounts its own epsilon; central: plants clip their update, the "
                                           "dashboard adds Gaussian noise.")
    privacy_epsilon = FloatField("Privacy budget (epsilon)", validators=[Optional()],
                                 description="Stops the experiment before a round would exceed it; empty: no limit.")
    privacy_mechanism = SelectField("Central DP mechanism", choices=_choices("privacy.mechanism", MECHANISM_LABELS),
                                    default=_default("mechanism", PrivacyConfig),
                                    validate_choice=False,  # the API validates it
                                    description="Laplace: plants clip in L1, each round spends the epsilon below.")
    privacy_round_epsilon = FloatField("Epsilon per round (Laplace)", default=_default("round_epsilon", PrivacyConfig),
                                       validators=[Optional()])
    privacy_noise = FloatField("Noise multiplier", validators=[Optional()],
                               description="Empty with a privacy budget: derived from it over the rounds (central: "
                                           "by the dashboard; dp_sgd: by each plant). Empty without one: 1.0.")
    privacy_clip = FloatField("Clipping norm", validators=[Optional()],
                              description=f"dp_sgd: per-sample gradient norm (empty: {DP_SGD_MAX_GRAD_NORM:g}, large "
                                          "enough to keep the failure class's weight); central: plant update norm "
                                          f"(empty: {_default('max_grad_norm', PrivacyConfig):g}).")
    privacy_batch_size = IntegerField("DP-SGD batch size", default=_default("batch_size", PrivacyConfig),
                                      validators=[Optional()],
                                      description="dp_sgd: the expected batch of Opacus's Poisson sampling (rate = "
                                                  "this / the plant's training rows, at most 1), in place of the "
                                                  "batch size above. Large batches take fewer noisy steps, each "
                                                  "with less noise relative to the gradient.")
    privacy_learning_rate = FloatField("DP-SGD learning rate", default=_default("learning_rate", PrivacyConfig),
                                       validators=[Optional()],
                                       description="dp_sgd: the plants' learning rate, in place of the one above "
                                                   "(fewer, larger steps need a larger rate).")
    privacy_local_epochs = IntegerField("DP-SGD local epochs", default=_default("local_epochs", PrivacyConfig),
                                        validators=[Optional()],
                                        description="dp_sgd: local epochs per round, in place of the ones above; "
                                                    "every epoch is paid for in epsilon.")
    robust_method = SelectField("Robust aggregation", choices=_choices("robust.method"),
                                default=_default("method", RobustConfig),
                                description="Median, trimmed mean and Krum resist malicious plants; every method "
                                            "also tracks each plant's reputation from its update norms.")
    robust_max_norm = FloatField("Norm bound", validators=[Optional()],
                                 description="norm_bound: the largest update norm kept; empty: the round's median "
                                             "(needed under secure aggregation).")
    start_now = BooleanField("Start now", default=True)

    def to_body(self) -> dict:
        """The API's body (POST /api/experiments) for what the form holds; empty numbers take the defaults."""
        body = {"name": self.name.data or "", "model_type": self.model_type.data, "algorithm": self.algorithm.data,
                "server_optimizer": self.server_optimizer.data, "class_weight": self.class_weight.data,
                "personalization": self.personalization.data,
                "secure_aggregation": bool(self.secure_aggregation.data),
                "privacy": self._privacy(), "robust": {"method": self.robust_method.data}}
        if self.robust_method.data == "norm_bound" and self.robust_max_norm.data is not None:
            body["robust"]["max_norm"] = self.robust_max_norm.data
        body.update({key: getattr(self, key).data for key in NUMBERS if getattr(self, key).data is not None})
        if self.privacy_mode.data != "none" and body["personalization"] == _default("personalization"):
            del body["personalization"]  # the select's default, not a choice: a DP experiment takes none (H2)
        fallback = default_algorithm(self.privacy_mode.data, self.robust_method.data, self.server_optimizer.data)
        if body["algorithm"] == _default("algorithm") and fallback != body["algorithm"]:
            del body["algorithm"]  # the select's default with DP, a robust rule or a server optimiser: fedavg
        names = [n.strip() for n in (self.factories.data or "").split(",") if n.strip()]
        body["factories"] = names or "all"
        return body

    def _privacy(self) -> dict:
        privacy = {"mode": self.privacy_mode.data}
        if self.privacy_mode.data == "none":
            return privacy
        privacy.update({k: v for k, v in (("epsilon", self.privacy_epsilon.data),
                                          ("noise_multiplier", self.privacy_noise.data),
                                          ("max_grad_norm", self.privacy_clip.data)) if v is not None})
        if self.privacy_mode.data == "dp_sgd":
            privacy.update({option: getattr(self, name).data for name, option in DP_SGD_FIELDS.items()
                            if getattr(self, name).data is not None})
        if self.privacy_mode.data == "central" and self.privacy_mechanism.data == "laplace":
            privacy["mechanism"] = "laplace"
            if self.privacy_round_epsilon.data is not None:
                privacy["round_epsilon"] = self.privacy_round_epsilon.data
        return privacy
