"""A predictive-maintenance data simulator following the AI4I 2020 generation process.

Matzka, S. (2020), "Explainable Artificial Intelligence for Predictive Maintenance Applications",
and the AI4I 2020 data set description (UCI): product quality L/M/H, air temperature as a random walk
around 300 K (sd 2 K), process temperature = air + 10 K (random walk sd 1 K), rotational speed derived
from the drive's power (P = T * omega) with noise, torque ~ N(40, 10) Nm clipped above 0, tool wear added by quality
(H/M/L: 5/3/2 min per process), and five failure modes:

- TWF tool wear failure: the tool is replaced or fails at a wear drawn uniformly in [200, 240] min;
- HDF heat dissipation: (process - air) < 8.6 K and speed < 1380 rpm;
- PWF power failure: torque * speed (rad/s) < 3500 W or > 9000 W;
- OSF overstrain: tool wear * torque > 11000 / 12000 / 13000 min Nm for L / M / H;
- RNF random failure with probability 0.1 %.

Here the rows come from several machines, each a sequence of cycles, so the same data serves tabular
models (row by row) and sequence models (windows by machine and cycle). Profiles change the product
mix and the operating conditions so that plants are non-IID.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from shared.errors import ConfigurationError

LABEL_COLUMN = "machine_failure"
GROUP_COLUMN = "machine_id"
TIME_COLUMN = "cycle"
FAILURE_MODE_COLUMNS = ("TWF", "HDF", "PWF", "OSF", "RNF")


@dataclass(frozen=True)
class Profile:
    """Operating conditions of one simulated plant."""

    description: str
    product_mix: tuple[float, float, float]  # shares of L, M, H
    torque_mean: float = 40.0
    torque_sd: float = 10.0
    process_offset_k: float = 10.0  # process temperature above air temperature
    air_mean_k: float = 300.0
    power_w: float = 6400.0  # mean mechanical power; gives AI4I's ~1540 rpm at 40 Nm
    random_failure_rate: float = 0.001


PROFILES: dict[str, Profile] = {
    "default": Profile("AI4I 2020 as published: 50/30/20 % L/M/H", (0.5, 0.3, 0.2)),
    "heavy_duty": Profile("high torque, mostly low-grade products: more overstrain and power failures",
                          (0.7, 0.25, 0.05), torque_mean=46.0, torque_sd=11.0, power_w=6900.0),
    "hot_climate": Profile("poor cooling, hot air: more heat-dissipation failures",
                           (0.4, 0.4, 0.2), process_offset_k=9.2, air_mean_k=304.0, power_w=6100.0),
    "precision": Profile("mostly high-grade products, gentle load: few failures",
                         (0.1, 0.3, 0.6), torque_mean=36.0, torque_sd=8.0),
}

_WEAR_PER_PROCESS = {"L": 2, "M": 3, "H": 5}
_OSF_LIMIT = {"L": 11000.0, "M": 12000.0, "H": 13000.0}


def simulate(profile: str = "default", rows: int = 2000, seed: int = 0,
             machines: int | None = None) -> pd.DataFrame:
    """Generate `rows` cycles spread over `machines` machines, deterministic for a given seed."""
    if profile not in PROFILES:
        raise ConfigurationError(
            f"unknown simulator profile {profile!r}; choose one of {', '.join(PROFILES)}")
    if rows < 10:
        raise ConfigurationError(f"--rows must be at least 10, got {rows}")
    p = PROFILES[profile]
    rng = np.random.default_rng(seed)
    machines = machines or max(3, min(50, rows // 100))
    per_machine = np.full(machines, rows // machines)
    per_machine[: rows % machines] += 1

    frames = []
    for m in range(machines):
        n = int(per_machine[m])
        quality = rng.choice(["L", "M", "H"], p=p.product_mix)
        air = p.air_mean_k + np.cumsum(rng.normal(0, 0.2, n)).clip(-6, 6) + rng.normal(0, 0.5, n)
        process = air + p.process_offset_k + np.cumsum(rng.normal(0, 0.1, n)).clip(-3, 3)
        torque = np.clip(rng.normal(p.torque_mean, p.torque_sd, n), 3.0, None)
        # speed follows from the drive's power, P = T * omega, with noise; clipped to the spindle's range
        power = p.power_w + rng.normal(0, 300, n)
        speed = np.clip(power / torque * 60 / (2 * np.pi) + rng.normal(0, 40, n), 1150.0, 2900.0)

        wear = np.zeros(n)
        twf = np.zeros(n, dtype=int)
        current, limit = float(rng.integers(0, 150)), rng.uniform(200, 240)
        for i in range(n):
            current += _WEAR_PER_PROCESS[quality]
            if current >= limit:
                # the tool is replaced at the limit; about 40 % of those replacements are failures
                twf[i] = int(rng.random() < 0.4)
                current, limit = 0.0, rng.uniform(200, 240)
            wear[i] = current

        omega = speed * 2 * np.pi / 60
        hdf = ((process - air) < 8.6) & (speed < 1380)
        pwf = (torque * omega < 3500) | (torque * omega > 9000)
        osf = wear * torque > _OSF_LIMIT[quality]
        rnf = rng.random(n) < p.random_failure_rate
        failure = twf.astype(bool) | hdf | pwf | osf | rnf
        frames.append(pd.DataFrame({
            GROUP_COLUMN: f"{profile[:3].upper()}-{m:03d}",
            TIME_COLUMN: np.arange(1, n + 1),
            "type": quality,
            "air_temperature_k": air.round(1),
            "process_temperature_k": process.round(1),
            "rotational_speed_rpm": speed.round(0),
            "torque_nm": torque.round(1),
            "tool_wear_min": wear.round(0),
            LABEL_COLUMN: failure.astype(int),
            "TWF": twf, "HDF": hdf.astype(int), "PWF": pwf.astype(int),
            "OSF": osf.astype(int), "RNF": rnf.astype(int),
        }))
    return pd.concat(frames, ignore_index=True)
