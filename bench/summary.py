"""One table of headline numbers and goals from the tables the benchmark scripts printed (`make bench` saves
each script's output under bench/results/ and ends with this).

    .venv/bin/python bench/summary.py bench/results
"""

from __future__ import annotations

import sys
from pathlib import Path


def tables(text: str) -> list[list[dict]]:
    """Every markdown table in `text` as a list of rows (dicts keyed by the header)."""
    out, block = [], []
    for line in text.splitlines() + [""]:
        if line.startswith("|"):
            block.append([c.strip() for c in line.strip("|").split("|")])
        elif block:
            header, rows = block[0], [r for r in block[2:]]
            out.append([dict(zip(header, r)) for r in rows])
            block = []
    return out


def number(cell: str) -> float:
    return float(cell.split()[0].replace(",", "").rstrip("x"))


def rows(results: Path) -> list[tuple[str, str, str, str]]:
    out = []

    def read(name: str) -> list[list[dict]]:
        path = results / f"{name}.md"
        return tables(path.read_text()) if path.exists() else []

    if t := read("rounds"):
        for r in t[0]:
            out.append((f"round wall / slowest training, {r['plants']} plants", r["wall / train"], "-", "-"))
            out.append((f"agent start-to-registered, {r['plants']} in parallel (s)", r["all registered (s)"], "-", "-"))
        if len(t) > 1:
            on = [r for r in t[1] if r["secure aggregation"] == "on"][0]
            ratio = number(on["wall vs off"])
            out.append((f"round wall, secure aggregation on / off ({on['plants']} plants, {on['parameters']} params)",
                        f"{ratio:.2f}x", "<= 1.15x", "yes" if ratio <= 1.15 else "NO"))
    if t := read("secagg"):
        big = [r for r in t[0] if r["params"] == "1,000,000" and r["dropouts"] == "1"]
        if big:
            worst = max(big, key=lambda r: int(r["plants"]))
            out.append((f"unmask, {worst['plants']} plants, 1M params, 1 dropout (s)", worst["unmask (s)"], "-", "-"))
    if t := read("quality"):
        q = {r["setting"]: r for r in t[0]}
        for key in ("centralized (union of all plants' data)", "federated FedAvg"):
            if key in q:
                out.append((f"test F1 / AUC, {key}", f"{q[key]['test F1']} / {q[key]['test AUC']}", "-", "-"))
        if len(t) > 2:
            honest = number(t[2][0]["FedAvg"])
            for r in t[2][1:]:
                worst = min(number(r[d]) for d in ("median", "trimmed mean 0.2", "Multi-Krum f=1"))
                out.append((f"F1 under attack {r['attack']}: worst robust rule vs honest", f"{worst:.3f} vs {honest:.3f}",
                            ">= honest - 0.05", "yes" if worst >= honest - 0.05 else "NO"))
    if t := read("heartbeats"):
        for r in t[0]:
            rps, p99 = number(r["req/s"]), number(r["p99 (ms)"])
            case = f"{r['registered plants']} plants" + (f", {r['mode']}" if r.get("mode") else "")
            out.append((f"heartbeats/s, {case}", f"{rps:.0f}", ">= 1000", "yes" if rps >= 1000 else "NO"))
            out.append((f"heartbeat p99 (ms), {case}", f"{p99:.0f}", "<= 100", "yes" if p99 <= 100 else "NO"))
            out.append((f"every accepted heartbeat recorded, {case}", r["all recorded"],
                        "yes", "yes" if r["all recorded"] == "yes" else "NO"))
    out.extend(plant_rows(read))
    if (results / "fuzz.md").exists():
        text = (results / "fuzz.md").read_text()
        errors = [line for line in text.splitlines() if line.startswith("server errors (5xx):")]
        if errors:
            count = int(errors[0].split(":")[1])
            out.append(("5xx answers to generated requests", str(count), "0", "yes" if count == 0 else "NO"))
    if t := read("pages"):
        worst = max(t[0], key=lambda r: number(r["p95 (ms)"]))
        p95 = number(worst["p95 (ms)"])
        out.append((f"page p95, worst page {worst['page']} (ms)", f"{p95:.0f}", "<= 200", "yes" if p95 <= 200 else "NO"))
    return out


def plant_rows(read) -> list[tuple[str, str, str, str]]:
    """Issue #17: a plant's memory and start-up, and the round overhead beside Flower."""
    out = []
    if t := read("plant_memory"):
        rest = max(number(r["at rest RSS (MB)"]) for r in t[0])
        peak = max(number(r["training peak RSS (MB)"]) for r in t[0])
        out.append(("plant memory at rest, all its processes (MB RSS)", f"{rest:.0f}", "<= 400",
                    "yes" if rest <= 400 else "NO"))
        out.append(("plant memory while training the default CNN (MB RSS)", f"{peak:.0f}", "<= 600",
                    "yes" if peak <= 600 else "NO"))
    if t := read("startup"):
        total = [r for r in t[0] if "all online" in r["phase"]][0]
        for column, value in total.items():
            if column != "phase":
                seconds = number(value.strip("*"))
                goal = 10 if column.startswith("1 ") else 15
                out.append((f"start to online, {column.split(' (')[0]} (s)", f"{seconds:.1f}", f"<= {goal}",
                            "yes" if seconds <= goal else "NO"))
    if t := read("peers"):
        ratios = {r["system"].split()[0]: number(r["wall / training"]) for r in t[0]}
        if {"FactoryFL", "Flower"} <= set(ratios):
            out.append(("round wall / slowest training: FactoryFL vs Flower", f"{ratios['FactoryFL']:.2f} vs "
                        f"{ratios['Flower']:.2f}", "<= Flower's", "yes" if ratios["FactoryFL"] <= ratios["Flower"] else "NO"))
    return out


def main() -> int:
    results = Path(sys.argv[1] if len(sys.argv) > 1 else "bench/results")
    summary = rows(results)
    if not summary:
        print(f"no benchmark results under {results}: run `make bench`")
        return 1
    print("\nFactoryFL benchmark summary")
    print("| measure | value | goal | met |\n|---|---|---|---|")
    for measure, value, goal, met in summary:
        print(f"| {measure} | {value} | {goal} | {met} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
