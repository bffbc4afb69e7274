"""Data-pruning quality benchmark (issues 6, 11): accuracy against keep fraction on SST-2 and Banking77.

Full training sets by default (SST-2 6,920 rows, Banking77 10,003 rows), full test sets. Two probes
on frozen bundled-MiniLM embeddings, trained on the kept rows and evaluated on the clean test set:
  logreg  linear softmax layer, AdamW lr 1e-2, wd 1e-4, batch 128, 20 epochs (>= 150 steps)
  mlp     384 -> 256 -> K, ReLU, AdamW lr 1e-3, wd 1e-4, batch 128, 20 epochs (>= 150 steps)
Regimes: clean labels, and 20 % seeded label flips in the train set (the test set stays clean).
All probes of one keep fraction (every method's selection x probe seed) train together as stacked
independent models (`train_eval_many` through `datapruner.curation.stacked_training`: same
initialisation, batch order and AdamW updates as one probe trained alone, one step loop for all),
which is what makes the full sets fit in CPU time.

Every score is computed ONCE per dataset and regime with the library's scorers (through
`datapruner.pipelines.curate.score`) and cached under `<DATAPRUNER_CACHE>/benchmarks/`; every
selection is made by the library's policies (`make_policy` + `apply_policies`, with the run's
labels and embeddings in a `SelectionContext`); each (dataset, regime, probe, method) curve is
cached too, so a rerun only computes what is missing. Budgets are `keep_total` = f (a fraction of
all N train rows), so chains that drop rows first still keep f N rows when enough survive.

Random: 5 seeded subsets per keep fraction (probe seed = subset seed); its mean and standard
deviation are the reference of every "minus random, in standard deviations" cell. Every other
method: one deterministic selection, 3 probe seeds.

Methods (f = keep fraction of the N train rows):
  random              seeded random subset
  el2n_hard           top_fraction(el2n, high)            el2n_hard_offset  ... offset 0.1
  el2n_easy           top_fraction(el2n, low)             el2n_easy_pc      ... per_class: true
  grand               top_fraction(grand, high); GraNd at initialisation
  proto_hard / proto_easy   prototypes(prefer hard / easy), k = number of classes
  dbp                 density (k = 20) + cluster_quota
  semdedup_dbp        semdedup (eps 0.01) -> density -> drop_flagged -> cluster_quota
  ppl_middle          band(perplexity, middle) under SmolLM2-135M (only with --perplexity)
  cl_el2n             drop_label_issues -> top_fraction(el2n, high)
  quadrants           eu_quadrants + quadrants
  coverage / coverage_pc   coverage(el2n, beta 0.1, 50 strata) [per_class: true]
  d2                  d2(el2n, k 10, gamma 1, beta 0)
  moderate / moderate_pc   moderate (distance to the class centre) [per_class: true]
  cl_easy_pc          drop_label_issues -> top_fraction(el2n, low, per_class: true)
  cl_coverage_pc      drop_label_issues -> coverage(el2n, beta 0, per_class: true)
  recommended         datapruner.selection.recipes.recommended(f) (the shipped recipe), on the flags of the
                      recipe's own detector (RECOMMENDED_SCORERS: LABEL_NOISE_DETECTOR); the cl_* methods use
                      the default confident_learning flags

Run:  .venv/bin/python benchmarks/pruning_curve.py [--quick] [--train-rows N] [--datasets sst2,banking77]
Writes benchmarks/results/pruning_curve.json and pruning_curve_<dataset>_<regime>.png

Held-out check: `--heldout` runs the recipe, its parts and the simple per-class baselines (HELDOUT_METHODS)
against random on TREC (6 coarse classes, 5,452 train / 500 test questions) and SMS spam (2 classes, a
seeded 80/20 split of 5,574 messages), datasets never used to choose a method, a parameter or a default,
into pruning_curve_heldout.json and its own README block.
(quick: *_quick.json / *_quick_*.png).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

import numpy as np  # noqa: E402

from datapruner.selection.recipes import RECOMMENDED_SCORERS  # noqa: E402

FRACTIONS = [0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 1.0]
SEEDS = [0, 1, 2]
RANDOM_SEEDS = [0, 1, 2, 3, 4]
PROBES = {
    "logreg": {"hidden": 0, "lr": 1e-2},
    "mlp": {"hidden": 256, "lr": 1e-3},
}
TRAIN: dict = {"epochs": 20, "min_steps": 150}
NOISE = 0.2
DBP_CLUSTERS = 20
METHODS = [
    "random", "recommended", "cl_easy_pc", "cl_coverage_pc", "el2n_easy_pc", "coverage_pc", "moderate_pc", "moderate",
    "coverage", "d2", "el2n_easy", "el2n_hard", "el2n_hard_offset", "grand", "proto_hard", "proto_easy",
    "dbp", "semdedup_dbp", "ppl_middle", "cl_el2n", "quadrants",
]
RECIPE_DETECTOR = next(s for s in RECOMMENDED_SCORERS if s["name"] == "confident_learning")
NEW = {"coverage", "coverage_pc", "d2", "moderate", "moderate_pc", "cl_easy_pc", "cl_coverage_pc", "recommended", "el2n_easy_pc"}
REPORT_FRACTIONS = (0.1, 0.3, 0.5)
# --heldout: the recipe, its parts and the simple per-class baselines on datasets never used to choose
# a method or a default (SST-2 and Banking77 were); written to pruning_curve_heldout.json
HELDOUT_DATASETS = ("trec", "sms_spam")
HELDOUT_METHODS = ["random", "recommended", "cl_easy_pc", "cl_coverage_pc", "el2n_easy_pc", "coverage_pc"]
TITLE = "Data pruning: accuracy against keep fraction (`benchmarks/pruning_curve.py`)"
HELDOUT_TITLE = "Data pruning on held-out datasets: TREC and SMS spam (`benchmarks/pruning_curve.py --heldout`)"


def report_fractions() -> list[float]:
    """The keep fractions the tables and goals report (those of REPORT_FRACTIONS this run measured)."""
    return [f for f in REPORT_FRACTIONS if f in FRACTIONS]


# ---- downstream probes -----------------------------------------------------------------------------
def train_eval_many(jobs: list[tuple[np.ndarray, int]], x, y, x_te, y_te, *, n_classes: int, hidden: int, lr: float,
                    epochs: int = 20, min_steps: int = 150) -> list[float]:
    """Test accuracy of one probe per job (rows of x, seed), trained together as stacked models.

    Each job is its own probe (hidden=0: linear softmax; else one hidden ReLU layer), initialised
    from `seed` (`make_proxy_model`) and trained with AdamW (wd 1e-4) on its own batch order seeded
    by `seed` (batch 128, `epochs` epochs and at least `min_steps` steps), exactly as if trained
    alone: `datapruner.curation.stacked_training.train_stacked` runs one step loop for all jobs, so
    the per-step Python and dispatch overhead is paid once for all of them instead of once per probe.
    """
    import torch

    from datapruner.curation.proxy import make_proxy_model
    from datapruner.curation.stacked_training import train_stacked

    models = [make_proxy_model(x.shape[1], n_classes, hidden=hidden, random_state=seed) for _, seed in jobs]
    train_stacked(models, x, y, [rows for rows, _ in jobs], [seed for _, seed in jobs], epochs=epochs, min_steps=min_steps, lr=lr,
                  weight_decay=1e-4, batch_size=128)
    xte = torch.from_numpy(x_te)
    with torch.inference_mode():
        return [float((m(xte).argmax(1).numpy() == y_te).mean()) for m in models]


# ---- selection -------------------------------------------------------------------------------------
def method_specs(method: str, f: float) -> list[dict]:
    """The policy chain of `method` at keep fraction `f` of the whole train set."""
    from datapruner.selection.recipes import recommended

    el2n = {"score": "el2n", "keep_total": f}
    cov = {"policy": "coverage", **el2n}
    specs = {
        "el2n_hard": [{"policy": "top_fraction", **el2n, "direction": "high"}],
        "el2n_hard_offset": [{"policy": "top_fraction", **el2n, "direction": "high", "offset": 0.1}],
        "el2n_easy": [{"policy": "top_fraction", **el2n, "direction": "low"}],
        "el2n_easy_pc": [{"policy": "top_fraction", **el2n, "direction": "low", "per_class": True}],
        "grand": [{"policy": "top_fraction", "score": "grand", "keep_total": f, "direction": "high"}],
        "proto_hard": [{"policy": "prototypes", "keep_total": f, "prefer": "hard"}],
        "proto_easy": [{"policy": "prototypes", "keep_total": f, "prefer": "easy"}],
        "dbp": [{"policy": "cluster_quota", "keep_total": f}],
        "semdedup_dbp": [{"policy": "drop_flagged", "score": "dd_semdedup_duplicate"},
                         {"policy": "cluster_quota", "keep_total": f, "cluster": "dd_dbp_cluster", "score": "dd_dbp_distance", "weight": "dd_dbp_weight"}],
        "ppl_middle": [{"policy": "band", "score": "perplexity", "keep_total": f, "band": "middle"}],
        "cl_el2n": [{"policy": "drop_label_issues"}, {"policy": "top_fraction", **el2n, "direction": "high"}],
        "quadrants": [{"policy": "quadrants", "keep_total": f}],
        "coverage": [cov],
        "coverage_pc": [{**cov, "per_class": True}],
        "d2": [{"policy": "d2", **el2n}],
        "moderate": [{"policy": "moderate", "keep_total": f}],
        "moderate_pc": [{"policy": "moderate", "keep_total": f, "per_class": True}],
        "cl_easy_pc": [{"policy": "drop_label_issues"}, {"policy": "top_fraction", **el2n, "direction": "low", "per_class": True}],
        "cl_coverage_pc": [{"policy": "drop_label_issues"}, {**cov, "beta": 0.0, "per_class": True}],
        "recommended": recommended(f),
    }
    return specs[method]


def select(scores: dict, specs: list[dict], context) -> np.ndarray:
    from datapruner.selection import apply_policies, make_policy

    n = len(context.labels)
    keep, _ = apply_policies([make_policy(s) for s in specs], dict(scores), valid=np.ones(n, dtype=bool),
                             invalid_reason=np.full(n, "", dtype=object), context=context)
    return keep


# ---- scores ----------------------------------------------------------------------------------------
def compute_scores(name: str, regime: str, train: common.Split, *, labels: np.ndarray, key: str, work: Path, threads: int) -> tuple[dict, dict]:
    path = common.write_parquet(work / f"{name}_{regime}.parquet", train.texts, labels, train.names)
    timings = {}
    t0 = time.perf_counter()
    main = common.score_with_library(
        path,
        [{"name": "confident_learning"}, {"name": "el2n"}, {"name": "grand"}, {"name": "eu_quadrants"},
         {"name": "prototypicality"}, {"name": "density", "params": {"n_clusters": DBP_CLUSTERS}}],
        work / f"out_{name}_{regime}", threads=threads, cache_name=f"pruning_{key}_{regime}_main",
    )
    timings["main_scorers_s"] = round(time.perf_counter() - t0, 2)
    t0 = time.perf_counter()
    dedup = common.score_with_library(
        path, [{"name": "semdedup", "params": {"eps": 0.01}}, {"name": "density", "params": {"n_clusters": DBP_CLUSTERS}}],
        work / f"out_dd_{name}_{regime}", threads=threads, cache_name=f"pruning_{key}_{regime}_dedup",
    )
    timings["semdedup_dbp_scorers_s"] = round(time.perf_counter() - t0, 2)
    t0 = time.perf_counter()
    detector = common.score_with_library(
        path, [RECIPE_DETECTOR], work / f"out_rec_{name}_{regime}", threads=threads,
        cache_name=f"pruning_{key}_{regime}_recipe_" + hashlib.sha1(json.dumps(RECIPE_DETECTOR, sort_keys=True).encode()).hexdigest()[:8],
    )
    timings["recipe_detector_s"] = round(time.perf_counter() - t0, 2)
    scores = dict(main)
    scores.update({f"dd_{k}": v for k, v in dedup.items()})
    scores.update({f"rec_{k}": v for k, v in detector.items()})
    return scores, timings


def scores_for(method: str, scores: dict) -> dict:
    """The columns `method` selects on: the recipe reads its own detector's flags and label quality."""
    if method != "recommended":
        return scores
    return {**scores, **{k[len("rec_"):]: v for k, v in scores.items() if k.startswith("rec_")}}


def perplexity_scores(name: str, train: common.Split, key: str, work: Path, threads: int) -> tuple[np.ndarray, float]:
    path = common.write_parquet(work / f"{name}_ppl.parquet", train.texts)
    t0 = time.perf_counter()
    s = common.score_with_library(path, [{"name": "perplexity"}], work / f"out_ppl_{name}", threads=threads, label=False, cache_name=f"pruning_{key}_perplexity")
    return s["perplexity"], time.perf_counter() - t0


# ---- curves ----------------------------------------------------------------------------------------
def curve_cache(key: str, regime: str, probe: str, method: str, quick: bool) -> Path:
    from datapruner.paths import cache_dir

    specs = [method_specs(method, f) for f in FRACTIONS] if method != "random" else []
    detector = RECIPE_DETECTOR if method == "recommended" else None
    tag = hashlib.sha1(json.dumps([FRACTIONS, SEEDS, RANDOM_SEEDS, PROBES[probe], TRAIN, specs, detector], sort_keys=True).encode()).hexdigest()[:10]
    return cache_dir() / "benchmarks" / f"curve_{key}_{regime}_{probe}_{method}_{tag}{'_quick' if quick else ''}.json"


def selections_for(method: str, *, scores, context, n: int, memo: dict) -> dict[float, list[tuple[np.ndarray, int]]]:
    """Per keep fraction, the (kept mask, probe seed) pairs of `method` (random: one seeded subset per seed).

    `memo` caches the masks per (method, fraction), so the second probe reuses the first's selections.
    """
    from datapruner.selection.base import count_for

    out = {}
    for f in FRACTIONS:
        if method == "random":
            masks = []
            for seed in RANDOM_SEEDS:
                keep = np.zeros(n, dtype=bool)
                keep[np.random.default_rng(1000 + seed).choice(n, count_for(f, n), replace=False)] = True
                masks.append((keep, seed))
            out[f] = masks
            continue
        if (method, f) not in memo:
            memo[method, f] = select(scores_for(method, scores), method_specs(method, f), context)
        out[f] = [(memo[method, f], seed) for seed in SEEDS]
    return out


def measure(methods: list[str], probe: str, *, scores, context, x_tr, labels, x_te, y_te, flipped, k: int, memo: dict,
            chosen: dict, save=lambda: None) -> dict[str, dict]:
    """The curves of `methods` under one probe: per keep fraction, mean / std of the accuracy and what was kept.

    Per keep fraction, every (selection, probe seed) pair not yet in `memo` (selection hash and seed
    to accuracy) is trained in one `train_eval_many` call, then `save()` persists the memo: an
    interrupted run resumes at the fraction it was on, and two methods that keep the same rows
    (e.g. the recipe and its parts) train once.
    """
    sel = {m: selections_for(m, scores=scores, context=context, n=len(labels), memo=chosen) for m in methods}
    curves: dict[str, dict] = {m: {} for m in methods}
    for f in FRACTIONS:
        t0 = time.perf_counter()
        todo: dict[str, tuple[np.ndarray, int]] = {}
        for m in methods:
            for keep, seed in sel[m][f]:
                key = hashlib.sha1(keep.tobytes()).hexdigest() + f"_{seed}"
                if key not in memo:
                    todo.setdefault(key, (np.flatnonzero(keep), seed))
        if todo:
            accs = train_eval_many(list(todo.values()), x_tr, labels, x_te, y_te, n_classes=k, **PROBES[probe], **TRAIN)
            memo.update(zip(todo, accs))
            save()
        print(f"  {probe} keep {f}: {len(todo)} probes trained in {time.perf_counter() - t0:.1f} s", flush=True)
        for m in methods:
            pairs = sel[m][f]
            accs = [memo[hashlib.sha1(keep.tobytes()).hexdigest() + f"_{seed}"] for keep, seed in pairs]
            keep = pairs[0][0]
            curves[m][str(f)] = {"mean": float(np.mean(accs)), "std": float(np.std(accs)), "per_seed": accs,
                                 "n_kept": int(np.mean([p[0].sum() for p in pairs])),
                                 "share_flipped_in_kept": float(np.mean([flipped[p[0]].mean() if p[0].any() else 0.0 for p in pairs])),
                                 "classes_kept": int(min(np.unique(labels[p[0]]).size for p in pairs))}
    return curves


# ---- report ----------------------------------------------------------------------------------------
def z_score(curves: dict, method: str, f: float) -> float | None:
    c, r = curves.get(method, {}), curves["random"]
    if str(f) not in c or "mean" not in c[str(f)]:
        return None
    std = r[str(f)]["std"]
    return (c[str(f)]["mean"] - r[str(f)]["mean"]) / max(std, 1e-4)


def plot(curves: dict, title: str, path: Path) -> None:
    plt = common.plt()
    fig, ax = plt.subplots(figsize=(8, 5.5))
    xs = [int(f * 100) for f in FRACTIONS]
    colors = dict(zip(METHODS[1:], plt.cm.tab20(np.linspace(0, 1, len(METHODS) - 1))))
    for method in METHODS:
        c = curves.get(method)
        if not c or "not_run" in c:
            continue
        mean = [c[str(f)]["mean"] for f in FRACTIONS]
        if method == "random":
            ax.errorbar(xs, mean, yerr=[c[str(f)]["std"] for f in FRACTIONS], color="black", lw=2.5, capsize=4,
                        label=f"random (±1 sd, {len(RANDOM_SEEDS)} seeds)", zorder=5)
        else:
            ax.plot(xs, mean, marker="o", ms=3, lw=2.5 if method == "recommended" else 1.2, label=method,
                    ls="--" if method in NEW else "-", color="red" if method == "recommended" else colors[method])
    ax.set_xlabel("keep fraction (%)")
    ax.set_ylabel("test accuracy (MLP probe, mean of 3 seeds)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def headline(results: dict) -> dict:
    table = {}
    for key, r in results.items():
        out = {}
        for probe, curves in r["curves_by_probe"].items():
            rows = {}
            for m in METHODS:
                if "not_run" in curves.get(m, {"not_run": "missing"}):
                    rows[m] = {"not_run": curves.get(m, {}).get("not_run", "missing")}
                    continue
                rows[m] = {f"z_{int(f * 100)}": z_score(curves, m, f) for f in FRACTIONS if f < 1.0}
                rows[m].update({f"delta_{int(f * 100)}": curves[m][str(f)]["mean"] - curves["random"][str(f)]["mean"] for f in FRACTIONS if f < 1.0})
                rows[m].update({f"acc_{int(f * 100)}": curves[m][str(f)]["mean"] for f in FRACTIONS})
            ran = [m for m in METHODS if "not_run" not in rows[m]]
            if "random" not in ran:
                out[probe] = {"methods": rows, "full_data_accuracy": None, "best": {"method": None, "keep": None, "accuracy": None, "minus_full": None}}
                continue
            full = curves["random"]["1.0"]["mean"]
            best = max((curves[m][str(f)]["mean"], m, f) for m in ran for f in FRACTIONS if f < 1.0)
            out[probe] = {"methods": rows, "full_data_accuracy": full,
                          "best": {"method": best[1], "keep": best[2], "accuracy": best[0], "minus_full": best[0] - full}}
        table[key] = out
    # the headline the quick test reads: the MLP probe
    return {k: {**v["mlp"], "by_probe": v} for k, v in table.items()}


def goals(results: dict) -> dict:
    """The issue-11 goals, measured: recommended vs random (z) and the noisy MLP vs the clean full-data MLP."""
    out = {}
    for name in sorted({r["dataset"] for r in results.values()}):
        noisy, clean = results.get(f"{name}/noise20"), results.get(f"{name}/clean")
        if noisy is None or clean is None or any("not_run" in r["curves_by_probe"][p].get("recommended", {"not_run": ""})
                                                  or "not_run" in r["curves_by_probe"][p].get("random", {"not_run": ""})
                                                  for r in (noisy, clean) for p in PROBES):
            out[name] = {"not_run": "a regime or the recommended / random curve was not measured in this run"}
            continue
        g = {}
        for probe in PROBES:
            zs = {f"{regime}@{int(f * 100)}": z_score(results[f"{name}/{regime}"]["curves_by_probe"][probe], "recommended", f)
                  for regime in ("clean", "noise20") for f in FRACTIONS if f < 1.0}
            g[probe] = {
                "z_noise20_at_10_30_50": [zs[f"noise20@{int(f * 100)}"] for f in report_fractions()],
                "beats_random_2sd_noise20_at_10_30_50": all(zs[f"noise20@{int(f * 100)}"] >= 2 for f in report_fractions()),
                "min_z_any_cell": min(zs.values()), "cell_of_min_z": min(zs, key=zs.get),
                "never_below_minus_1sd": min(zs.values()) >= -1,
            }
        clean_full = clean["curves_by_probe"]["mlp"]["random"]["1.0"]["mean"]
        rec = noisy["curves_by_probe"]["mlp"]["recommended"]
        best_f = max(FRACTIONS, key=lambda f: rec[str(f)]["mean"])
        g["mlp_noise20_recommended_vs_clean_full"] = {
            "clean_full_mlp": clean_full, "best_keep": best_f, "recommended_best": rec[str(best_f)]["mean"],
            "gap": rec[str(best_f)]["mean"] - clean_full, "within_0.005": rec[str(best_f)]["mean"] >= clean_full - 0.005,
            "noisy_full_mlp": noisy["curves_by_probe"]["mlp"]["random"]["1.0"]["mean"],
        }
        out[name] = g
    return out


def switch_points(results: dict) -> dict:
    """Per dataset/regime and probe: cl_easy_pc minus cl_coverage_pc at each keep fraction, and the measured
    switch (the smallest fraction from which coverage per class matches or beats easy-first at every larger one)."""
    out = {}
    for key, r in results.items():
        for probe, curves in r["curves_by_probe"].items():
            easy, cov = curves.get("cl_easy_pc", {"not_run": ""}), curves.get("cl_coverage_pc", {"not_run": ""})
            if "not_run" in easy or "not_run" in cov:
                continue
            fs = [f for f in FRACTIONS if f < 1.0]
            diff = {str(f): easy[str(f)]["mean"] - cov[str(f)]["mean"] for f in fs}
            switch = next((f for i, f in enumerate(fs) if all(diff[str(g)] <= 0 for g in fs[i:])), None)
            out[f"{key}/{probe}"] = {"easy_minus_coverage": diff, "switch": switch}
    return out


def make_note(quick: bool, n_train, not_run: dict, sizes: dict[str, int]) -> str:
    all_rows = ", ".join(f"{name} {n:,}" for name, n in sizes.items())
    sub = "quick slice: 240 train / 200 test rows, 10 epochs" if quick else (
        f"all train rows ({all_rows}), full test sets" if n_train is None else (
        f"a seeded subsample of {n_train} train rows per dataset, full test sets (the full training sets did not fit: on the "
        "shared 2-core machine each benchmark process got well under a tenth of a core during this session; "
        "`--train-rows 0` runs them)"))
    skipped = "".join(f" `{m}`: not run ({why})." for m, why in not_run.items())
    return (
        f"Probes on frozen MiniLM embeddings (logreg = linear softmax, mlp = 384-256-K), {len(SEEDS)} probe seeds per selection, "
        f"random = {len(RANDOM_SEEDS)} seeded subsets; {sub}; noise20 = 20 % seeded label flips in train, clean test. "
        "Scores computed once per dataset/regime with the library's scorers, selections by the library's policies "
        f"(budgets as keep_total). `*` marks the policies added in issue 11.{skipped}"
    )


def readme(results: dict, head: dict, gl: dict, note: str, png: dict, title: str = TITLE) -> dict:
    keys = list(results)
    lines = [note, "", "**Accuracy minus random, in random's standard deviations** (z = (method - mean of random) / sd of random; "
             "positive = better than random; |z| < 2 is within noise):", ""]
    for probe in PROBES:
        lines += [f"*{probe} probe*", ""]
        lines.append("| method | " + " | ".join(f"{k} @{int(f * 100)}%" for k in keys for f in report_fractions()) + " |")
        lines.append("|---|" + "---|" * (len(keys) * len(report_fractions())))
        for m in METHODS:
            cells = []
            for k in keys:
                row = head[k]["by_probe"][probe]["methods"][m]
                for f in report_fractions():
                    cells.append("not run" if "not_run" in row else f"{row[f'z_{int(f * 100)}']:+.1f}")
            lines.append(f"| {m}{' *' if m in NEW else ''} | " + " | ".join(cells) + " |")
        lines.append("| *random mean (sd)* | " + " | ".join(
            "not run" if "not_run" in results[k]["curves_by_probe"][probe]["random"] else
            f"{results[k]['curves_by_probe'][probe]['random'][str(f)]['mean']:.3f} ({results[k]['curves_by_probe'][probe]['random'][str(f)]['std']:.3f})"
            for k in keys for f in report_fractions()) + " |")
        lines.append("")
    lines += ["**Issue 11 goals, measured** (`recommended` = the shipped recipe):", "",
              "| dataset | probe | z at 10/30/50 % (noise20) | >= 2 sd at all three | lowest z in any cell | never below -1 sd |",
              "|---|---|---|---|---|---|"]
    for name, g in gl.items():
        if "not_run" in g:
            lines.append(f"| {name} | - | not run ({g['not_run']}) | | | |")
            continue
        for probe in PROBES:
            p = g[probe]
            beats = "yes" if p["beats_random_2sd_noise20_at_10_30_50"] else f"no (missed by {2 - min(p['z_noise20_at_10_30_50']):.1f} sd)"
            floor = "yes" if p["never_below_minus_1sd"] else f"no (missed by {-1 - p['min_z_any_cell']:.1f} sd)"
            lines.append(f"| {name} | {probe} | {' / '.join(f'{z:+.1f}' for z in p['z_noise20_at_10_30_50'])} | {beats} | "
                         f"{p['min_z_any_cell']:+.1f} ({p['cell_of_min_z']}) | {floor} |")
    lines += ["", "| dataset | MLP on full clean set | MLP on full noisy set | recommended under noise (best keep) | gap | within 0.005 |", "|---|---|---|---|---|---|"]
    for name, g in gl.items():
        if "not_run" in g:
            lines.append(f"| {name} | not run ({g['not_run']}) | | | | |")
            continue
        c = g["mlp_noise20_recommended_vs_clean_full"]
        within = "yes" if c["within_0.005"] else f"no (missed by {-0.005 - c['gap']:.3f})"
        lines.append(f"| {name} | {c['clean_full_mlp']:.3f} | {c['noisy_full_mlp']:.3f} | {c['recommended_best']:.3f} ({int(c['best_keep'] * 100)}%) | "
                     f"{c['gap']:+.3f} | {within} |")
    from datapruner.selection.recipes import RECOMMENDED_SWITCH

    fs = [f for f in FRACTIONS if f < 1.0]
    lines += ["", "**The recipe at every keep fraction**, minus random in random's standard deviations (the goal: never below -1):", "",
              "| dataset / regime | probe | " + " | ".join(f"@{int(f * 100)}%" for f in fs) + " |", "|---|---|" + "---|" * len(fs)]
    for k in keys:
        for probe in PROBES:
            row = head[k]["by_probe"][probe]["methods"]["recommended"]
            lines.append(f"| {k} | {probe} | " + " | ".join("not run" if "not_run" in row else f"{row[f'z_{int(f * 100)}']:+.1f}" for f in fs) + " |")
    lines += ["", f"**Regime rule (Sorscher et al. 2022)**: accuracy of easy-first per class (`cl_easy_pc`) minus coverage per class "
              f"(`cl_coverage_pc`); the measured switch is the smallest keep fraction from which coverage matches or beats easy-first "
              f"at every larger one (the shipped recipe: {'no switch, coverage at every budget' if RECOMMENDED_SWITCH is None else f'easy-first below {int(RECOMMENDED_SWITCH * 100)} %'}):", "",
              "| dataset / regime / probe | " + " | ".join(f"@{int(f * 100)}%" for f in fs) + " | measured switch |", "|---|" + "---|" * (len(fs) + 1)]
    sw = switch_points(results)
    for k, v in sw.items():
        lines.append(f"| {k} | " + " | ".join(f"{v['easy_minus_coverage'][str(f)]:+.3f}" for f in fs) + " | "
                     + (f"{int(v['switch'] * 100)} %" if v["switch"] is not None else "none (easy-first wins at 90 %)") + " |")
    lines += ["", "Rows confident learning flags (`is_label_issue`) against the rows flipped: the default detector (the `cl_*` methods) "
              "and the recipe's (`recommended`, `datapruner.selection.recipes.LABEL_NOISE_DETECTOR`):", "",
              "| dataset / regime | train rows | flipped | flagged, default (of them flipped) | flagged, recipe (of them flipped) |",
              "|---|---|---|---|---|"]
    lines += [f"| {k} | {r['n_train']:,} | {r['n_flipped']:,} | {r['n_label_issues_flagged']:,} ({r['flipped_among_flagged']:,}) | "
              f"{r['n_label_issues_flagged_recipe']:,} ({r['flipped_among_flagged_recipe']:,}) |" for k, r in results.items()]
    lines += ["", "Best selection against training on all rows of the same regime (MLP probe):", "",
              "| dataset / regime | full-data accuracy | best method | keep | accuracy | best minus full |", "|---|---|---|---|---|---|"]
    for k in keys:
        b = head[k]["best"]
        if b["method"] is None:
            lines.append(f"| {k} | not run | | | | |")
            continue
        lines.append(f"| {k} | {head[k]['full_data_accuracy']:.3f} | {b['method']} | {int(b['keep'] * 100)}% | {b['accuracy']:.3f} | {b['minus_full']:+.3f} |")
    lines += [""] + [f"![{k}]({p})" for k, p in png.items()]
    return common.readme_block(title, "\n".join(lines))


def finish(d: dict, quick: bool) -> dict:
    """Headline, goals and README block from the measured curves (also used by --replot)."""
    n_train = None if d["train_rows"] == "all" else d["train_rows"]
    d["headline"] = headline(d["results"])
    d["goals"] = goals(d["results"])
    d["switch_points"] = switch_points(d["results"])
    sizes = {r["dataset"]: r["n_train"] for r in d["results"].values()}
    d["readme"] = readme(d["results"], d["headline"], d["goals"], make_note(quick, n_train, d.get("not_run", {}), sizes), d["plots"],
                         d.get("readme_title", TITLE))
    return d


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="240 train / 200 test rows per dataset, 1 seed, 10 epochs, keep 30/50/100%%")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--train-rows", type=int, default=0, help="seeded train subsample per dataset (default 0 = all rows)")
    ap.add_argument("--datasets", default="sst2,banking77")
    ap.add_argument("--regimes", default="clean,noise20", help="label regimes to measure (default clean,noise20)")
    ap.add_argument("--probes", default=",".join(PROBES), help="probes to measure (default logreg,mlp; the others are read from the curve cache)")
    ap.add_argument("--methods", default=",".join(METHODS), help="compute only these (the others are read from the curve cache)")
    ap.add_argument("--perplexity", action="store_true", help="score perplexity under SmolLM2 (the slowest score: every train text through the LM, cached per dataset); default: only with --quick")
    ap.add_argument("--replot", action="store_true", help="rebuild the PNGs, goals and README block from the results JSON (no recomputation)")
    ap.add_argument("--heldout", action="store_true", help=f"datasets {','.join(HELDOUT_DATASETS)} and methods {','.join(HELDOUT_METHODS)} only, "
                                                            "into pruning_curve_heldout.json (sets --datasets and --methods)")
    args = ap.parse_args(argv)
    global FRACTIONS, SEEDS, RANDOM_SEEDS, TRAIN
    base = "pruning_curve_heldout" if args.heldout else "pruning_curve"
    if args.heldout:
        args.datasets, args.methods = ",".join(HELDOUT_DATASETS), ",".join(HELDOUT_METHODS)
        METHODS[:] = HELDOUT_METHODS
    name_json = f"{base}_quick.json" if args.quick else f"{base}.json"
    if args.replot:
        d = json.loads((common.RESULTS / name_json).read_text())
        FRACTIONS[:] = d["fractions"]
        for key, r in d["results"].items():
            plot(r["curves"], f"{r['dataset']} ({r['regime']}, {r['n_train']} train rows)", common.RESULTS / Path(d["plots"][key]).name)
        d = finish(d, args.quick)
        d["readme_rebuilt_utc"] = common.now()
        (common.RESULTS / name_json).write_text(json.dumps(d, indent=1))
        return
    threads = common.set_threads(args.threads)
    started = common.now()
    if args.quick:
        FRACTIONS, SEEDS, RANDOM_SEEDS, TRAIN = [0.3, 0.5, 1.0], [0], [0, 1], {"epochs": 10, "min_steps": 40}
    with_ppl = (args.perplexity or args.quick) and "ppl_middle" in METHODS
    not_run = {} if with_ppl else {"ppl_middle": "perplexity under SmolLM2-135M is the slowest score (every train text through the LM); "
                                                  "pass --perplexity"}
    not_run = {m: why for m, why in not_run.items() if m in METHODS}
    compute = set(args.methods.split(","))
    n_train = 240 if args.quick else (args.train_rows or None)
    n_test = 200 if args.quick else None
    suffix = "_quick" if args.quick else ""
    results, timings, png = {}, {}, {}
    from datapruner.selection import SelectionContext

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for name in args.datasets.split(","):
            train_full, test = common.load_classification(name)
            train = train_full.take(common.subsample(len(train_full), n_train, random_state=0))
            test = test.take(common.subsample(len(test), n_test, random_state=0))
            k = len(train.names)
            key = f"{name}_{len(train)}_" + hashlib.sha256("\n".join(train.texts).encode()).hexdigest()[:12]
            t0 = time.perf_counter()
            x_tr, x_te = common.embed_texts(train.texts), common.embed_texts(test.texts)
            timings[f"{name}_embed_s"] = round(time.perf_counter() - t0, 2)
            ppl = None
            if with_ppl:
                ppl, ppl_s = perplexity_scores(name, train, key, work, threads)
                timings[f"{name}_perplexity_s"] = round(ppl_s, 2)
            for regime in args.regimes.split(","):
                if regime == "clean":
                    labels, flipped = train.labels, np.zeros(len(train), dtype=bool)
                else:
                    labels, flipped = common.inject_label_noise(train.labels, NOISE, k, random_state=7)
                scores, t = compute_scores(name, regime, train, labels=labels, key=key, work=work, threads=threads)
                if ppl is not None:
                    scores["perplexity"] = ppl
                timings[f"{name}_{regime}"] = t
                context = SelectionContext(labels=labels, embeddings=lambda x=x_tr: x, random_state=0)
                by_probe, chosen = {}, {}
                for probe in PROBES:
                    t0 = time.perf_counter()
                    curves, todo = {}, []
                    memo_path = curve_cache(key, regime, probe, "random", args.quick).with_name(f"memo_{key}_{regime}_{probe}{suffix}.json")
                    memo = json.loads(memo_path.read_text()) if memo_path.exists() and not args.quick else {}
                    for method in METHODS:
                        if method in not_run:
                            curves[method] = {"not_run": not_run[method]}
                            continue
                        path = curve_cache(key, regime, probe, method, args.quick)
                        if path.exists() and (method not in compute or not args.quick):
                            curves[method] = json.loads(path.read_text())
                            continue
                        if method not in compute or probe not in args.probes.split(","):
                            curves[method] = {"not_run": "not measured on the full set in this session's CPU time (a shared 2-core machine at load "
                                                          f"average {os.getloadavg()[0]:.0f}; the recipe, its two parts and random ran first); "
                                                          "`--methods` runs it"}
                            continue
                        todo.append(method)
                    if todo:
                        print(name, regime, probe, "measuring", todo, flush=True)
                        measured = measure(todo, probe, scores=scores, context=context, x_tr=x_tr, labels=labels, x_te=x_te, y_te=test.labels,
                                           flipped=flipped, k=k, memo=memo, chosen=chosen,
                                           save=lambda: None if args.quick else memo_path.write_text(json.dumps(memo)))
                        for method, curve in measured.items():
                            path = curve_cache(key, regime, probe, method, args.quick)
                            path.parent.mkdir(parents=True, exist_ok=True)
                            path.write_text(json.dumps(curve))
                            curves[method] = curve
                            print(name, regime, probe, method, {f: round(curve[str(f)]["mean"], 3) for f in FRACTIONS}, flush=True)
                    by_probe[probe] = curves
                    timings[f"{name}_{regime}"][f"train_eval_{probe}_s"] = round(time.perf_counter() - t0, 2)
                rk = f"{name}/{regime}"
                results[rk] = {
                    "dataset": name, "regime": regime, "n_train": len(train), "n_train_full": len(train_full), "n_test": len(test),
                    "n_classes": k, "n_flipped": int(flipped.sum()),
                    "n_label_issues_flagged": int(np.nansum(scores["is_label_issue"])),
                    "n_label_issues_flagged_recipe": int(np.nansum(scores["rec_is_label_issue"])),
                    "flipped_among_flagged": int(np.sum(flipped & (np.nan_to_num(scores["is_label_issue"]) > 0.5))),
                    "flipped_among_flagged_recipe": int(np.sum(flipped & (np.nan_to_num(scores["rec_is_label_issue"]) > 0.5))),
                    "n_semdedup_duplicates": int(np.nansum(scores["dd_semdedup_duplicate"])),
                    "curves": by_probe["mlp"], "curves_by_probe": by_probe,
                }
                pngname = f"{base}{suffix}_{name}_{regime}.png"
                plot(by_probe["mlp"], f"{name} ({regime}, {len(train)} train rows, MLP probe)", common.RESULTS / pngname)
                png[rk] = f"benchmarks/results/{pngname}"
    payload = {
        "train_rows": n_train or "all", "test_rows": n_test or "all", "fractions": FRACTIONS, "seeds": SEEDS, "random_seeds": RANDOM_SEEDS,
        "noise_rate": NOISE, "dbp_clusters": DBP_CLUSTERS, "methods": METHODS, "new_methods": sorted(NEW), "not_run": not_run,
        "probes": PROBES, "training": TRAIN, "timings": timings, "results": results, "plots": png,
        "loadavg_at_start": list(os.getloadavg()), "readme_title": HELDOUT_TITLE if args.heldout else TITLE,
    }
    payload = finish(payload, args.quick)
    path = common.write_result(base, payload, quick=args.quick, threads=threads, started=started)
    print("wrote", path)


if __name__ == "__main__":
    main()
