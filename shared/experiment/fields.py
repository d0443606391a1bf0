"""The experiment's settings, one row each (DESIGN §5): name, type, default, range or choices, help, the form's
section and the choice that shows it. The only place a setting's default and range are written: parsing
(shared.experiment.parse), the stored defaults (shared.experiment.config), the OpenAPI document
(dashboard.api.openapi) and the web form (dashboard.ui.forms) all read them from here.

A default that depends on other settings is the row's `given` rule (shared.experiment.setting), e.g. the
algorithm falls back to fedavg where feddyn cannot run. A rule such as "lr_decay defaults to 0.9 only when the
body names neither algorithm nor learning_rate" is one `given=` on lr_decay's row:

    given=lambda values, named: 0.9 if not named & {"algorithm", "learning_rate"} else 1.0
"""

from __future__ import annotations

from collections.abc import Mapping

from shared.enums import (Algorithm, ClassWeight, ModelType, OutlierMethod, Personalization, PrivacyMechanism,
                          PrivacyMode, RobustMethod, ServerOptimizer)
from shared.experiment.setting import Setting
from shared.strategies.fedadam import FedAdam
from shared.strategies.fedavgm import FedAvgM

# the plants refuse a rate below 1e-9 (shared.protocol.TrainSettings); lr_decay goes down to LR_FLOOR (1 %) of it
MIN_LEARNING_RATE = 1e-7
MAX_NAME = 200
# dp_sgd's per-sample clip when none is given (central DP's update bound keeps privacy.max_grad_norm's default):
# the failure class's loss weight (pooled, up to 50) makes a failure's gradient ~pos_weight times a normal row's,
# and a clip at 1 would scale every failure back to the weight of a normal row (README, DP-SGD)
DP_SGD_MAX_GRAD_NORM = 30.0
DP_SGD_TRAINING = ("batch_size", "learning_rate", "local_epochs")  # DP-SGD's own training (privacy.*)
SEQUENCE = tuple(m.value for m in ModelType if m.is_sequence)
OPTIMISERS = tuple(o.value for o in ServerOptimizer if o is not ServerOptimizer.NONE)
DP = (PrivacyMode.DP_SGD.value, PrivacyMode.CENTRAL.value)


def default_algorithm(privacy_mode: str, robust_method: str, server_optimizer: str = "none") -> str:
    """The algorithm of a body that names none: feddyn (the best on validation F1: README "Model quality"), or
    fedavg where feddyn cannot run or does not help: under dp_sgd (its regulariser is not per sample), with a
    robust rule that replaces the server's average (median, trimmed mean, Krum), under central DP (its server
    term h adds up every round's noisy mean change, so the first round's model already carries twice the noise
    of fedavg's), and with a server optimiser (FedAvgM, FedAdam and FedYogi were measured over fedavg)."""
    if (privacy_mode != PrivacyMode.NONE.value or RobustMethod(robust_method).needs_single_updates
            or server_optimizer != ServerOptimizer.NONE.value):
        return Algorithm.FEDAVG.value
    return Algorithm.FEDDYN.value


def _algorithm(values: Mapping, named: frozenset) -> str:
    return default_algorithm(values.get("privacy.mode", "none"), values.get("robust.method", "none"),
                             values.get("server_optimizer", "none"))


def _server_lr(values: Mapping, named: frozenset) -> float:
    return FedAvgM.DEFAULT_LR if values.get("server_optimizer") == ServerOptimizer.FEDAVGM.value else FedAdam.DEFAULT_LR


def _personalization(values: Mapping, named: frozenset) -> str:
    """None under DP (review H2: it fine-tunes on the plants' rows without DP); asked for there, it is refused."""
    return Personalization.NONE.value if values.get("privacy.mode") in DP else Personalization.FINETUNE.value


# lr_decay 0.9 and the pooled class weight (0.4) were tuned with the default schedule (the decay's size is relative
# to its rate and steps per round); a body that names any of the schedule gets, for whichever of the two it leaves
# out, the values from before 0.4: an explicit experiment trains as it says (issue 25, docs/decisions/0019)
TUNED_WITH = frozenset({"learning_rate", "batch_size", "local_epochs"})
TUNED = {"lr_decay": 0.9, "class_weight": ClassWeight.POOLED.value}
UNTUNED = {"lr_decay": 1.0, "class_weight": ClassWeight.LOCAL.value}


def _tuned(name: str):
    return lambda values, named: (UNTUNED if named & TUNED_WITH else TUNED)[name]


def _privacy_clip(values: Mapping, named: frozenset) -> float:
    return DP_SGD_MAX_GRAD_NORM if values.get("privacy.mode") == PrivacyMode.DP_SGD.value else 1.0


def _when(**choices: tuple[str, ...]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    return tuple((name.replace("__", "."), values) for name, values in choices.items())


_DP_SGD, _ANY_DP = _when(privacy__mode=("dp_sgd",)), _when(privacy__mode=DP)
_CENTRAL = _when(privacy__mode=("central",))
S = Setting
SETTINGS: tuple[Setting, ...] = (
    # --- basic --------------------------------------------------------------------------------------
    S("name", str, None, "basic", "A short name operators will recognise.", label="Name", high=MAX_NAME),
    S("model_type", str, ModelType.MLP.value, "basic", "Row models score one row; window models need a group "
      "or time column.", "Row models: MLP (feature crosses, residual blocks, LayerNorm; beat the CNN on "
      "validation F1 and AUC, README \"Tabular models\") or CNN. Window models (LSTM, CNN-LSTM) need plants with "
      "a group or time column.", "Model", choices=ModelType),
    S("factories", str, "all", "basic", "Registered plant names; none or \"all\": every plant online "
      "at each round.", label="Plants"),
    S("rounds", int, 10, "basic", "Federated rounds, 1 to 1000.", "With the release at the best round, more "
      "rounds measured better (README \"Model quality\").", "Rounds", 1, 1000),
    S("min_factories", int, 2, "basic", "A round waits until this many plants are online.",
      label="Minimum plants per round", low=1, high=10_000),
    S("sampling_rate", float, 1.0, "basic", "Each round, each plant takes part with this probability.",
      "Poisson sampling; 1: every plant every round. Under central DP (Gaussian) the accountant counts every "
      "draw, and q < 1 lowers epsilon.", "Sampling rate", 0.0, 1.0),
    S("local_epochs", int, 2, "basic", "Passes over each plant's training split per round.", label="Local epochs",
      low=1, high=100),
    S("batch_size", int, 64, "basic", "Rows per training step at each plant.", label="Batch size", low=1,
      high=65536),
    S("learning_rate", float, 0.005, "basic", "Adam at each plant, round 1.", label="Learning rate",
      low=MIN_LEARNING_RATE, high=1.0),
    S("lr_decay", float, TUNED["lr_decay"], "basic", "Round r trains at learning rate x decay^(r-1); 1: no decay.",
      "Never below 1% of the learning rate; 0.9: best on validation F1 with the default rate, batch and epochs "
      "(naming any of them: 1 unless named).", "Learning-rate decay per round", 0.0, 1.0, given=_tuned("lr_decay")),
    S("class_weight", str, TUNED["class_weight"], "basic", "The failure class's loss weight: pooled or local.",
      "pooled: every plant weights failures by the federation's non-failure/failure ratio (counted at round 0; a "
      "plant with fewer than its min_release_rows failures withholds its count); local: each plant by its own "
      "ratio. Both capped at 50. Default pooled with the default rate, batch and epochs (naming any of them: local "
      "unless named).", "Failure class weight", choices=ClassWeight, given=_tuned("class_weight")),
    S("patience", int, 0, "basic", "Stop when pooled validation F1 has not improved for this many rounds; 0: off.",
      "GET .../model, the download and the release default to the best round.", "Early-stopping patience (rounds)",
      0, 1000),
    S("sequence_length", int, 10, "basic", "Cycles per window.", label="Sequence length", low=2, high=512,
      shown_when=_when(model_type=SEQUENCE)),
    S("hidden_size", int, 64, "basic", "Width of the model's hidden layer.", label="Hidden units", low=4,
      high=2048),
    S("max_grad_norm", float, 5.0, "basic", "The plants' gradient clipping in training (not DP).", low=0.0,
      high=1e6, in_form=False),
    S("seed", int, 0, "basic", "Orders the plants' batches and the initial model.", low=0, high=2 ** 31 - 1,
      in_form=False),
    S("round_timeout", float, None, "basic", "Seconds a round waits for the plants; null: the dashboard's.",
      low=0.0, high=86400.0, nullable=True, in_form=False),
    # --- algorithm ----------------------------------------------------------------------------------
    S("algorithm", str, Algorithm.FEDDYN.value, "algorithm", "Default FedDyn, the best on validation F1.",
      "Default FedDyn (the best on validation F1 on non-IID plants); not named, with DP (central or DP-SGD), "
      "median / trimmed mean / Krum or a server optimiser, the experiment runs fedavg. FedAvg weights plants by "
      "samples; FedProx adds a proximal term (mu); FedNova normalises by each plant's local steps; FedDyn adds a "
      "dynamic regulariser (alpha). SCAFFOLD corrects each plant's steps for client drift with control variates "
      "(Karimireddy et al. 2020): each plant keeps its own, sends only its change (clipped), works with DP-SGD; "
      "refused with secure aggregation (the sum of the control deltas and the sum of the updates would give the "
      "server each plant's update), central DP and median / trimmed mean / Krum.", "Algorithm",
      choices=Algorithm, given=_algorithm),
    S("mu", float, 0.01, "algorithm", "FedProx's proximal term.", label="FedProx mu", low=-1e-12, high=100.0,
      shown_when=_when(algorithm=("fedprox",))),
    S("feddyn_alpha", float, 0.01, "algorithm", "FedDyn's dynamic regulariser.", label="FedDyn alpha", low=0.0,
      high=100.0, shown_when=_when(algorithm=("feddyn",))),
    S("server_optimizer", str, ServerOptimizer.NONE.value, "algorithm", "A server optimiser on the round's change.",
      label="Server optimiser", choices=ServerOptimizer),
    S("server_lr", float, FedAdam.DEFAULT_LR, "algorithm", "Step size of the server optimiser.",
      f"Empty: {FedAdam.DEFAULT_LR} for FedAdam and FedYogi, {FedAvgM.DEFAULT_LR} for FedAvgM.",
      "Server learning rate", 0.0, 10.0, shown_when=_when(server_optimizer=OPTIMISERS), given=_server_lr),
    S("server_momentum", float, FedAvgM.DEFAULT_MOMENTUM, "algorithm", "FedAvgM's momentum.", low=-1e-12,
      high=0.999, shown_when=_when(server_optimizer=("fedavgm",)), in_form=False),
    # --- privacy ------------------------------------------------------------------------------------
    S("secure_aggregation", bool, False, "privacy", "Plants mask their updates; the dashboard sees only the sum.",
      "Not named (the box left empty): on when a selected plant does not trust the dashboard, since such a plant "
      "computes only on models it derives from secure sums (dashboard.services.trust); named: exactly as named.",
      label="Secure aggregation"),
    S("privacy.mode", str, PrivacyMode.NONE.value, "privacy", "dp_sgd: record level at each plant; central: "
      "noise on the sum.", "dp_sgd: each plant trains with Opacus (per-sample clipping and noise) and accounts "
      "its own epsilon; central: plants clip their update, the dashboard adds the noise.", "Differential privacy",
      choices=PrivacyMode),
    S("privacy.epsilon", float, None, "privacy", "Stops the experiment before a round would exceed it; empty: no "
      "limit.", label="Privacy budget (epsilon)", low=0.0, high=1e6, nullable=True, shown_when=_ANY_DP),
    S("privacy.delta", float, 1e-5, "privacy", "The DP delta.", low=0.0, high=0.1, shown_when=_ANY_DP,
      in_form=False),
    S("privacy.mechanism", str, PrivacyMechanism.GAUSSIAN.value, "privacy", "Central DP's noise.",
      "Gaussian: RDP accounting; Laplace: plants clip in L1, each round spends the epsilon per round.",
      "Central DP mechanism", choices=PrivacyMechanism, shown_when=_CENTRAL),
    S("privacy.round_epsilon", float, 1.0, "privacy", "What each Laplace round spends.",
      label="Epsilon per round (Laplace)", low=0.0, high=1e6,
      shown_when=_when(privacy__mode=("central",), privacy__mechanism=("laplace",))),
    S("privacy.noise_multiplier", float, 1.0, "privacy", "Empty with a budget: derived from it; without: 1.0.",
      "Empty with a privacy budget: derived from it over the rounds (central: by the dashboard; dp_sgd: by each "
      "plant). Empty without one: 1.0.", "Noise multiplier", 0.0, 1e6, shown_when=_ANY_DP),
    S("privacy.max_grad_norm", float, 1.0, "privacy", "dp_sgd: per-sample gradient norm; central: update norm.",
      f"dp_sgd: per-sample gradient norm (empty: {DP_SGD_MAX_GRAD_NORM:g}, large enough to keep the failure "
      "class's weight); central: the plants' update norm C (empty: 1).", "Clipping norm", 0.0, 1e6,
      shown_when=_ANY_DP, given=_privacy_clip),
    S("privacy.batch_size", int, 1024, "privacy", "DP-SGD's expected Poisson batch, in place of the batch size.",
      "dp_sgd only: the expected batch of Opacus's Poisson sampling at each plant (sampling rate = batch_size / "
      "the plant's training rows, at most 1), in place of the experiment's batch_size: fewer, larger noisy "
      "steps, each with less noise relative to the gradient (De et al. 2022).", "DP-SGD batch size", 1, 65536,
      shown_when=_DP_SGD),
    S("privacy.learning_rate", float, 0.05, "privacy", "DP-SGD's learning rate, in place of the one above.",
      "dp_sgd only: the plants' learning rate, in place of the experiment's (fewer, larger steps need a larger "
      "rate; lr_decay still applies).", "DP-SGD learning rate", MIN_LEARNING_RATE, 1.0, shown_when=_DP_SGD),
    S("privacy.local_epochs", int, 2, "privacy", "DP-SGD's local epochs per round; each is paid in epsilon.",
      "dp_sgd only: local epochs per round, in place of the experiment's; each plant derives its noise "
      "multiplier over rounds x these epochs.", "DP-SGD local epochs", 1, 100, shown_when=_DP_SGD),
    # --- robustness ---------------------------------------------------------------------------------
    S("robust.method", str, RobustMethod.NONE.value, "robustness", "Median, trimmed mean and Krum resist "
      "malicious plants.", "Every method also tracks each plant's reputation from its update norms.",
      "Robust aggregation", choices=RobustMethod),
    S("robust.max_norm", float, None, "robustness", "The largest update norm kept; empty: the round's median.",
      "norm_bound: the largest update norm kept; empty: the round's median (a fixed bound is needed under secure "
      "aggregation).", "Norm bound", 0.0, 1e9, nullable=True, shown_when=_when(robust__method=("norm_bound",))),
    S("robust.trim_ratio", float, 0.2, "robustness", "The share cut at each end.", low=-1e-12, high=0.49,
      shown_when=_when(robust__method=("trimmed_mean",)), in_form=False),
    S("robust.byzantine", int, 1, "robustness", "The Byzantine plants Krum tolerates.", low=0, high=1000,
      shown_when=_when(robust__method=("krum",)), in_form=False),
    S("robust.multi_krum", int, 1, "robustness", "The updates Multi-Krum averages.", low=1, high=1000,
      shown_when=_when(robust__method=("krum",)), in_form=False),
    S("robust.outlier_method", str, OutlierMethod.ZSCORE.value, "robustness", "How outlying update norms are "
      "found.", choices=OutlierMethod, in_form=False),
    S("robust.exclude_below", float, 0.3, "robustness", "Reputation under which a plant's update is left out.",
      low=-1e-12, high=1.0, in_form=False),
    # --- personalization ----------------------------------------------------------------------------
    S("personalization", str, Personalization.FINETUNE.value, "personalization", "After the last round each "
      "plant fine-tunes the best model on its own data.", "After the last round each plant fine-tunes the best "
      "round's model on its own training split: finetune (every layer) or fedper (FedPer: the head only, on the "
      "frozen federated body); it keeps the epoch its own validation F1 prefers (never worse than the global "
      "model there), trains a local-only model for comparison and answers only the three models' scores; its "
      "models stay at the plant, which scores with its own choice (the agent's --model-choice). None under "
      "dp_sgd or central DP: it trains on the plants' rows without DP. Chosen on validation F1 (README).",
      "Personalization", choices=Personalization, given=_personalization),
    S("personalization_epochs", int, 4, "personalization", "Fine-tuning epochs at each plant.",
      "Each plant's policy may allow fewer; the local-only model gets rounds x local_epochs + these, at most 100.",
      "Personalization epochs", 1, 100, shown_when=_when(personalization=("finetune", "fedper"))),
)
SETTING = {s.name: s for s in SETTINGS}
CHOICES = {s.name: s.choices for s in SETTINGS if s.choices is not None}


def defaults(part: str | None = None) -> dict[str, object]:
    """The stored defaults of the body's top level, or of one nested part ("privacy", "robust"), by key."""
    return {s.key: s.default for s in SETTINGS if s.part == part}


def options(part: str) -> list[str]:
    """The keys a nested part accepts besides its mode or method."""
    return sorted(s.key for s in SETTINGS if s.part == part and s.key not in ("mode", "method"))
