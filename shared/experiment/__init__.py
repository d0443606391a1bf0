"""An experiment's settings, typed (DESIGN §5): parsed once at the API, stored as a dict, loaded back typed.

- fields.py: the field table, one row per setting (setting.py: a row): type, default, range, help, section;
- config.py: ExperimentConfig (with PrivacyConfig and RobustConfig), the data;
- parse.py: a hostile JSON body validated into an ExperimentConfig against the table;
- combinations.py: settings that contradict each other, refused with both fields named;
- training.py: what a round derives from the settings (strategy, update clip, each plant's training request);
- validation.py: ValidationError and the checks of single values.
"""

from shared.experiment.config import ExperimentConfig, PrivacyConfig, RobustConfig, planned_steps
from shared.experiment.fields import CHOICES
from shared.experiment.training import SECAGG_DEFAULT_CLIP
from shared.experiment.parse import parse_experiment
from shared.experiment.validation import ValidationError

__all__ = ["CHOICES", "SECAGG_DEFAULT_CLIP", "ExperimentConfig", "PrivacyConfig", "RobustConfig", "ValidationError",
           "parse_experiment", "planned_steps"]
