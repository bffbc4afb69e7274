"""Label-noise detection benchmark (issues 6, 11): SST-2 and Banking77 train sets, 10/20/30 % seeded flips.

Detectors, all on the bundled-MiniLM embeddings (cached on disk):
  cleanlab_anchor  plain `cleanlab.filter.find_label_issues(labels, pred_probs)` (its defaults) on the
                   5-fold out-of-sample probabilities of ONE logistic model (`ProxyClassifier`,
                   n_seeds=1): what a user of cleanlab alone would run.
  confident_learning  the project's `confident_learning` scorer (defaults: 5 fold models, `is_label_issue`);
                   ranking score 1 - label_quality.
  el2n             the project's `el2n` scorer (in-sample, S=5, E=10); flags = the top k rows with
                   k = the true number of flipped rows (so precision = recall = F1 = precision@k).
  quadrants        the `eu_quadrants` scorer + the `quadrants` policy at keep = 1 - noise rate;
                   flags = the rows it drops (AUROC of a binary flag = balanced accuracy).
  combined         the project's combined cleaning rule, built from library policies:
                   `drop_label_issues` flags UNION `threshold(el2n, max=1.0)` drops (el2n > 1.0 means
                   roughly p[given label] < 0.3 on 2 classes); ranking score = mean of the
                   percentile ranks of (1 - label_quality) and el2n.
  text_blend       one pass of the library's `confident_learning` scorer with `text_features: true`
                   (embedding proxy blended 0.5 / 0.25 / 0.25 with TF-IDF word and character logistic
                   models, out-of-sample on the same 5 folds) and `filter_by: low_self_confidence`
                   (cleanlab's own estimate of the number of issues, lowest self-confidence first).
  refit_clean      the issue-11 detector: `text_blend` with `issue_count: mean` (the mean of
                   cleanlab's two issue-count estimators) and `refit_clean: true` (every model trained
                   again without the rows the first pass flags, then detection again).
                   Neither is told the noise rate.

Run:  .venv/bin/python benchmarks/noise_detection.py [--quick] [--rates 0.1,0.2,0.3] [--datasets sst2,banking77]
Writes benchmarks/results/noise_detection.json (quick: noise_detection_quick.json).

Held-out check: `--heldout` measures the same detectors at 20 % noise on TREC and SMS spam (loaders in
common.py), datasets never used to choose the detector or its defaults, into noise_detection_heldout.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

import numpy as np  # noqa: E402

from datapruner.selection.recipes import LABEL_NOISE_DETECTOR  # noqa: E402

EL2N_THRESHOLD = 1.0
#: The issue-11 detector's `confident_learning` params: the recommended recipe's (docs/training-scores.md).
DETECTOR_PARAMS = LABEL_NOISE_DETECTOR
GOAL_DETECTOR = "refit_clean"
DATASETS = ("sst2", "banking77")
# --heldout: datasets never used to choose the detector or its defaults; into noise_detection_heldout.json
HELDOUT_DATASETS = ("trec", "sms_spam")
TITLE = "Label-noise detection (`benchmarks/noise_detection.py`)"
HELDOUT_TITLE = "Label-noise detection on held-out datasets: TREC and SMS spam (`benchmarks/noise_detection.py --heldout`)"


def auroc(score: np.ndarray, truth: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    score = np.nan_to_num(np.asarray(score, dtype=np.float64), nan=np.nanmin(score))
    return float(roc_auc_score(truth, score))


def pct_rank(x: np.ndarray) -> np.ndarray:
    order = np.argsort(np.argsort(x, kind="stable"), kind="stable")
    return order / max(len(x) - 1, 1)


def run_one(name: str, train: common.Split, emb: np.ndarray, *, rate: float, random_state: int, work: Path, threads: int) -> dict:
    import cleanlab.filter
    from datapruner.curation.proxy import ProxyClassifier

    k = len(train.names)
    noisy, flipped = common.inject_label_noise(train.labels, rate, k, random_state)
    path = common.write_parquet(work / f"{name}_{rate}.parquet", train.texts, noisy, train.names)
    t0 = time.perf_counter()
    scores = common.score_with_library(
        path,
        [{"name": "confident_learning"}, {"name": "el2n"}, {"name": "eu_quadrants"}],
        work / f"out_{name}_{rate}",
        threads=threads,
    )
    lib_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    blend = common.score_with_library(
        path, [{"name": "confident_learning", "params": {"text_features": True, "filter_by": "low_self_confidence"}}],
        work / f"out_blend_{name}_{rate}", threads=threads,
    )
    blend_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    refit = common.score_with_library(
        path, [{"name": "confident_learning", "params": DETECTOR_PARAMS}], work / f"out_refit_{name}_{rate}", threads=threads,
    )
    refit_s = time.perf_counter() - t0
    # labels in the scores are the library's own encoding (sorted names) = ours (sorted names)
    t0 = time.perf_counter()
    anchor_pp = ProxyClassifier(n_seeds=1, random_state=0).fit(emb, noisy, n_classes=k).pred_probs_
    anchor_flags = np.asarray(cleanlab.filter.find_label_issues(noisy, anchor_pp))
    anchor_s = time.perf_counter() - t0
    anchor_score = 1.0 - anchor_pp[np.arange(len(noisy)), noisy]

    n_flip = int(flipped.sum())
    lq = scores["label_quality"]
    el2n = scores["el2n"]
    cl_flags = np.asarray(scores["is_label_issue"], dtype=np.float64) > 0.5
    top = np.zeros(len(el2n), dtype=bool)
    top[np.argsort(-el2n, kind="stable")[:n_flip]] = True
    quad_keep = common.select(scores, [{"policy": "quadrants", "keep": 1.0 - rate}])
    quad_flags = ~quad_keep
    combined_flags = ~common.select(scores, [{"policy": "drop_label_issues"}]) | ~common.select(
        scores, [{"policy": "threshold", "score": "el2n", "max": EL2N_THRESHOLD}]
    )
    combined_score = 0.5 * (pct_rank(1.0 - lq) + pct_rank(el2n))
    detectors = {
        "cleanlab_anchor": {**common.prf(anchor_flags, flipped), "auroc": auroc(anchor_score, flipped)},
        "confident_learning": {**common.prf(cl_flags, flipped), "auroc": auroc(1.0 - lq, flipped)},
        "el2n": {**common.prf(top, flipped), "auroc": auroc(el2n, flipped)},
        "quadrants": {**common.prf(quad_flags, flipped), "auroc": auroc(quad_flags.astype(float), flipped)},
        "combined": {**common.prf(combined_flags, flipped), "auroc": auroc(combined_score, flipped)},
        "text_blend": {**common.prf(np.asarray(blend["is_label_issue"], dtype=np.float64) > 0.5, flipped), "auroc": auroc(1.0 - blend["label_quality"], flipped)},
        "refit_clean": {**common.prf(np.asarray(refit["is_label_issue"], dtype=np.float64) > 0.5, flipped), "auroc": auroc(1.0 - refit["label_quality"], flipped)},
    }
    return {
        "dataset": name,
        "noise_rate": rate,
        "n_train": len(noisy),
        "n_flipped": n_flip,
        "seconds": {"library_scoring": round(lib_s, 2), "anchor": round(anchor_s, 2), "text_blend": round(blend_s, 2),
                    "refit_clean": round(refit_s, 2)},
        "detectors": detectors,
    }


def readme(rows: list[dict], note: str, not_run: dict[str, str], title: str = TITLE) -> dict:
    lines = [
        note,
        "",
        f"Issue-11 goal: F1 of `{GOAL_DETECTOR}` at least plain cleanlab (`cleanlab_anchor`) + 0.05 at 20 % noise:",
        "",
        f"| dataset | noise | cleanlab_anchor F1 | {GOAL_DETECTOR} F1 | difference | goal met |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        if GOAL_DETECTOR not in r["detectors"]:
            lines.append(f"| {r['dataset']} | {int(r['noise_rate'] * 100)}% | not run (this row predates the `{GOAL_DETECTOR}` detector) | | | |")
            continue
        a, b = r["detectors"]["cleanlab_anchor"]["f1"], r["detectors"][GOAL_DETECTOR]["f1"]
        met = "yes" if b >= a + 0.05 else f"no (missed by {a + 0.05 - b:.3f})"
        lines.append(f"| {r['dataset']} | {int(r['noise_rate'] * 100)}% | {a:.3f} | {b:.3f} | {b - a:+.3f} | "
                     f"{met if abs(r['noise_rate'] - 0.2) < 1e-9 else '(not a goal cell)'} |")
    lines += [f"| {name} | 20% | not run ({why}) | | | |" for name, why in not_run.items()]
    lines += [
        "",
        "All detectors:",
        "",
        "| dataset | noise | detector | precision | recall | F1 | AUROC |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        for det, m in r["detectors"].items():
            lines.append(
                f"| {r['dataset']} | {int(r['noise_rate'] * 100)}% | {det} | {m['precision']:.3f} | {m['recall']:.3f} | {m['f1']:.3f} | {m['auroc']:.3f} |"
            )
    return common.readme_block(title, "\n".join(lines))


def make_note(train_rows, rates: list[float]) -> str:
    size = {"all": "all rows", "quick:400": "400-row quick slice"}.get(train_rows, f"{train_rows}-row subsample")
    return (
        f"Seeded label flips in the train sets ({size}); "
        "MiniLM embeddings, logistic proxies. `el2n` flags its top-k rows with k = the true number of flips "
        "(precision = recall = F1); `quadrants` flags the rows the quadrant policy drops at keep = 1 - noise "
        f"(AUROC of a binary flag); `combined` = confident-learning flags OR el2n > {EL2N_THRESHOLD}; "
        "`cleanlab_anchor` = plain `cleanlab.filter.find_label_issues` on one 5-fold logistic model; "
        "`text_blend` = `confident_learning` with `text_features: true, filter_by: low_self_confidence`; "
        "`refit_clean` = the issue-11 detector, `text_blend` with `issue_count: mean, refit_clean: true`; neither is "
        f"told the noise rate. Noise rates measured: {', '.join(f'{int(r * 100)} %' for r in rates)}."
    )


def finish(payload: dict) -> None:
    """The README block from the measured rows; a dataset without a row is listed as not run (also used by --replot)."""
    measured = {r["dataset"] for r in payload["results"]}
    load = payload.get("loadavg_at_end", os.getloadavg())[0]
    payload["not_run"] = {name: f"not measured on the full set in this session's CPU time (a shared 2-core machine at load average "
                                f"{load:.0f}); `--datasets {name}` runs it"
                         for name in payload.get("datasets_planned", DATASETS) if name not in measured}
    rates = sorted({r["noise_rate"] for r in payload["results"]})
    payload["readme"] = readme(payload["results"], make_note(payload["train_rows"], rates), payload["not_run"],
                               payload.get("readme_title", TITLE))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="400 train rows per dataset, 20%% noise only")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--train-rows", type=int, default=None, help="subsample the train sets (default: all rows)")
    ap.add_argument("--replot", action="store_true", help="rebuild the README block from the results JSON (no recomputation)")
    ap.add_argument("--datasets", default=",".join(DATASETS), help="datasets to measure (default sst2,banking77)")
    ap.add_argument("--rates", default="0.1,0.2,0.3", help="noise rates (default 0.1,0.2,0.3; --quick and --heldout: 0.2)")
    ap.add_argument("--heldout", action="store_true", help=f"datasets {','.join(HELDOUT_DATASETS)} at 20 %% noise, into "
                                                            "noise_detection_heldout.json (sets --datasets and --rates)")
    args = ap.parse_args(argv)
    base = "noise_detection_heldout" if args.heldout else "noise_detection"
    if args.heldout:
        args.datasets, args.rates = ",".join(HELDOUT_DATASETS), "0.2"
    if args.replot:
        path = common.RESULTS / (f"{base}_quick.json" if args.quick else f"{base}.json")
        payload = json.loads(path.read_text())
        finish(payload)
        path.write_text(json.dumps(payload, indent=1))
        return
    threads = common.set_threads(args.threads)
    started = common.now()
    rates = [0.2] if args.quick else [float(r) for r in args.rates.split(",")]
    size = 400 if args.quick else args.train_rows
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.datasets.split(","):
            train, _ = common.load_classification(name)
            train = train.take(common.subsample(len(train), size, random_state=0))
            emb = common.embed_texts(train.texts)
            for rate in rates:
                r = run_one(name, train, emb, rate=rate, random_state=100 + round(rate * 10) - 1, work=Path(tmp), threads=threads)
                rows.append(r)
                print(name, rate, {d: round(m["f1"], 3) for d, m in r["detectors"].items()}, flush=True)
    payload = {
        "train_rows": "quick:400" if args.quick else ("all" if size is None else size),
        "el2n_threshold_combined": EL2N_THRESHOLD,
        "results": rows,
        "loadavg_at_end": list(os.getloadavg()),
        "datasets_planned": args.datasets.split(","), "readme_title": HELDOUT_TITLE if args.heldout else TITLE,
    }
    finish(payload)
    path = common.write_result(base, payload, quick=args.quick, threads=threads, started=started)
    print("wrote", path)


if __name__ == "__main__":
    main()
