"""An experiment's settings, typed (DESIGN §5): parsed once at the API, stored as a dict, loaded back typed.

- config.py: ExperimentConfig (with PrivacyConfig and RobustConfig) and everything derived from it;
- parse.py: a hostile JSON body validated into an ExperimentConfig;
- combinations.py: settings that contradict each other, refused with both fields named;
- validation.py: ValidationError and the checks of single values.
"""

from shared.experiment.config import (CHOICES, SECAGG_DEFAULT_CLIP, ExperimentConfig, PrivacyConfig, RobustConfig,
                                      planned_steps)
from shared.experiment.parse import parse_experiment
from shared.experiment.validation import ValidationError

__all__ = ["CHOICES", "SECAGG_DEFAULT_CLIP", "ExperimentConfig", "PrivacyConfig", "RobustConfig", "ValidationError",
           "parse_experiment", "planned_steps"]
