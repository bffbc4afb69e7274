"""Scale benchmark (issue 13): perplexity against a bare forward pass, the curation pipeline at
100k / 1M / 10M rows, and the same 1M-row job on the local engine and on Ray.

Parts (each run with ``--part``; results merge into one benchmarks/results/scale.json, and a part
not run yet says so in the README block):

perplexity  Real SST-2 train texts, one process, the same threads. Rounds interleaved (each round
            runs the three in turn, so a change of load hits all three alike):
            (a) floor: a bare forward pass of the bundled SmolLM2 (`model(input_ids, mask)`) over
                the texts' tokens, sorted by length and cut into the library's token-budget
                batches, tensors built before the clock starts;
            (b) the pipeline's perplexity scoring (`score_dataset` with the `perplexity` scorer,
                an empty per-row cache each time): tokenising, batching, forward, NLL, columns;
            (c) the former NLL path for reference: the same batches as (a) plus a full
                log-softmax and a gather. Ratio = (a) seconds / (b) seconds (same tokens) in each
            round; reported: the median over the rounds with its min..max spread.
sizes       `curate` on synthetic short texts whose embeddings are served from a pre-populated
            on-disk cache (as benchmarks/memory.py does, but SYNTHETIC_DIM = 64-d float16 vectors, not
            MiniLM's 384: the pipeline reads them through the same cache reader, and with embeddings
            read a block at a time the resident memory does not depend on the width, while making
            and clustering 10M x 384 vectors overran any bound on a shared 2-core machine; the wall
            times are therefore those of 64-d clustering): text_stats, prototypicality, density
            (k = 100), cluster_quota 50 %; each size in a fresh subprocess whose resident memory
            is polled and which is stopped above `--rss-cap-gib` (recorded, never swapped into).
            SemDeDup is left out: its within-cluster pairwise pass at k = 100 is quadratic in the
            cluster size (10^5 rows per cluster at 10M), which no 10-minute budget covers.
ray         The 1M-row job of `sizes` on the local engine, then on a local Ray cluster of 2 CPUs
            with 1 and with 2 workers (`ray.concurrency`), then local again, each in a fresh
            subprocess (no finished step reused): wall time and stage times, ratio to the faster
            local run, and whether the kept ids are identical.

Run:  nice .venv/bin/python benchmarks/scale.py --part perplexity|sizes|ray [--quick]
Writes benchmarks/results/scale.json (quick: scale_quick.json, small sizes).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

import numpy as np  # noqa: E402

N_CLUSTERS = 100
SYNTHETIC_DIM = 64  # width of the synthetic cached embeddings (see the module docstring)
SCALE_SCORERS = [
    {"name": "text_stats"},
    {"name": "prototypicality", "params": {"n_clusters": N_CLUSTERS}},
    {"name": "density", "params": {"n_clusters": N_CLUSTERS}},
]
SCALE_SELECTION = [{"policy": "cluster_quota", "keep": 0.5}]
README_TITLE = "Scale: perplexity against a bare forward pass, 100k-10M rows, local engine against Ray (`benchmarks/scale.py`)"
RAY_GOAL = 1.3  # issue 13: Ray on 2 workers of a 2-core machine at most 1.3x the local engine


# ---- perplexity ------------------------------------------------------------------------------
def perplexity_part(n_texts: int, threads: int, n_rounds: int = 3) -> dict:
    import torch

    from datapruner.models import CausalLM
    from datapruner.pipelines.curate import score_dataset
    from datapruner.config import config_from_dict

    train, _ = common.load_classification("sst2")
    texts = [t for t in train.texts[:n_texts]]
    lm = CausalLM()
    lm.token_stats(texts[:4])  # load + warm up
    ids, _, _ = lm.encode(texts)
    lengths = np.array([len(x) for x in ids])
    batches = [(x, m) for _, x, m in lm.padded_batches(ids)]
    model = lm.model

    def floor() -> float:
        t = time.perf_counter()
        with torch.inference_mode():
            for x, m in batches:
                model(input_ids=x, attention_mask=m)
        return time.perf_counter() - t

    def former_path() -> float:
        t = time.perf_counter()
        with torch.inference_mode():
            for x, m in batches:
                logp = torch.log_softmax(model(input_ids=x, attention_mask=m).logits[:, :-1].float(), dim=-1)
                logp.gather(-1, x[:, 1:].unsqueeze(-1))
        return time.perf_counter() - t

    work = Path(tempfile.mkdtemp(prefix="dp-scale-ppl-"))
    data = common.write_parquet(work / "texts.parquet", texts)
    models_dir = Path(os.environ.get("DATAPRUNER_CACHE", Path.home() / ".cache" / "datapruner")) / "models"

    def pipeline(k: int) -> float:
        cache = work / f"cache-{k}"  # an empty per-row cache: every row goes through the LM
        cache.mkdir()
        if models_dir.exists():
            (cache / "models").symlink_to(models_dir)
        old = os.environ.get("DATAPRUNER_CACHE")
        os.environ["DATAPRUNER_CACHE"] = str(cache)
        try:
            cfg = config_from_dict({
                "input": {"path": str(data), "columns": {"text": "text"}, "batch_size": 1024},
                "output": {"dir": str(work / f"out-{k}"), "plots": False}, "models": {"threads": threads},
                "scorers": [{"name": "perplexity"}], "selection": [],
            })
            t = time.perf_counter()
            scored = score_dataset(cfg)
            elapsed = time.perf_counter() - t
            assert int(scored.view.scores["ppl_tokens"].sum()) == int((lengths - 1).sum())
            return elapsed
        finally:
            if old is None:
                os.environ.pop("DATAPRUNER_CACHE")
            else:
                os.environ["DATAPRUNER_CACHE"] = old

    rounds = []
    for k in range(n_rounds):
        r = {"floor_s": floor(), "pipeline_s": pipeline(k), "former_path_s": former_path(), "loadavg": list(os.getloadavg())}
        r["ratio_pipeline_over_floor"] = r["floor_s"] / r["pipeline_s"]
        r["ratio_former_path_over_floor"] = r["floor_s"] / r["former_path_s"]
        rounds.append(r)
    shutil.rmtree(work, ignore_errors=True)
    best = {key: min(r[key] for r in rounds) for key in ("floor_s", "pipeline_s", "former_path_s")}
    tokens = int(lengths.sum())
    padded = sum(int(x.numel()) for x, _ in batches)
    return {
        "n_texts": len(texts), "tokens": tokens, "padded_tokens": padded, "rounds": rounds, "best": best,
        "floor_tokens_per_s": tokens / best["floor_s"], "pipeline_tokens_per_s": tokens / best["pipeline_s"],
        "former_path_tokens_per_s": tokens / best["former_path_s"],
        "ratio_pipeline_over_floor": float(np.median([r["ratio_pipeline_over_floor"] for r in rounds])),
        "ratio_pipeline_over_floor_spread": [min(r["ratio_pipeline_over_floor"] for r in rounds),
                                             max(r["ratio_pipeline_over_floor"] for r in rounds)],
        "ratio_former_path_over_floor": float(np.median([r["ratio_former_path_over_floor"] for r in rounds])),
        "ratio_of": "median over rounds of (floor seconds / method seconds) within the round",
    }


# ---- sizes and Ray -------------------------------------------------------------------------
def job_config(work: Path, out: Path, threads: int, engine: str = "local", ray_options: dict | None = None) -> dict:
    cfg = {
        "input": {"path": str(work / "data.parquet"), "format": "parquet", "columns": {"text": "text", "id": "id"}, "batch_size": 8192},
        "output": {"dir": str(out), "plots": False},
        "models": {"embedder": "bundled-minilm", "threads": threads},
        "scorers": SCALE_SCORERS, "selection": SCALE_SELECTION, "random_state": 0, "engine": engine,
    }
    if ray_options:
        cfg["ray"] = ray_options
    return cfg


def worker(work: Path, threads: int, engine: str, concurrency: int | None) -> dict:
    """One run (in its own subprocess): curate, then peak RSS, stage timings and a digest of the kept ids."""
    import pyarrow.parquet as pq

    from datapruner.pipelines.curate import curate

    ray_options = None
    if engine == "ray":
        import ray

        os.environ.setdefault("RAY_AUTH_MODE", "disabled")
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, _temp_dir=str(work / "ray"),
                 object_store_memory=1 << 30)
        ray_options = {"concurrency": concurrency, "threads_per_worker": threads}
    out = work / f"out-{engine}-{concurrency}"
    t0 = time.perf_counter()
    result = curate(job_config(work, out, threads, engine, ray_options))
    wall = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # the run's peak, before the check below reads ids
    table = pq.read_table(result.scores_path, columns=["id", "keep"])
    kept = table.filter(table.column("keep")).column("id")
    digest = hashlib.sha256("\n".join(kept.to_pylist()).encode()).hexdigest()
    if engine == "ray":
        import ray

        ray.shutdown()
    shutil.rmtree(out, ignore_errors=True)
    return {"n_rows": result.n_rows, "n_kept": result.n_kept, "wall_s": wall, "peak_rss_bytes": peak, "rss_end": common.rss_split(),
            "timings_s": result.manifest.get("timings_s"), "kept_ids_sha256": digest, "engine": engine, "concurrency": concurrency}


def run_worker(work: Path, threads: int, env: dict, *, engine: str = "local", concurrency: int | None = None,
               cap_bytes: int, timeout_s: float) -> dict:
    """Run `worker` in a subprocess, polling its RSS; stop it above `cap_bytes` or after `timeout_s`."""
    cmd = [sys.executable, __file__, "--worker", "--work", str(work), "--threads", str(threads), "--engine", engine]
    if concurrency:
        cmd += ["--concurrency", str(concurrency)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    watched = {"max_rss": 0, "stopped": None}

    def watch():
        t0 = time.monotonic()
        while proc.poll() is None:
            try:
                with open(f"/proc/{proc.pid}/status") as f:
                    rss = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmRSS"))
            except (OSError, StopIteration):
                break
            watched["max_rss"] = max(watched["max_rss"], rss)
            if rss > cap_bytes or time.monotonic() - t0 > timeout_s:
                watched["stopped"] = f"RSS {rss / 2**30:.2f} GiB > cap" if rss > cap_bytes else f"over {timeout_s:.0f} s"
                proc.kill()
                break
            time.sleep(0.5)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    stdout, stderr = proc.communicate()
    thread.join()
    if watched["stopped"]:
        return {"not_run": f"stopped: {watched['stopped']}", "max_rss_polled_bytes": watched["max_rss"]}
    if proc.returncode != 0:
        raise RuntimeError(f"worker failed:\n{stderr[-3000:]}")
    return json.loads(stdout.strip().splitlines()[-1])


def prepared(n: int, threads: int, random_state: int, prepare_timeout_s: float = 1800.0, root: Path | None = None):
    """(work folder, env, info): N synthetic rows and their cached embeddings under a fresh DATAPRUNER_CACHE.

    With `root`, the prepared input lives in `root/<n>-<random_state>` and is reused when a
    complete one is there (`prepared.json` is written last), so a 10M-row input is made once.
    """
    env = common.thread_env(threads)
    env["RAY_AUTH_MODE"] = "disabled"
    if root is not None:
        work = Path(root) / f"{n}-{random_state}"
        env["DATAPRUNER_CACHE"] = str(work / "cache")
        done = work / "prepared.json"
        if done.exists():
            return work, env, {**json.loads(done.read_text()), "reused": True}
        work.mkdir(parents=True, exist_ok=True)  # a complete data.parquet of an interrupted preparation is reused
    else:
        work = Path(tempfile.mkdtemp(prefix=f"dp-scale-{n}-"))
        env["DATAPRUNER_CACHE"] = str(work / "cache")
    t0 = time.perf_counter()
    try:
        prep = subprocess.run([sys.executable, str(Path(__file__).parent / "memory.py"), "--prepare", str(n), "--work", str(work),
                               "--random-state", str(random_state), "--dim", str(SYNTHETIC_DIM)], env=env, check=True, capture_output=True, text=True,
                              timeout=prepare_timeout_s)
    except subprocess.TimeoutExpired:
        return work, env, {"not_run": f"preparing the synthetic data and its cache entry took over {prepare_timeout_s:.0f} s"}
    info = json.loads(prep.stdout.strip().splitlines()[-1])
    info["seconds"] = time.perf_counter() - t0
    if root is not None:
        (work / "prepared.json").write_text(json.dumps(info))
    return work, env, info


def sizes_part(sizes: list[int], threads: int, random_state: int, cap_bytes: int, timeout_s: float,
               prepared_root: Path | None = None) -> dict:
    runs = []
    for n in sizes:
        work, env, prep = prepared(n, threads, random_state, prepare_timeout_s=timeout_s, root=prepared_root)
        try:
            r = dict(prep, max_rss_polled_bytes=0) if "not_run" in prep else run_worker(work, threads, env, cap_bytes=cap_bytes, timeout_s=timeout_s)
        finally:
            if prepared_root is None:
                shutil.rmtree(work, ignore_errors=True)
            else:  # keep the input, drop the run (and its work folder, so nothing is resumed next time)
                for leftover in work.glob("*out-local-None*"):
                    shutil.rmtree(leftover, ignore_errors=True)
        r.update({"n_rows": n, "prepare": prep, "loadavg_after": list(os.getloadavg())})
        runs.append(r)
        shown = r.get("not_run") or "peak {:.0f} MiB, {:.1f} s".format(r["peak_rss_bytes"] / 2**20, r["wall_s"])
        print(f"{n} rows: {shown}", flush=True)
    done = [r for r in runs if "peak_rss_bytes" in r]
    slope = None
    if len(done) >= 2:
        a, b = done[-2], done[-1]
        slope = (b["peak_rss_bytes"] - a["peak_rss_bytes"]) / (b["n_rows"] - a["n_rows"])
    return {"sizes": sizes, "runs": runs, "bytes_per_row_beyond_base": slope, "slope_between": [r["n_rows"] for r in done[-2:]],
            "rss_cap_bytes": cap_bytes, "timeout_s": timeout_s}


def ray_part(n: int, threads: int, random_state: int, cap_bytes: int, timeout_s: float) -> dict:
    work, env, prep = prepared(n, threads, random_state)
    runs = []
    try:
        for engine, concurrency in (("local", None), ("ray", 1), ("ray", 2), ("local", None)):  # local twice: first and last
            shutil.rmtree(work / f".out-{engine}-{concurrency}.work", ignore_errors=True)  # no finished steps reused
            r = run_worker(work, threads, env, engine=engine, concurrency=concurrency, cap_bytes=cap_bytes, timeout_s=timeout_s)
            r["loadavg_after"] = list(os.getloadavg())
            runs.append(r)
            shown = r.get("not_run") or "{:.1f} s".format(r["wall_s"])
            print(f"{engine} x{concurrency}: {shown}", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    local = [r for r in runs if r.get("engine") == "local" and "wall_s" in r]
    base = min(r["wall_s"] for r in local) if local else None
    digests = {r["kept_ids_sha256"] for r in runs if "kept_ids_sha256" in r}
    for r in runs:
        if base and "wall_s" in r:
            r["ratio_to_local"] = r["wall_s"] / base
    return {"n_rows": n, "prepare": prep, "runs": runs, "identical_kept_ids": len(digests) == 1, "local_best_s": base}


# ---- report ------------------------------------------------------------------------------------
def render(parts: dict) -> str:
    lines = []
    p = parts.get("perplexity")
    lines.append("**Perplexity scoring against a bare forward pass** (bundled SmolLM2, real SST-2 texts, one process)")
    lines.append("")
    if p:
        lines += [
            f"{p['n_texts']} texts, {p['tokens']:,} tokens ({p['padded_tokens']:,} padded), {p['threads']} thread(s), "
            f"load average {p['loadavg_start'][0]:.1f} at the start; {len(p['rounds'])} rounds, the methods in turn "
            "within each round; tokens/s from each method's fastest round, ratios the median of the per-round ratios.",
            "",
            "| method | tokens/s | ratio to the floor |", "|---|---|---|",
            f"| bare forward pass (floor) | {p['floor_tokens_per_s']:.0f} | 1.00 |",
            f"| pipeline perplexity scoring | {p['pipeline_tokens_per_s']:.0f} | **{p['ratio_pipeline_over_floor']:.2f}**"
            + (" (spread {:.2f}..{:.2f})".format(*p["ratio_pipeline_over_floor_spread"]) if "ratio_pipeline_over_floor_spread" in p else "") + " |",
            f"| former path (full log-softmax + gather) | {p['former_path_tokens_per_s']:.0f} | {p['ratio_former_path_over_floor']:.2f} |",
            "",
            "Pipeline / floor in each round: " + ", ".join(f"{r['floor_s'] / r['pipeline_s']:.2f} (load {r['loadavg'][0]:.0f})" for r in p["rounds"])
            + f"; goal >= 0.85: {'met' if p['ratio_pipeline_over_floor'] >= 0.85 else 'missed by {:.2f}'.format(0.85 - p['ratio_pipeline_over_floor'])} (median).",
        ]
    else:
        lines.append("not run (run `benchmarks/scale.py --part perplexity`)")
    lines += ["", f"**The curation pipeline at scale** (text_stats, prototypicality, DBP with k = {N_CLUSTERS}; cluster quotas "
              "50 %; embeddings served from a pre-populated on-disk cache; each size in a fresh subprocess)", ""]
    s = parts.get("sizes")
    if s:
        lines += ["| rows | peak RSS (MiB) | wall (s) | ingest (s) | prototypicality (s) | density (s) | write (s) | kept |",
                  "|---|---|---|---|---|---|---|---|"]
        for r in s["runs"]:
            if "not_run" in r:
                polled = r.get("max_rss_polled_bytes") or 0
                seen = f"; RSS polled up to {polled / 2**20:.0f} MiB" if polled else ""
                if r.get("loadavg_after"):
                    seen += f"; load average {r['loadavg_after'][0]:.0f} on 2 cores"
                lines.append(f"| {r['n_rows']:,} | not run ({r['not_run']}{seen}) | | | | | | |")
                continue
            t = r.get("timings_s") or {}
            lines.append(f"| {r['n_rows']:,} | {r['peak_rss_bytes'] / 2**20:.0f} | {r['wall_s']:.1f} | {t.get('ingest', 0):.1f} | "
                         f"{t.get('score:prototypicality', 0):.1f} | {t.get('score:density', 0):.1f} | {t.get('write', 0):.1f} | {r['n_kept']:,} |")
        if s.get("bytes_per_row_beyond_base") is not None:
            a, b = s["slope_between"]
            slope = s["bytes_per_row_beyond_base"]
            verdict = "met" if slope <= 100 else f"missed by {slope - 100:.0f} B"
            lines += ["", f"Resident memory per row beyond the base, (peak at {b:,} - peak at {a:,}) / {b - a:,} rows: "
                          f"**{slope:.0f} B** (goal: at most 100 B, measured between 1M and 10M rows: {verdict})."]
            if b != 10_000_000:
                lines.append("The 10M-row size did not run, so the slope is not the goal's (1M to 10M).")
        big = next((r for r in s["runs"] if r["n_rows"] == 10_000_000 and "peak_rss_bytes" in r), None)
        if big:
            gib = big["peak_rss_bytes"] / 2**30
            lines.append(f"Peak RSS at 10M rows: **{gib:.2f} GiB** (goal: at most 3 GiB: "
                         + ("met" if gib <= 3 else f"missed by {gib - 3:.2f} GiB") + ").")
        if s.get("stale"):  # written by hand when the code changed after this part ran; a rerun replaces the part
            lines.append(f"**Not rerun on the current code** (measured {s['started_utc'][:16]} UTC): {s['stale']}.")
        dim = next((r["prepare"].get("dim") for r in s["runs"] if r.get("prepare", {}).get("dim")), 384)
        lines.append(f"Synthetic input: short texts and {dim}-d float16 clustered unit vectors, written straight into the "
                     "embedding cache; the pipeline reads them through the same cache reader as real embeddings (a block "
                     "at a time, so the width changes the wall times, not the resident memory per row).")
    else:
        lines.append("not run (run `benchmarks/scale.py --part sizes`)")
    lines += ["", "**The same job on the local engine and on Ray** (a local Ray cluster of 2 CPUs on this 2-core machine; "
              "runs in turn from one process, each in a fresh subprocess; local first and last)", ""]
    r = parts.get("ray")
    if r:
        lines += ["| engine | workers | wall (s) | ratio to local | text_stats (s) | prototypicality (s) | density (s) | write (s) | "
                  "load average after | kept |", "|---|---|---|---|---|---|---|---|---|---|"]
        for run in r["runs"]:
            if "wall_s" not in run:
                lines.append(f"| {run.get('engine')} | {run.get('concurrency') or ''} | not run ({run['not_run']}) | | | | | | | |")
                continue
            t = run.get("timings_s") or {}
            stages = " | ".join(f"{t.get(k, float('nan')):.1f}" for k in ("score:text_stats", "score:prototypicality", "score:density", "write"))
            lines.append(f"| {run['engine']} | {run['concurrency'] or ''} | {run['wall_s']:.1f} | {run.get('ratio_to_local', float('nan')):.2f} | "
                         f"{stages} | {run['loadavg_after'][0]:.1f} | {run['n_kept']:,} |")
        lines += ["", f"{r['n_rows']:,} rows, {r['threads']} thread(s) per process, load average {r['loadavg_start'][0]:.1f} at the start; "
                      "ratio = wall / the faster local run; Ray's start-up (`ray.init`) is outside "
                      f"the wall time. Kept ids identical across every run: **{'yes' if r['identical_kept_ids'] else 'NO'}**."]
        two = [run for run in r["runs"] if run.get("engine") == "ray" and run.get("concurrency") == 2 and "wall_s" in run]
        if two:
            ratio = two[0]["ratio_to_local"]
            verdict = "met" if ratio <= RAY_GOAL and r["identical_kept_ids"] else \
                ("missed: kept ids differ" if not r["identical_kept_ids"] else f"missed by {ratio - RAY_GOAL:.2f}")
            lines.append(f"Ray on 2 workers / local: **{ratio:.2f}** (goal: at most {RAY_GOAL}, identical kept ids: {verdict}).")
    else:
        lines.append("not run (run `benchmarks/scale.py --part ray`)")
    plot = common.RESULTS / "scale.png"
    if plot.exists() and s:
        lines += ["", "![scale](benchmarks/results/scale.png)"]
    ran = [f"{name}: `{part['command']}` ({part.get('finished_utc', 'time not recorded')})" for name, part in parts.items() if part.get("command")]
    if ran:
        lines += ["", "Each part's own run (the footer names the last one): " + "; ".join(ran) + "."]
    return "\n".join(lines)


def plot(parts: dict) -> None:
    s = parts.get("sizes")
    done = [r for r in (s or {}).get("runs", []) if "peak_rss_bytes" in r]
    if len(done) < 2:
        return
    plt = common.plt()
    fig, ax = plt.subplots(1, 2, figsize=(9, 3.2))
    n = [r["n_rows"] for r in done]
    ax[0].plot(n, [r["peak_rss_bytes"] / 2**20 for r in done], "o-")
    ax[0].set(xscale="log", xlabel="rows", ylabel="peak RSS (MiB)", title="memory")
    ax[1].plot(n, [r["wall_s"] for r in done], "o-")
    ax[1].set(xscale="log", yscale="log", xlabel="rows", ylabel="wall (s)", title="time")
    fig.tight_layout()
    fig.savefig(common.RESULTS / "scale.png", dpi=110)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--part", choices=["perplexity", "sizes", "ray"])
    ap.add_argument("--quick", action="store_true", help="small sizes (perplexity 40 texts; sizes 5k, 20k; ray 20k)")
    ap.add_argument("--sizes", type=int, nargs="+")
    ap.add_argument("--ppl-texts", type=int, default=150)
    ap.add_argument("--ppl-rounds", type=int, default=3)
    ap.add_argument("--ray-rows", type=int, default=1_000_000)
    ap.add_argument("--rss-cap-gib", type=float, default=6.0)
    ap.add_argument("--timeout-s", type=float, default=660.0)
    ap.add_argument("--prepared-root", type=Path, help="keep the synthetic inputs of `sizes` here and reuse complete ones "
                    "(a 10M-row input takes minutes to make; ~8 GB of disk)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--random-state", type=int, default=0)
    ap.add_argument("--render-only", action="store_true", help="rebuild the README block from the results file; run nothing")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--engine", default="local", help=argparse.SUPPRESS)
    ap.add_argument("--concurrency", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    threads = common.set_threads(args.threads)
    if args.worker:
        import faiss

        faiss.omp_set_num_threads(threads)
        print(json.dumps(worker(args.work, threads, args.engine, args.concurrency), default=str))
        return
    if args.render_only:
        path = common.RESULTS / ("scale_quick.json" if args.quick else "scale.json")
        data = json.loads(path.read_text())
        data["readme"] = common.readme_block(README_TITLE, render(data["parts"]))
        path.write_text(json.dumps(data, indent=1))
        print(f"re-rendered {path}")
        return
    if not args.part:
        ap.error("--part is required")
    started = common.now()
    cap = int(args.rss_cap_gib * 2**30)
    loadavg_start = list(os.getloadavg())
    if args.part == "perplexity":
        part = perplexity_part(40 if args.quick else args.ppl_texts, threads, 2 if args.quick else args.ppl_rounds)
    elif args.part == "sizes":
        part = sizes_part(args.sizes or ([5_000, 20_000] if args.quick else [100_000, 1_000_000, 10_000_000]),
                          threads, args.random_state, cap, args.timeout_s, args.prepared_root)
    else:
        part = ray_part(20_000 if args.quick else args.ray_rows, threads, args.random_state, cap, args.timeout_s)
    part.update({"threads": threads, "loadavg_start": loadavg_start, "started_utc": started, "finished_utc": common.now(),
                 "command": "python " + " ".join(["benchmarks/scale.py", *(argv if argv is not None else sys.argv[1:])])})
    name = "scale_quick.json" if args.quick else "scale.json"
    existing = common.RESULTS / name
    parts = json.loads(existing.read_text()).get("parts", {}) if existing.exists() else {}
    parts[args.part] = part
    if not args.quick:
        plot(parts)
    payload = {"parts": parts, "readme": common.readme_block(README_TITLE, render(parts))}
    path = common.write_result("scale", payload, quick=args.quick, threads=threads, started=started)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
