"""bench/quality.py over several seeds (data and model), one table of mean +- standard deviation per row: one seed
of 4 plants with validation splits of ~300 rows moves test F1 by up to 0.1, so no single run can say whether a
setting helps. Runs `bench/quality.py --seed S` for each seed (its own process each, so nothing carries over) and
averages the rows every run printed; the goal line of issue #15 is computed on the means.

    .venv/bin/python bench/quality_seeds.py [--seeds 3] [--parts baselines,algorithms,learning] [quality.py options]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

QUALITY = Path(__file__).resolve().parent / "quality.py"
ROW = re.compile(r"^\| (?P<label>[^|]+?) \| (?P<val>\d\.\d{3}) \| (?P<f1>\d\.\d{3}) \| (?P<auc>\d\.\d{3}) \|$")
# the other tables (issue 25: regression, per plant, release rules): a label and numbers ("–": none), any count
CELLS = re.compile(r"^\| (?P<label>[^|]+?) \|(?P<cells>( (\d+\.\d{3}|–) \|)+)$")
HEADER = re.compile(r"^\| (setting |plant \(|release rule )[^|]*\|")
CENTRALIZED = "centralized (union of all plants' data)"
BEST_LOCAL = "local only, best plant's model (scored on all plants)"


def rows_of(output: str) -> dict[str, tuple[float, float, float]]:
    """label -> (test F1, test AUC, validation F1) of every row of quality.py's first table."""
    found = {}
    for line in output.splitlines():
        match = ROW.match(line.strip())
        if match:
            label = re.sub(r" \((stopped|best round)[^)]*\)", "", match["label"])
            found[label] = (float(match["f1"]), float(match["auc"]), float(match["val"]))
    return found


FIRST = "| setting | val F1 | test F1 | test AUC |"


def tables_of(output: str) -> dict[str, dict[str, list[float]]]:
    """header -> label -> numbers (nan for "–") of every table but the first (issue 25's tables)."""
    found: dict[str, dict[str, list[float]]] = {}
    header = None
    for line in (raw.strip() for raw in output.splitlines()):
        if HEADER.match(line):
            header = None if line == FIRST else line
            found.setdefault(header, {}) if header else None
        elif header and (match := CELLS.match(line)):
            cells = [c.strip() for c in match["cells"].strip(" |").split("|")]
            found[header][match["label"]] = [float("nan") if c == "–" else float(c) for c in cells]
    return found


def print_tables(runs: list[dict[str, dict[str, list[float]]]]) -> None:
    """Each of issue 25's tables, every cell as mean +- standard deviation over the seeds that have it."""
    for header, rows in runs[0].items():
        print(f"\n{header}\n|" + "---|" * (header.count("|") - 1))
        for label in rows:
            values = np.array([run[header][label] for run in runs if label in run.get(header, {})], float)
            cells = [f"{np.nanmean(c):.3f} +- {np.nanstd(c):.3f}" if np.isfinite(c).any() else "–" for c in values.T]
            print(f"| {label} | " + " | ".join(cells) + " |")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--parts", default="baselines,algorithms,learning")
    parser.add_argument("--save", type=Path, help="a folder to write each seed's own output to (seed_S.md)")
    parser.add_argument("--load", type=Path, help="average the outputs --save wrote there instead of running")
    args, rest = parser.parse_known_args()
    started = time.monotonic()
    runs: list[dict[str, tuple[float, float, float]]] = []
    tables: list[dict[str, dict[str, list[float]]]] = []
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        if args.load:
            output = (args.load / f"seed_{seed}.md").read_text()
        else:
            command = [sys.executable, str(QUALITY), "--parts", args.parts, "--seed", str(seed), *rest]
            output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
        runs.append(rows_of(output))
        tables.append(tables_of(output))
        if args.save:
            args.save.mkdir(parents=True, exist_ok=True)
            (args.save / f"seed_{seed}.md").write_text(output)
        print(f"seed {seed}: {len(runs[-1])} rows ({time.monotonic() - started:.0f} s)", file=sys.stderr)
    labels = [label for label in runs[0] if all(label in run for run in runs)]
    print(f"\nbench/quality.py {' '.join(rest)} --parts {args.parts}, seeds {args.first_seed}-"
          f"{args.first_seed + args.seeds - 1}: mean +- standard deviation over the seeds")
    print("\n| setting | val F1 | test F1 | test AUC | F1 / centralized |\n|---|---|---|---|---|")
    central = np.mean([run[CENTRALIZED][0] for run in runs]) if CENTRALIZED in labels else None
    for label in labels:
        f1 = np.array([run[label][0] for run in runs])
        auc = np.array([run[label][1] for run in runs])
        val = np.array([run[label][2] for run in runs])
        ratio = f"{f1.mean() / central:.2f}" if central else "-"
        print(f"| {label} | {val.mean():.3f} +- {val.std():.3f} | {f1.mean():.3f} +- {f1.std():.3f} | "
              f"{auc.mean():.3f} +- {auc.std():.3f} | {ratio} |")
    federated = [label for label in labels if label.startswith("federated")]
    if central and federated and BEST_LOCAL in labels:
        # the federated setting is chosen on validation F1 (test only reports it)
        best = max(federated, key=lambda label: np.mean([run[label][2] for run in runs]))
        f1 = np.mean([run[best][0] for run in runs])
        alone = np.mean([run[BEST_LOCAL][0] for run in runs])
        print(f"\nGoals of #15 on the means: the federated row best on validation ({best}) {f1:.3f} = "
              f"{f1 / central:.2f} x centralized {central:.3f} (goal >= 0.97 x: "
              f"{'met' if f1 >= 0.97 * central else 'missed'}); best plant alone {alone:.3f} "
              f"(goal: federated >= it: {'met' if f1 >= alone else 'missed'})")
    print_tables(tables)
    print(f"\n(ran in {time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
