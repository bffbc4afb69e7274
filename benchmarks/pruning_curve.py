"""Data-pruning quality benchmark (issue 6): accuracy against keep fraction on SST-2 and Banking77.

Downstream model: an MLP (384 -> 256 -> K, ReLU, AdamW lr 1e-3, wd 1e-4, batch 128, 20 epochs and at
least 150 steps) on frozen bundled-MiniLM embeddings, trained on the kept rows with 3 seeds and
evaluated on the full clean test set. Regimes: clean labels, and 20 % seeded label flips in the train
set (the test set stays clean).

Every score is computed ONCE per dataset and regime with the library's scorers (through
`datapruner.pipelines.curate.score`), cached on disk under `<DATAPRUNER_CACHE>/benchmarks/`, and
every selection is made by the library's policies (`datapruner.selection.make_policy` +
`apply_policies`) at each keep fraction. Perplexity does not depend on labels: one run per dataset.

Methods (policy chains; f = keep fraction of the N train rows):
  random                 seeded random subset (a different subset per seed; error bars)
  el2n_hard              top_fraction(el2n, keep f, high)
  el2n_hard_offset       top_fraction(el2n, keep f, high, offset min(0.1, 1 - f))
  el2n_easy              top_fraction(el2n, keep f, low)                      [extra: easy first]
  el2n_easy_balanced     cluster_quota over the label classes, uniform weights, easiest EL2N first
                         (equal per-class quotas by the library's water-filling) [extra: class-balanced]
  grand                  top_fraction(grand, keep f, high); GraNd at initialisation (the paper's)
  proto_hard / proto_easy  prototypes(keep f, prefer hard / easy), k = number of classes
  dbp                    density scorer (k = 20 clusters) + cluster_quota(keep f)
  semdedup_dbp           semdedup (eps 0.01) -> density on the survivors -> drop_flagged -> cluster_quota
  ppl_middle             band(perplexity, keep f, middle) under the bundled SmolLM2-135M
  cl_el2n                drop_label_issues -> top_fraction(el2n, high) on the survivors
  quadrants              eu_quadrants scorer + quadrants(keep f)
For chains that drop rows first, the second policy's keep is f N / survivors (capped at 1), so the
total budget is f N whenever enough rows survive; `n_kept` records what was actually kept.

Run:  .venv/bin/python benchmarks/pruning_curve.py [--quick] [--train-rows N]
Writes benchmarks/results/pruning_curve.json and pruning_curve_<dataset>_<regime>.png
(quick: *_quick.json / *_quick_*.png).
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

import numpy as np  # noqa: E402

FRACTIONS = [0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 1.0]
SEEDS = [0, 1, 2]
MLP: dict = {}  # --quick: fewer epochs
NOISE = 0.2
DBP_CLUSTERS = 20
METHODS = [
    "random", "el2n_hard", "el2n_hard_offset", "el2n_easy", "el2n_easy_balanced", "grand",
    "proto_hard", "proto_easy", "dbp", "semdedup_dbp", "ppl_middle", "cl_el2n", "quadrants",
]
EXTRA = {"el2n_easy", "el2n_easy_balanced"}  # not in the list; added to show what wins at low keep


# ---- downstream model ------------------------------------------------------------------------------
def train_eval(x_tr, y_tr, x_te, y_te, *, n_classes: int, random_state: int, epochs: int = 20, min_steps: int = 150) -> float:
    import torch

    g = torch.Generator().manual_seed(random_state)
    torch.manual_seed(random_state)
    model = torch.nn.Sequential(torch.nn.Linear(x_tr.shape[1], 256), torch.nn.ReLU(), torch.nn.Linear(256, n_classes))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4)
    X, Y = torch.from_numpy(x_tr), torch.from_numpy(y_tr)
    n, bs = len(X), 128
    steps_per_epoch = max(1, -(-n // bs))
    n_epochs = max(epochs, -(-min_steps // steps_per_epoch))
    model.train()
    for _ in range(n_epochs):
        perm = torch.randperm(n, generator=g)
        for s in range(0, n, bs):
            idx = perm[s : s + bs]
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(X[idx]), Y[idx]).backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        pred = model(torch.from_numpy(x_te)).argmax(1).numpy()
    return float((pred == y_te).mean())


# ---- selection -------------------------------------------------------------------------------------
def chain_keep(scores, first: list[dict], second, f: float, n: int) -> np.ndarray:
    """Run `first`, then `second(keep)` on the survivors with keep = f n / survivors (capped at 1)."""
    alive = common.select(scores, first)
    inner = min(1.0, f * n / max(int(alive.sum()), 1))
    return common.select(scores, first + [second(inner)])


def selections(method: str, scores: dict, f: float, n: int) -> np.ndarray:
    off = min(0.1, round(1.0 - f, 6))
    specs = {
        "el2n_hard": [{"policy": "top_fraction", "score": "el2n", "keep": f, "direction": "high"}],
        "el2n_hard_offset": [{"policy": "top_fraction", "score": "el2n", "keep": f, "direction": "high", "offset": off}],
        "el2n_easy": [{"policy": "top_fraction", "score": "el2n", "keep": f, "direction": "low"}],
        "el2n_easy_balanced": [{"policy": "cluster_quota", "keep": f, "cluster": "label_class", "weight": "uniform_weight", "score": "neg_el2n"}],
        "grand": [{"policy": "top_fraction", "score": "grand", "keep": f, "direction": "high"}],
        "proto_hard": [{"policy": "prototypes", "keep": f, "prefer": "hard"}],
        "proto_easy": [{"policy": "prototypes", "keep": f, "prefer": "easy"}],
        "dbp": [{"policy": "cluster_quota", "keep": f}],
        "ppl_middle": [{"policy": "band", "score": "perplexity", "keep": f, "band": "middle"}],
        "quadrants": [{"policy": "quadrants", "keep": f}],
    }
    if method in specs:
        return common.select(scores, specs[method])
    if method == "semdedup_dbp":
        return chain_keep(
            scores, [{"policy": "drop_flagged", "score": "dd_semdedup_duplicate"}],
            lambda k: {"policy": "cluster_quota", "keep": k, "cluster": "dd_dbp_cluster", "score": "dd_dbp_distance", "weight": "dd_dbp_weight"},
            f, n,
        )
    if method == "cl_el2n":
        return chain_keep(
            scores, [{"policy": "drop_label_issues"}],
            lambda k: {"policy": "top_fraction", "score": "el2n", "keep": k, "direction": "high"}, f, n,
        )
    raise ValueError(method)


# ---- scores ----------------------------------------------------------------------------------------
def compute_scores(name: str, regime: str, train: common.Split, *, labels: np.ndarray, key: str, work: Path, threads: int, ppl: np.ndarray) -> dict:
    path = common.write_parquet(work / f"{name}_{regime}.parquet", train.texts, labels, train.names)
    timings = {}
    t0 = time.perf_counter()
    main = common.score_with_library(
        path,
        [
            {"name": "confident_learning"},
            {"name": "el2n"},
            {"name": "grand"},
            {"name": "eu_quadrants"},
            {"name": "prototypicality"},
            {"name": "density", "params": {"n_clusters": DBP_CLUSTERS}},
        ],
        work / f"out_{name}_{regime}",
        threads=threads,
        cache_name=f"pruning_{key}_{regime}_main",
    )
    timings["main_scorers_s"] = round(time.perf_counter() - t0, 2)
    t0 = time.perf_counter()
    dedup = common.score_with_library(
        path,
        [{"name": "semdedup", "params": {"eps": 0.01}}, {"name": "density", "params": {"n_clusters": DBP_CLUSTERS}}],
        work / f"out_dd_{name}_{regime}",
        threads=threads,
        cache_name=f"pruning_{key}_{regime}_dedup",
    )
    timings["semdedup_dbp_scorers_s"] = round(time.perf_counter() - t0, 2)
    scores = dict(main)
    scores.update({f"dd_{k}": v for k, v in dedup.items()})
    scores["perplexity"] = ppl
    scores["label_class"] = labels.astype(np.float64)
    scores["uniform_weight"] = np.full(len(labels), 1.0 / len(train.names))
    scores["neg_el2n"] = -scores["el2n"]
    return scores, timings


def perplexity_scores(name: str, train: common.Split, key: str, work: Path, threads: int) -> tuple[np.ndarray, float]:
    path = common.write_parquet(work / f"{name}_ppl.parquet", train.texts)
    t0 = time.perf_counter()
    s = common.score_with_library(path, [{"name": "perplexity"}], work / f"out_ppl_{name}", threads=threads, label=False, cache_name=f"pruning_{key}_perplexity")
    return s["perplexity"], time.perf_counter() - t0


# ---- report ----------------------------------------------------------------------------------------
def plot(curves: dict, title: str, path: Path) -> None:
    plt = common.plt()
    fig, ax = plt.subplots(figsize=(8, 5.5))
    xs = [int(f * 100) for f in FRACTIONS]
    colors = dict(zip(METHODS[1:], plt.cm.tab20(np.linspace(0, 1, len(METHODS) - 1))))
    for method in METHODS:
        c = curves[method]
        mean = [c[str(f)]["mean"] for f in FRACTIONS]
        if method == "random":
            ax.errorbar(xs, mean, yerr=[c[str(f)]["std"] for f in FRACTIONS], color="black", lw=2.5, capsize=4, label="random (±1 sd, 3 seeds)", zorder=5)
        else:
            ax.plot(xs, mean, marker="o", ms=3, lw=1.2, label=method, ls="--" if method in EXTRA else "-", color=colors[method])
    ax.set_xlabel("keep fraction (%)")
    ax.set_ylabel("test accuracy (mean of 3 MLP seeds)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def headline(results: dict) -> dict:
    table = {}
    for key, r in results.items():
        curves = r["curves"]
        rows = {}
        for m in METHODS:
            rows[m] = {
                f"delta_{int(f * 100)}": curves[m][str(f)]["mean"] - curves["random"][str(f)]["mean"] for f in (0.3, 0.5)
            }
            rows[m].update({f"acc_{int(f * 100)}": curves[m][str(f)]["mean"] for f in (0.3, 0.5)})
        full = curves["random"]["1.0"]["mean"]
        best = max(((curves[m][str(f)]["mean"], m, f) for m in METHODS for f in FRACTIONS if f < 1.0 or m in ("cl_el2n", "semdedup_dbp")))
        table[key] = {"methods": rows, "full_data_accuracy": full, "best": {"method": best[1], "keep": best[2], "accuracy": best[0], "minus_full": best[0] - full}}
    return table


def make_note(quick: bool, n_train, n_seeds: int) -> str:
    sub = "quick slice: 240 train / 200 test rows, 10 epochs" if quick else (
        "all train rows" if n_train is None else f"a seeded subsample of {n_train} train rows per dataset (perplexity under SmolLM2 and 3-seed MLPs on all rows did not fit the time budget on 2 shared cores); full test sets")
    return (
        f"MLP on frozen MiniLM embeddings, mean of {n_seeds} seeds; {sub}; noise20 = 20 % seeded label flips in train, clean test. "
        "Scores computed once per dataset/regime with the library's scorers, selections by the library's policies. "
        "`(extra)` rows are easy-first / class-balanced policies added to test what wins at low keep."
    )


def readme(results: dict, head: dict, note: str, png: dict) -> dict:
    keys = list(results)
    lines = [note, "", "Accuracy minus random at the same keep fraction (positive = better than random):", ""]
    lines.append("| method | " + " | ".join(f"{k} @30%" + " | " + f"{k} @50%" for k in keys) + " |")
    lines.append("|---|" + "---|" * (2 * len(keys)))
    for m in METHODS:
        cells = []
        for k in keys:
            d = head[k]["methods"][m]
            cells += [common.fmt(d["delta_30"], signed=True), common.fmt(d["delta_50"], signed=True)]
        lines.append(f"| {m}{' (extra)' if m in EXTRA else ''} | " + " | ".join(cells) + " |")
    lines.append("| *random (absolute)* | " + " | ".join(
        f"{results[k]['curves']['random']['0.3']['mean']:.3f} | {results[k]['curves']['random']['0.5']['mean']:.3f}" for k in keys) + " |")
    lines += ["", "Best selection against training on all rows of the same regime:", "",
              "| dataset / regime | full-data accuracy | best method | keep | accuracy | best minus full |", "|---|---|---|---|---|---|"]
    for k in keys:
        b = head[k]["best"]
        lines.append(f"| {k} | {head[k]['full_data_accuracy']:.3f} | {b['method']} | {int(b['keep'] * 100)}% | {b['accuracy']:.3f} | {b['minus_full']:+.3f} |")
    lines += ["", "Where selection loses to random (mean accuracy below random's mean minus 2 sd at the same keep):", ""]
    for m in METHODS[1:]:
        losses = []
        for k in keys:
            c, r = results[k]["curves"][m], results[k]["curves"]["random"]
            bad = [f for f in map(float, c) if f < 1.0 and c[str(f)]["mean"] < r[str(f)]["mean"] - 2 * r[str(f)]["std"]]
            if bad:
                worst = min(bad, key=lambda f: c[str(f)]["mean"] - r[str(f)]["mean"])
                losses.append(f"{k} at {', '.join(f'{int(f * 100)}%' for f in bad)} (worst {c[str(worst)]['mean'] - r[str(worst)]['mean']:+.3f} at {int(worst * 100)}%)")
        if losses:
            lines.append(f"- `{m}`: " + "; ".join(losses))
    lines += [""] + [f"![{k}]({p})" for k, p in png.items()]
    return common.readme_block("Data pruning: accuracy against keep fraction (`benchmarks/pruning_curve.py`)", "\n".join(lines))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="240 train / 200 test rows per dataset, 1 seed, 10 epochs, keep 30/50/100%%")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--train-rows", type=int, default=1500, help="seeded train subsample per dataset (0 = all rows; default 1500)")
    ap.add_argument("--datasets", default="sst2,banking77")
    ap.add_argument("--replot", action="store_true", help="redraw the PNGs from the existing results JSON (no recomputation)")
    args = ap.parse_args(argv)
    global FRACTIONS, SEEDS, MLP
    if args.replot:
        import json

        d = json.loads((common.RESULTS / ("pruning_curve_quick.json" if args.quick else "pruning_curve.json")).read_text())
        FRACTIONS[:] = d["fractions"]
        for key, r in d["results"].items():
            plot(r["curves"], f"{r['dataset']} ({r['regime']}, {r['n_train']} train rows)", common.RESULTS / Path(d["plots"][key]).name)
        # the README block is a pure function of the measured curves: rebuild it with this code
        d["headline"] = headline(d["results"])
        n_train = None if d["train_rows"] == "all" else d["train_rows"]
        d["readme"] = readme(d["results"], d["headline"], make_note(args.quick, n_train, len(d["seeds"])), d["plots"])
        d["readme_rebuilt_utc"] = common.now()
        (common.RESULTS / ("pruning_curve_quick.json" if args.quick else "pruning_curve.json")).write_text(json.dumps(d, indent=1))
        return
    threads = common.set_threads(args.threads)
    started = common.now()
    if args.quick:
        FRACTIONS, SEEDS, MLP = [0.3, 0.5, 1.0], [0], {"epochs": 10, "min_steps": 40}
    n_train = 240 if args.quick else (args.train_rows or None)
    n_test = 200 if args.quick else None
    suffix = "_quick" if args.quick else ""
    results, timings, png = {}, {}, {}
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
            ppl, ppl_s = perplexity_scores(name, train, key, work, threads)
            timings[f"{name}_perplexity_s"] = round(ppl_s, 2)
            for regime in ("clean", "noise20"):
                if regime == "clean":
                    labels, flipped = train.labels, np.zeros(len(train), dtype=bool)
                else:
                    labels, flipped = common.inject_label_noise(train.labels, NOISE, k, random_state=7)
                scores, t = compute_scores(name, regime, train, labels=labels, key=key, work=work, threads=threads, ppl=ppl)
                timings[f"{name}_{regime}"] = t
                t0 = time.perf_counter()
                memo: dict[bytes, float] = {}
                curves = {}
                for method in METHODS:
                    curves[method] = {}
                    for f in FRACTIONS:
                        accs, kept_n, kept_flipped = [], [], []
                        for seed in SEEDS:
                            if method == "random":
                                keep = np.zeros(len(train), dtype=bool)
                                keep[np.random.default_rng(1000 + seed).choice(len(train), max(1, int(np.floor(f * len(train) + 0.5))), replace=False)] = True
                            elif seed == SEEDS[0]:
                                keep = selections(method, scores, f, len(train))
                            memo_key = hashlib.sha1(keep.tobytes() + bytes([seed])).digest()
                            if memo_key not in memo:
                                rows = np.flatnonzero(keep)
                                memo[memo_key] = train_eval(x_tr[rows], labels[rows], x_te, test.labels, n_classes=k, random_state=seed, **MLP)
                            accs.append(memo[memo_key])
                            kept_n.append(int(keep.sum()))
                            kept_flipped.append(float(flipped[keep].mean()) if keep.any() else 0.0)
                        curves[method][str(f)] = {
                            "mean": float(np.mean(accs)), "std": float(np.std(accs)), "per_seed": accs,
                            "n_kept": int(np.mean(kept_n)), "share_flipped_in_kept": float(np.mean(kept_flipped)),
                        }
                    print(name, regime, method, {f: round(curves[method][str(f)]["mean"], 3) for f in FRACTIONS}, flush=True)
                timings[f"{name}_{regime}"]["train_eval_s"] = round(time.perf_counter() - t0, 2)
                rk = f"{name}/{regime}"
                results[rk] = {
                    "dataset": name, "regime": regime, "n_train": len(train), "n_train_full": len(train_full), "n_test": len(test),
                    "n_classes": k, "n_flipped": int(flipped.sum()),
                    "n_label_issues_flagged": int(np.nansum(scores["is_label_issue"])),
                    "n_semdedup_duplicates": int(np.nansum(scores["dd_semdedup_duplicate"])),
                    "curves": curves,
                }
                pngname = f"pruning_curve{suffix}_{name}_{regime}.png"
                plot(curves, f"{name} ({regime}, {len(train)} train rows)", common.RESULTS / pngname)
                png[rk] = f"benchmarks/results/{pngname}"
    head = headline(results)
    note = make_note(args.quick, n_train, len(SEEDS))
    payload = {
        "train_rows": n_train or "all", "test_rows": n_test or "all", "fractions": FRACTIONS, "seeds": SEEDS, "noise_rate": NOISE,
        "dbp_clusters": DBP_CLUSTERS, "methods": METHODS, "extra_methods": sorted(EXTRA),
        "downstream": "MLP 384-256-K, AdamW lr 1e-3 wd 1e-4, batch 128, 20 epochs (>= 150 steps)",
        "timings": timings, "results": results, "headline": head, "plots": png,
        "readme": readme(results, head, note, png),
    }
    path = common.write_result("pruning_curve", payload, quick=args.quick, threads=threads, started=started)
    print("wrote", path)


if __name__ == "__main__":
    main()
