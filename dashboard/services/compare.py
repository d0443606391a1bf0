"""Comparing experiments side by side (issue 27 item 6, MLflow's compare view): 2 to 4 experiments, their settings
with the differing ones marked, their best round by pooled validation F1 with its test F1, and their metric
curves per round. The page (/experiments/compare) and GET /api/experiments/compare both call `compare`.

The ids come from a URL (?ids=1,2,3): `parse_ids` checks them once (ValidationError, 400, says what is wrong);
an id that names no experiment is NotFound (404).
"""

from __future__ import annotations

from dashboard.models import Experiment
from dashboard.services.experiments import MAX_ID, get_experiment
from shared.enums import RoundStatus
from shared.errors import ValidationError
from shared.experiment.stopping import best_round, validation_f1

MIN_COMPARED, MAX_COMPARED = 2, 4
MAX_RAW = 200  # characters of ?ids= read at all
CURVES = ("val_f1", "test_f1", "test_auc", "val_loss")  # per round; round 0 is the initial model (baseline)


def parse_ids(raw: str | None) -> list[int]:
    """The experiment ids of `?ids=1,2,3`, in the order given: 2 to 4 distinct positive whole numbers."""
    if raw is None or not raw.strip():
        raise ValidationError("ids", f"choose {MIN_COMPARED} to {MAX_COMPARED} experiments: ?ids=1,2")
    if len(raw) > MAX_RAW:
        raise ValidationError("ids", f"is too long: at most {MAX_COMPARED} experiment ids")
    parts = [p.strip() for p in raw.split(",")]
    bad = next((p for p in parts if not p.isascii() or not p.isdigit() or not 0 < int(p) <= MAX_ID), None)
    if bad is not None:
        raise ValidationError("ids", f"{bad[:20]!r} is not an experiment id: give ids as whole numbers, "
                                     "separated by commas")
    ids = list(dict.fromkeys(int(p) for p in parts))
    if len(ids) != len(parts):
        raise ValidationError("ids", "names an experiment twice")
    if not MIN_COMPARED <= len(ids) <= MAX_COMPARED:
        raise ValidationError("ids", f"compare {MIN_COMPARED} to {MAX_COMPARED} experiments, not {len(ids)}")
    return ids


def flatten(config: dict, prefix: str = "") -> dict[str, object]:
    """{"privacy": {"epsilon": 1}} -> {"privacy.epsilon": 1}: one row per setting."""
    out: dict[str, object] = {}
    for key, value in config.items():
        if isinstance(value, dict):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def config_rows(configs: list[dict]) -> list[dict]:
    """Every setting of any of the experiments: its value in each (None where missing) and whether they differ;
    the differing ones first, then alphabetically."""
    flat = [flatten(c) for c in configs]
    keys = sorted({k for f in flat for k in f})
    rows = [{"setting": k, "values": [f.get(k) for f in flat],
             "differs": len({repr(f.get(k)) for f in flat}) > 1} for k in keys]
    return sorted(rows, key=lambda r: (not r["differs"], r["setting"]))


def _column(experiment: Experiment) -> dict:
    rounds = [r for r in experiment.rounds if r.status == RoundStatus.COMPLETED.value]
    best = best_round(experiment.validation_scores())
    best_metrics = next((r.metrics or {} for r in rounds if r.number == best), {})
    base = experiment.baseline or {}
    curves = {key: [[0, base.get(key)]] + [[r.number, (r.metrics or {}).get(key)] for r in rounds] for key in CURVES}
    return {**experiment.summary(), "best_round": best,
            "best_val_f1": validation_f1(best_metrics) if best is not None else None,
            "best_test_f1": best_metrics.get("test_f1") if best is not None else None,
            "rounds_completed": len(rounds), "curves": curves}


def compare(ids: list[int]) -> dict:
    """The experiments `ids` side by side (NotFound for an unknown one)."""
    experiments = [get_experiment(i) for i in ids]
    return {"ids": ids, "experiments": [_column(e) for e in experiments],
            "config": config_rows([e.config or {} for e in experiments]), "curves": list(CURVES)}
