"""A plant's reported policy (DESIGN §9) as operators read it on the plant page: each setting a plain label and its
value with its unit, in the README's order ("The plant's policy"), unknown settings last under their own name."""

from __future__ import annotations

from dashboard.ui import bp

# name -> (label, unit); the unit follows the value ("" for none). The README's table says what each enforces.
LABELS = {
    "verify_models": ("Verifies every model it computes on", ""),
    "trust_dashboard": ("Trusts this dashboard's cohort and models", ""),
    "share_alert_details": ("Shares each alert's machine and peak", ""),
    "require_secure_aggregation": ("Requires secure aggregation", ""),
    "require_dp": ("Requires DP-SGD for training", ""),
    "min_cohort": ("Smallest secure-aggregation cohort", "plants"),
    "min_threshold": ("Smallest Shamir threshold", "plants"),
    "max_epsilon": ("Largest ε one experiment may ask", "ε"),
    "lifetime_epsilon": ("Lifetime privacy budget", "ε"),
    "dp_delta": ("δ of the privacy accounting", ""),
    "min_noise_multiplier": ("Least DP-SGD noise multiplier", "σ"),
    "evaluation_noise": ("Noise of every evaluation", "σ (0: exact)"),
    "max_model_parameters": ("Largest model", "parameters"),
    "max_missing_features": ("Most features the plant may lack", "features"),
    "max_example_flops": ("Work per example", "FLOPs"),
    "max_batch_values": ("Activations per batch", "values"),
    "max_request_flops": ("Work per request", "FLOPs"),
    "max_dp_batch_values": ("DP-SGD batch × parameters", "values"),
    "max_local_epochs": ("Most local epochs per round", "epochs"),
    "max_personal_epochs": ("Most epochs of one personalization", "epochs"),
    "min_personal_batch": ("Smallest personalization batch", "rows"),
    "max_attempts": ("Attempts per round", "attempts"),
    "min_release_rows": ("Fewest rows behind any released number", "rows"),
    "scaler_tolerance": ("Largest scaler mismatch accepted", "× its own statistics"),
    "max_calls_per_hour": ("Training calls", "per hour"),
}


def value_text(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value != 0 and (abs(value) >= 1e6 or abs(value) < 1e-3):
            mantissa, exponent = f"{value:.3g}".split("e") if "e" in f"{value:.3g}" else (f"{value:.3g}", "0")
            return f"{mantissa} × 10^{int(exponent)}"
        return f"{value:g}"
    return str(value)


def policy_rows(policy: dict | None) -> list[tuple[str, str, str]]:
    """(label, value with unit, setting name) for each reported setting: known ones in LABELS order."""
    policy = policy or {}
    known = [(LABELS[n][0], _with_unit(policy[n], LABELS[n][1]), n) for n in LABELS if n in policy]
    other = [(n, value_text(v), n) for n, v in sorted(policy.items()) if n not in LABELS]
    return known + other


def _with_unit(value, unit: str) -> str:
    text = value_text(value)
    return f"{text} {unit}" if unit and not isinstance(value, bool) and value is not None else text


@bp.app_template_global("policy_rows")
def policy_rows_global(policy):
    return policy_rows(policy)
