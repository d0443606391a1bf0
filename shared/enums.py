"""Enumerations shared by the dashboard, the agent and the API contract (DESIGN §4, §5)."""

from enum import Enum


class StrEnum(str, Enum):
    def __str__(self) -> str:  # so f-strings and JSON show the value
        return self.value

    @classmethod
    def values(cls) -> list[str]:
        return [m.value for m in cls]


class ModelType(StrEnum):
    CNN = "cnn"  # tabular: a 1-D convolution over the feature vector
    MLP = "mlp"  # tabular: cross layers and residual MLP blocks (shared.networks.TabularMLP)
    LSTM = "lstm"
    HYBRID = "hybrid"

    @property
    def is_sequence(self) -> bool:
        """A model over windows of cycles by machine (the others score one row at a time)."""
        return self in (ModelType.LSTM, ModelType.HYBRID)

    @classmethod
    def tabular(cls) -> list[str]:
        """The models that score one row at a time (every plant can train them)."""
        return [m.value for m in cls if not m.is_sequence]


class Algorithm(StrEnum):
    FEDAVG = "fedavg"
    FEDPROX = "fedprox"
    FEDNOVA = "fednova"
    FEDDYN = "feddyn"
    SCAFFOLD = "scaffold"


class ServerOptimizer(StrEnum):
    NONE = "none"
    FEDADAM = "fedadam"
    FEDYOGI = "fedyogi"
    FEDAVGM = "fedavgm"


class PrivacyMode(StrEnum):
    NONE = "none"
    DP_SGD = "dp_sgd"
    CENTRAL = "central"


class PrivacyMechanism(StrEnum):
    """Central DP's noise: Gaussian (RDP accounting) or Laplace (pure epsilon per round)."""

    GAUSSIAN = "gaussian"
    LAPLACE = "laplace"


class RobustMethod(StrEnum):
    NONE = "none"
    NORM_BOUND = "norm_bound"
    MEDIAN = "median"
    TRIMMED_MEAN = "trimmed_mean"
    KRUM = "krum"

    @property
    def needs_single_updates(self) -> bool:
        """A rule that replaces the average by a statistic of the single updates (not available from a sum)."""
        return self in (RobustMethod.MEDIAN, RobustMethod.TRIMMED_MEAN, RobustMethod.KRUM)


class ClassWeight(StrEnum):
    """The failure class's loss weight: one pooled over the federation (one objective for every plant), or each
    plant's own negative/positive ratio."""

    POOLED = "pooled"
    LOCAL = "local"


class Personalization(StrEnum):
    """After the federated rounds, each plant may keep a model of its own (issue #15 item 4): none; finetune (every
    layer from the global model on its own training split); fedper (only the head layers, on the frozen federated
    body: Arivazhagan et al. 2019, "Federated learning with personalization layers")."""

    NONE = "none"
    FINETUNE = "finetune"
    FEDPER = "fedper"


class OutlierMethod(StrEnum):
    """How a plant's update norm is scored as an outlier for its reputation."""

    ZSCORE = "zscore"
    IQR = "iqr"


class FactoryStatus(StrEnum):
    ONLINE = "online"
    OFFLINE = "offline"
    BUSY = "busy"
    ERROR = "error"
    STOPPING = "stopping"


class ExperimentStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    BUDGET_EXHAUSTED = "budget_exhausted"


class RoundStatus(StrEnum):
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    ABORTED = "aborted"


class DataType(StrEnum):
    TABULAR = "tabular"
    TIME_SERIES = "time_series"
