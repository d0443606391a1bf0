"""Model quality benchmark (DESIGN §11): the same simulated non-IID plants and the same budget of local epochs,
trained centrally (the union of all data), locally (each plant alone) and federated with each strategy; then
record-level DP-SGD at several epsilons; then attacks x defenses; then personalization at each plant (global vs
personalized vs local-only on the plant's own validation and test splits). The learning settings of issue #15 (class
weight, learning-rate decay, early stopping at the best round) get rows of their own, and the goals of #15
(federated >= 0.97 x centralized, >= every plant's local-only model) a line.

Every run is an experiment of the product's own kind (shared.experiment.ExperimentConfig, parsed from the body
the API takes) driven by the dashboard's RoundWorkflow over in-process plants (factoryfl_testing): the plants'
request handlers, ledgers and policy (uncapped), the strategies, the threshold and metrics are the real ones;
only PySyft's transport is left out, which changes timing, not numbers.

    .venv/bin/python bench/quality.py [--rounds 4] [--epochs 2] [--rows 2000] [--parts baselines,algorithms,...]
                                      [--model mlp] [--data simulator|imbalanced] [--seed 0]
                                      [--only 'FedAvg;SCAFFOLD']

`--model` picks the tabular model of every row (default: the product's default); the part `models` puts the
tabular models side by side (centralized and federated FedAvg, test F1 and AUC); `--data imbalanced` swaps the
simulator's four plants for bench/mlp_grid.py's second data shape (three CSV plants, ~1 % failures).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from factoryfl_testing.federation import InProcessFederation, Run  # noqa: E402
from factoryfl_testing.inprocess import InProcessChannel, InProcessPlant, union_data  # noqa: E402
from shared.enums import ModelType  # noqa: E402
from shared.experiment import ExperimentConfig, parse_experiment  # noqa: E402

PROFILES = [("default", 1), ("heavy_duty", 2), ("hot_climate", 3), ("precision", 4)]
FEDAVG = {"algorithm": "fedavg"}  # named: the product's default is feddyn (a body naming none)
ALGORITHMS = [("FedAvg", FEDAVG), ("FedProx (mu 0.01)", {"algorithm": "fedprox", "mu": 0.01}),
              ("FedNova", {"algorithm": "fednova"}), ("FedDyn (alpha 0.01)", {"algorithm": "feddyn"}),
              ("SCAFFOLD", {"algorithm": "scaffold"}),
              ("FedAdam (server lr 0.01)", {**FEDAVG, "server_optimizer": "fedadam", "server_lr": 0.01}),
              ("FedYogi (server lr 0.01)", {**FEDAVG, "server_optimizer": "fedyogi", "server_lr": 0.01}),
              ("FedAvgM (momentum 0.9)", {**FEDAVG, "server_optimizer": "fedavgm"}),
              ("FedAvg + secure aggregation", {**FEDAVG, "secure_aggregation": True, "min_factories": 2})]
# issue #15: one objective for all plants, learning-rate decay, early stopping (the best round's model is scored)
LEARNING = [("FedAvg, each plant's own class weight (before #15)", {**FEDAVG, "class_weight": "local"}),
            ("FedAvg, pooled class weight", {**FEDAVG, "class_weight": "pooled"}),
            ("FedAvg, pooled class weight, lr decay 0.8", {**FEDAVG, "class_weight": "pooled", "lr_decay": 0.8}),
            ("FedAvg, pooled, twice the rounds, patience 2: best round", {**FEDAVG, "class_weight": "pooled",
                                                                          "patience": 2, "double_rounds": True}),
            ("FedDyn, pooled, lr decay 0.8", {"algorithm": "feddyn", "lr_decay": 0.8}),
            ("FedDyn, pooled, twice the rounds, patience 2: best round", {"algorithm": "feddyn", "patience": 2,
                                                                          "double_rounds": True}),
            ("FedDyn (alpha 0.1)", {"algorithm": "feddyn", "feddyn_alpha": 0.1}),
            # the product's release: the best round by pooled validation F1, whatever the patience
            ("the product's defaults (FedDyn, lr decay 0.9): best round", {"lr_decay": ExperimentConfig.lr_decay,
                                                                             "best_round": True}),
            ("FedAvg: best round", {**FEDAVG, "best_round": True}),
            ("FedAvg, lr decay 0.9: best round", {**FEDAVG, "lr_decay": 0.9, "best_round": True}),
            ("FedDyn: best round", {"algorithm": "feddyn", "best_round": True}),
            ("FedDyn, lr decay 0.8: best round", {"algorithm": "feddyn", "lr_decay": 0.8, "best_round": True}),
            ("FedAvg, lr decay 0.8, twice the rounds, patience 2: best round", {**FEDAVG, "lr_decay": 0.8,
                                                                               "patience": 2, "double_rounds": True}),
            ("FedDyn, lr decay 0.8, twice the rounds, patience 2: best round", {"algorithm": "feddyn", "lr_decay": 0.8,
                                                                               "patience": 2, "double_rounds": True}),
            ("FedDyn, lr decay 0.9, twice the rounds, patience 2: best round", {"algorithm": "feddyn", "lr_decay": 0.9,
                                                                               "patience": 2, "double_rounds": True}),
            ("FedDyn, lr decay 0.8, twice the rounds, patience 4: best round", {"algorithm": "feddyn", "lr_decay": 0.8,
                                                                               "patience": 4, "double_rounds": True}),
            # the same budget of epochs in twice the rounds of half the local epochs: less drift between averages
            ("FedAvg, twice the rounds of half the epochs", {**FEDAVG, "half_epochs": True}),
            ("FedDyn, twice the rounds of half the epochs", {"algorithm": "feddyn", "half_epochs": True}),
            ("FedAvgM, twice the rounds of half the epochs", {**FEDAVG, "server_optimizer": "fedavgm",
                                                              "half_epochs": True}),
            ("SCAFFOLD, pooled, lr decay 0.8", {"algorithm": "scaffold", "lr_decay": 0.8})]
PARTS = ("baselines", "models", "algorithms", "learning", "dp", "attacks", "personalization", "regression", "gbdt")
# issue 25: the body of 0.3's C-MAPSS experiment (explicit settings; its model is the data shape's, shape_body),
# and each of 0.4's new defaults added to it (named here, so each row runs what it says whatever parse's rule for
# an unnamed lr_decay and class weight is)
BODY_03 = {"algorithm": "fedavg", "learning_rate": 0.001, "rounds": 10, "batch_size": 128}
REGRESSION = [("0.3's body as 0.3 ran it (lr_decay 1, class_weight local)", {"lr_decay": 1.0,
                                                                              "class_weight": "local"}),
              ("0.3's body + lr_decay 0.9", {"lr_decay": 0.9, "class_weight": "local"}),
              ("0.3's body + class_weight pooled", {"lr_decay": 1.0, "class_weight": "pooled"}),
              ("0.3's body + both (0.4 before the fix)", {"lr_decay": 0.9, "class_weight": "pooled"}),
              ("0.3's body as parsed now", {})]
# issue #15 item 4: after a federated run (the bench's schedule, the default algorithm), each plant
# personalizes the best round's model
PERSONALIZATION = [("finetune", 4), ("fedper", 4), ("fedper", 8)]
DEFENSES = [("FedAvg", {}), ("median", {"method": "median"}), ("trimmed mean 0.2", {"method": "trimmed_mean"}),
            ("Multi-Krum f=1", {"method": "krum", "byzantine": 1, "multi_krum": 3}),
            ("norm bound (median)", {"method": "norm_bound"})]


def config(args, **body) -> ExperimentConfig:
    """The bench holds the schedule fixed (rounds, epochs, batch, rate, no decay) and each row says what it changes;
    the algorithm is the product's default (feddyn, or fedavg where parse falls back) unless the row names one."""
    base = {"name": "quality", "rounds": args.rounds, "local_epochs": args.epochs, "batch_size": 64,
            "learning_rate": 0.005, "lr_decay": 1.0, "class_weight": "pooled", "min_factories": 1,
            "model_type": args.model, "seed": args.seed}
    return parse_experiment({**base, **body})


def fmt(evaluation) -> str:
    return f"{evaluation.aggregate['test_f1']:.3f} | {evaluation.aggregate['test_auc']:.3f}"


def fmt_val(evaluation) -> str:
    """validation F1 (at the pooled validation threshold: what chooses settings), then test F1 and AUC"""
    return f"{evaluation.aggregate.get('val_f1') or 0:.3f} | {fmt(evaluation)}"


def baselines(args, fed: InProcessFederation, plants: list[InProcessPlant], root: Path) -> dict[str, float]:
    """The initial model, the union of all data and each plant alone, with the federation's epoch budget; the
    test F1 of the centralized model and of the best plant alone."""
    budget = args.rounds * args.epochs
    alone = config(args, **FEDAVG, rounds=1, local_epochs=budget)
    print(f"| initial model (no training; DP rows below start here) | {fmt_val(fed.score(fed.prepare(alone)))} |")
    union = InProcessFederation(InProcessChannel([InProcessPlant.from_data("union", union_data(plants), root)]))
    centralized = fed.score(union.run(alone).model)
    print(f"| centralized (union of all plants' data) | {fmt_val(centralized)} |")
    local = []
    for p in plants:
        solo = InProcessFederation(InProcessChannel([InProcessPlant.from_data(f"solo_{p.name}", p.data, root)]))
        local.append(fed.score(solo.run(alone).model).aggregate)
    print("| local only (mean over plants, each model scored on all plants) | " +
          " | ".join(f"{np.mean([m[k] or 0 for m in local]):.3f}" for k in ("val_f1", "test_f1", "test_auc")) + " |")
    best = max(local, key=lambda m: m["test_f1"])  # the goal's bar: federated >= every plant alone, on test
    print(f"| local only, best plant's model (scored on all plants) | {best['val_f1'] or 0:.3f} | "
          f"{best['test_f1']:.3f} | {best['test_auc']:.3f} |")
    return {"centralized": centralized.aggregate["test_f1"], "best local": best["test_f1"]}


def models(args, fed: InProcessFederation, plants: list[InProcessPlant], root: Path) -> None:
    """Each tabular model trained on the union of all data and federated (FedAvg), the same budget of epochs;
    test F1 and AUC (the settings were chosen on validation data: bench/mlp_grid.py)."""
    budget = args.rounds * args.epochs
    union = InProcessFederation(InProcessChannel([InProcessPlant.from_data("union", union_data(plants), root)]))
    for model_type in ModelType.tabular():
        centralized = fed.score(union.run(config(args, **FEDAVG, model_type=model_type, rounds=1,
                                                            local_epochs=budget)).model)
        print(f"| {model_type}: centralized (union of all plants' data) | {fmt_val(centralized)} |")
        print(f"| {model_type}: federated FedAvg | "
              f"{fmt_val(fed.run(config(args, model_type=model_type, **FEDAVG)).final)} |")


def learning(args, fed: InProcessFederation, goals: dict[str, float]) -> None:
    """The rows of issue #15; an early-stopped run is scored at its best round (by pooled validation F1)."""
    for label, body in LEARNING:
        if not wanted(args, label):
            continue
        body = dict(body)
        if body.pop("double_rounds", False):
            body["rounds"] = 2 * args.rounds
        if body.pop("half_epochs", False):
            body.update(rounds=2 * args.rounds, local_epochs=max(args.epochs // 2, 1))
        scored_at_best = body.pop("best_round", False) or body.get("patience")
        run = fed.run(config(args, **body))
        best = run.best_round if scored_at_best else max(run.evaluations)
        evaluation = run.evaluations[best]
        rounds = f" (stopped after round {run.stopped_at}, best round {best})" if run.stopped_at else \
            (f" (best round {best})" if scored_at_best else "")
        print(f"| federated {label}{rounds} | {fmt_val(evaluation)} |")
        f1 = evaluation.aggregate["test_f1"]
        goals.setdefault("federated", []).append((label, f1))


def wanted(args, label: str) -> bool:
    """Whether --only (exact labels) keeps this row of the algorithms or learning part."""
    return not args.only or label in {x.strip() for x in args.only.split(";")}


def goal_line(goals: dict) -> None:
    if "centralized" not in goals or not goals.get("federated"):
        return
    label, f1 = max(goals["federated"], key=lambda x: x[1])
    print(f"\nGoals of #15: best federated row ({label}) reaches {f1:.3f} = {f1 / max(goals['centralized'], 1e-9):.2f}"
          f" x centralized {goals['centralized']:.3f} (goal >= 0.97 x); best plant alone {goals['best local']:.3f} "
          f"(goal: federated >= it: {'met' if f1 >= goals['best local'] else 'missed'})")


# DP-SGD at every plant: the product's defaults (privacy.batch_size, learning_rate, local_epochs, the dp_sgd clip),
# and the settings before they existed (the experiment's batch 64, rate 0.005, 2 epochs, clip 1) with --dp-before
DP_BEFORE = {"batch_size": 64, "learning_rate": 0.005, "local_epochs": 2, "max_grad_norm": 1.0}


def dp_sgd(args, fed: InProcessFederation) -> None:
    """Non-private FedAvg, then DP-SGD at epsilon 1, 4, 8 (delta 1e-5, FedAvg, pooled class weight): each plant
    derives its noise multiplier from the target over the experiment's rounds; the reported epsilon is the largest
    any plant's ledger reports after the last round."""
    from shared.privacy.dp_sgd import mean_noise_std

    print(f"\nRecord-level DP-SGD at every plant (Opacus, delta 1e-5, FedAvg, {args.rounds} rounds); noise from the "
          "target epsilon over all rounds; noise/grad = sigma C / (q n), per coordinate, of a step's mean gradient "
          "(shown for the plant with the fewest training rows)")
    print("\n| epsilon | DP training (batch, lr, epochs, clip C) | noise multiplier | q | noise on the mean gradient "
          "| test F1 | test AUC | epsilon reported (max over plants) |\n|---|---|---|---|---|---|---|---|")
    plain = fed.run(config(args, **FEDAVG))
    print(f"| inf (no DP, FedAvg) | batch 64, lr 0.005, {args.epochs} epochs | 0 | - | 0 | {fmt(plain.final)} | - |")
    settings = [("defaults", {})] + ([("before", DP_BEFORE)] if args.dp_before else [])
    for target in (1.0, 4.0, 8.0):
        for label, extra in settings:
            experiment = config(args, privacy={"mode": "dp_sgd", "epsilon": target, **extra})
            run = fed.run(experiment)
            answers = [a for a in run.rounds[-1].trained.values() if a.dp is not None]
            smallest = min(answers, key=lambda a: a.num_samples)
            sigma, rate, _ = smallest.dp.history[-1]
            p = experiment.privacy
            print(f"| {target:g} | {label}: {p.batch_size or 64}, {p.learning_rate or 0.005}, "
                  f"{p.local_epochs or args.epochs}, {p.max_grad_norm:g} | {sigma:.2f} | {rate:.3f} | "
                  f"{mean_noise_std(sigma, p.max_grad_norm, rate, smallest.num_samples):.4f} | {fmt(run.final)} | "
                  f"{max(a.dp.epsilon for a in answers):.2f} |")


def reputation_of(run: Run, attacker: str, honest: list[str]) -> str:
    rep = run.rounds[-1].aggregated.state.reputation
    return f", rep {rep.get(attacker, 1):.2f}/{min(rep[n] for n in honest):.2f}" if rep else ""


def attacks(args, root: Path, plants: list[InProcessPlant]) -> None:
    attacker = InProcessPlant.simulated("attacker", "default", args.rows, 99, root)
    fed = InProcessFederation(InProcessChannel([*plants, attacker]))
    honest = [p.name for p in plants]
    print(f"\nAttacks x defenses: {len(honest)} honest plants and 1 attacker (--byzantine); test F1 on the honest "
          "plants' test splits (AUC in brackets); reputation of the attacker / lowest honest after the last round")
    print("\n| attack | " + " | ".join(d for d, _ in DEFENSES) + " |\n|---|" + "---|" * len(DEFENSES))
    clean = fed.score(fed.run(config(args, **FEDAVG), honest).model, honest)
    print(f"| none (honest plants only, FedAvg) | {clean.aggregate['test_f1']:.3f} ({clean.aggregate['test_auc']:.2f}) |"
          + " |" * (len(DEFENSES) - 1))
    for attack in ("sign_flip", "scale:-8", "noise:1.0", "label_flip"):
        attacker.byzantine = attack
        cells = []
        for _, robust in DEFENSES:
            run = fed.run(config(args, **FEDAVG, robust={"method": "none", **robust}))
            m = fed.score(run.model, honest).aggregate
            cells.append(f"{m['test_f1']:.3f} ({m['test_auc']:.2f}{reputation_of(run, 'attacker', honest)})")
        print(f"| {attack} | " + " | ".join(cells) + " |")


def personalization(args, root: Path) -> None:
    """Per plant, on its own validation split (what chooses) and test split (reported only): the global model, the
    personalized model (fine-tune or FedPer, the plant keeps its best epoch by validation F1) and a local-only model
    (same architecture, rounds x epochs + the fine-tune's epochs, best epoch by validation F1); F1 at each model's own
    validation threshold. One federated run (FedDyn, the default), personalized once per setting. The plants
    of this part release exact histograms (min_release_rows 1): with the default 10, a test split of ~300 rows
    holding a handful of failures mostly has fewer than 10 rows above a model's threshold, and the plant withholds
    its test F1 (the release rule), which leaves nothing to compare."""
    from dataclasses import replace

    from factoryfl_testing.inprocess import UNCAPPED

    exact = replace(UNCAPPED, min_release_rows=1)
    fed = InProcessFederation(InProcessChannel([
        InProcessPlant.simulated(f"plant_{profile}", profile, args.rows, seed, root / "personal", exact)
        for profile, seed in PROFILES]))
    print("\nPersonalization at each plant (issue #15 item 4): F1 at each model's own validation threshold, "
          "validation / test; g = global (best round), p = personalized, l = local-only")
    print("\n| setting | plant | g val | p val | l val | g test | p test | l test | p >= g (val) | p >= g (test) |"
          "\n|---|---|---|---|---|---|---|---|---|---|")
    means = []
    for mode, epochs in PERSONALIZATION:
        cfg = config(args, personalization=mode, personalization_epochs=epochs)
        run = fed.run(cfg)
        answers = fed.personalize(run, cfg)
        rows = []
        for name, answer in sorted(answers.items()):
            s = {k: answer.scores[k] for k in ("global", "personalized", "local")}
            cells = [s[k].val_f1 for k in s] + [s[k].test_f1 for k in s]
            rows.append(cells)
            print(f"| {mode} {epochs} epochs | {name} | " + " | ".join(_num(c) for c in cells) +
                  f" | {_at_least(cells[1], cells[0])} | {_at_least(cells[4], cells[3])} |")
        mean = np.nanmean(np.array([[np.nan if c is None else c for c in r] for r in rows], float), axis=0)
        means.append((f"{mode} {epochs} epochs", mean))
    print("\n| setting (mean over plants) | g val | p val | l val | g test | p test | l test |\n|---|---|---|---|---|---|---|")
    for label, mean in means:
        print(f"| {label} | " + " | ".join(f"{m:.3f}" for m in mean) + " |")


def shape_body(args) -> dict:
    """The model of the data shape: the C-MAPSS engines' LSTM on 50-cycle windows, else the product's default."""
    return {"model_type": "lstm", "sequence_length": 50} if args.data == "cmapss" else {}


def scored(fed: InProcessFederation, run: Run, number: int, held) -> dict[str, float]:
    """Round `number`'s model at its pooled validation threshold: val F1 and test F1, accuracy and recall on the
    plants' test splits, or (C-MAPSS) on the held-out engines at their last cycle."""
    evaluation = run.evaluations[number]
    out = {"val_f1": evaluation.aggregate.get("val_f1") or 0.0}
    if held is None:
        out.update({k: evaluation.aggregate[f"test_{k}"] or 0.0 for k in ("f1", "accuracy", "recall")})
    else:
        out.update(held.score(run.models[number], evaluation.threshold))
    return out


def regression(args, fed: InProcessFederation, held) -> None:
    """Issue 25: 0.3's explicit C-MAPSS body (the shape's model) with each of 0.4's new defaults, as this version
    parses it, and the defaults, at the best round (what downloads) and the last; C-MAPSS: held-out engines scored
    at their last cycle, else the plants' test splits."""
    print("\n| setting (issue 25) | val F1 | test F1 | test accuracy | test recall | round |"
          "\n|---|---|---|---|---|---|")
    rows = [(label, {**BODY_03, **shape_body(args), **named}) for label, named in REGRESSION]
    for label, body in [*rows, ("the defaults (the shape's model)", shape_body(args))]:
        config = parse_experiment({"name": "regression", "seed": args.seed, **body})
        run = fed.run(config)
        for at, number in (("best round", run.best_round), ("last round", max(run.evaluations))):
            m = scored(fed, run, number, held)
            print(f"| {label}: {at} | {m['val_f1']:.3f} | {m['f1']:.3f} | {m['accuracy']:.3f} | {m['recall']:.3f} | "
                  f"{number}.000 |")


# issue 25 item 3: which round's model to release; each rule over round -> the pooled validation metrics
ROUND_RULES = {
    "last round": lambda v: max(v),
    "best val F1, ties to the later (0.4)": lambda v: max(v, key=lambda r: (v[r]["val_f1"] or 0, r)),
    "latest within 0.02 of the best val F1": lambda v: max(r for r in v if (v[r]["val_f1"] or 0) >=
                                                           max(x["val_f1"] or 0 for x in v.values()) - 0.02),
    "best 3-round mean val F1": lambda v: max(v, key=lambda r: (np.mean([v[q]["val_f1"] or 0 for q in v
                                                                          if r - 2 <= q <= r]), r)),
    "lowest val loss": lambda v: min(v, key=lambda r: (v[r]["val_loss"], -r)),
    "best val AUC": lambda v: max(v, key=lambda r: (v[r]["val_auc"] or 0, r)),
}


def gbdt(args, fed: InProcessFederation, plants: list[InProcessPlant], root: Path, held) -> None:
    """Issue 25 items 1 and 3: the product's defaults federated, per plant beside the personalized model and the
    local-only network (simulator shapes), the local-only GBDT (bench/local_gbdt.py, last-row features for
    window models), the same defaults on the pooled union and the pooled GBDT; then the release round rules."""
    from bench.local_gbdt import gbdt_rows

    from dataclasses import replace

    from factoryfl_testing.inprocess import UNCAPPED

    exact = replace(UNCAPPED, min_release_rows=1)  # per plant test F1 on a few failures: exact (personalization's)
    fed = InProcessFederation(InProcessChannel([InProcessPlant.from_data(p.name, p.data, root / "exact", exact)
                                                for p in plants]))
    cfg = parse_experiment({"name": "gbdt", "seed": args.seed, **shape_body(args)})
    run = fed.run(cfg)
    union = InProcessFederation(InProcessChannel([InProcessPlant.from_data("union", union_data(plants), root)]))
    pooled = union.run(parse_experiment({"name": "pooled", "seed": args.seed, "min_factories": 1,
                                         "personalization": "none", **shape_body(args)}))
    best, pooled_best = run.best_round, pooled.best_round
    personal = fed.personalize(run, cfg) if held is None else {}
    pooled_model, pooled_threshold = pooled.models[pooled_best], pooled.evaluations[pooled_best].threshold
    pooled_scores = fed.score(pooled_model).per_factory if held is None else {}
    trees = gbdt_rows(plants, cfg.model_spec(1).sequence_length, args.seed, held)
    print("\n| plant (test F1) | federated | personalized | local network | local GBDT | pooled defaults | "
          "pooled GBDT |\n|---|---|---|---|---|---|---|")
    for p in plants:
        if held is None:
            fed_f1, pool_f1 = run.evaluations[best].per_factory[p.name].get("test_f1"), \
                pooled_scores[p.name].get("test_f1")
            s = personal[p.name].scores if p.name in personal else {}
            mine, alone = (s["personalized"].test_f1, s["local"].test_f1) if s else (None, None)
        else:
            fed_f1 = held.score(run.models[best], run.evaluations[best].threshold, [p.name])["f1"]
            pool_f1, mine, alone = held.score(pooled_model, pooled_threshold, [p.name])["f1"], None, None
        cells = [fed_f1, mine, alone, trees[p.name]["local GBDT"], pool_f1, trees[p.name]["pooled GBDT"]]
        label = p.name.removesuffix(f"_{args.seed}") if args.data == "imbalanced" else p.name  # same over seeds
        print(f"| {label} | " + " | ".join(_num(c) for c in cells) + " |")
    rounds = {r: e.aggregate for r, e in run.evaluations.items() if r >= 1}
    print("\n| release rule (the defaults) | val F1 | test F1 | test accuracy | round |\n|---|---|---|---|---|")
    for label, rule in ROUND_RULES.items():
        number = rule(rounds)
        m = scored(fed, run, number, held)
        print(f"| {label} | {m['val_f1']:.3f} | {m['f1']:.3f} | {m['accuracy']:.3f} | {number}.000 |")


def _num(value) -> str:
    return "–" if value is None else f"{value:.3f}"


def _at_least(personal, global_) -> str:
    return "–" if personal is None or global_ is None else ("yes" if personal >= global_ else "no")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=2, help="local epochs per round")
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated, of {', '.join(PARTS)}")
    parser.add_argument("--model", default=ExperimentConfig.model_type, choices=ModelType.tabular(),
                        help="the tabular model of every row but the part 'models' (default: the product's)")
    parser.add_argument("--data", default="simulator", choices=("simulator", "imbalanced", "cmapss"))
    parser.add_argument("--data-dir", type=Path, help="--data cmapss: the folder of plant_1.csv .. plant_4.csv "
                                                      "(bench/cmapss.py)")
    parser.add_argument("--seed", type=int, default=0, help="data and model seed (bench/mlp_grid.py's convention)")
    parser.add_argument("--dp-before", action="store_true", help="dp part: also the DP-SGD settings before #15 item 7")
    parser.add_argument("--only", default="", help="';'-separated row labels of the algorithms and learning parts "
                                                   "to run (default: all), e.g. 'FedAvg;SCAFFOLD'")
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    started = time.monotonic()
    root = Path(tempfile.mkdtemp(prefix="factoryfl-quality-"))
    torch.set_num_threads(1)  # a shared machine: one core per run (bench/quality_seeds.py runs one at a time)
    held = None
    if args.data == "cmapss":
        from bench.cmapss import cmapss_plants

        plants, held = cmapss_plants(args.data_dir, root, args.seed)
        names = [f"{p.name} ({len(np.unique(p.data.groups))} engines)" for p in plants]
    elif args.data == "imbalanced":
        from bench.mlp_grid import IMBALANCED, imbalanced_plants

        plants, names = imbalanced_plants(root, args.seed), [f"{p} (CSV, ~1 % failures)" for p, _ in IMBALANCED]
    else:
        plants = [InProcessPlant.simulated(f"plant_{profile}", profile, args.rows, seed + 100 * args.seed, root)
                  for profile, seed in PROFILES]
        names = [p for p, _ in PROFILES]
    fed = InProcessFederation(InProcessChannel(plants))
    print(f"\nFactoryFL quality benchmark: {len(plants)} non-IID plants ({', '.join(names)}), "
          f"{len(plants[0].data.labels)} rows each, {args.model}, {args.rounds} rounds x {args.epochs} local epochs (= "
          f"{args.rounds * args.epochs} epochs for the non-federated rows); test F1 at the pooled-validation threshold"
          f" and ROC-AUC on all plants' test splits; {psutil.cpu_count()} CPU(s)")
    print("\n| setting | val F1 | test F1 | test AUC |\n|---|---|---|---|")
    goals: dict = baselines(args, fed, plants, root) if "baselines" in parts else {}
    if "models" in parts:
        models(args, fed, plants, root)
    for label, body in ALGORITHMS if "algorithms" in parts else []:
        if not wanted(args, label):
            continue
        run = fed.run(config(args, **body))
        print(f"| federated {label} | {fmt_val(run.final)} |")
        goals.setdefault("federated", []).append((label, run.final.aggregate["test_f1"]))
    if "learning" in parts:
        learning(args, fed, goals)
    goal_line(goals)
    if "dp" in parts:
        dp_sgd(args, fed)
    if "attacks" in parts:
        attacks(args, root, plants)
    if "personalization" in parts:
        personalization(args, root)
    if "regression" in parts:
        regression(args, fed, held)
    if "gbdt" in parts:
        gbdt(args, fed, plants, root, held)
    print(f"\n(ran in {time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
