"""Shared helpers of the benchmarks: data, seeded noise, cached embeddings, intervals, result files.

Generic on purpose: any benchmark may import it (``from common import ...`` when run as
``python benchmarks/<name>.py``; the folder is on ``sys.path`` then).

- ``shared_data_dir()`` / ``require_data(*parts)``: the shared real data under ``../shared/data``
  (relative to the repository) or ``$DATAPRUNER_SHARED_DATA``; when absent, ``skip(reason)`` prints
  the reason and exits with code 0.
- ``load_classification(name)``: SST-2 / Banking77 train and test as ``Split(texts, labels, names)``.
- ``inject_label_noise(labels, rate, n_classes, random_state)``: seeded flips to a uniformly drawn *other*
  class; returns the noisy labels and the flipped mask (the ground truth).
- ``embed_texts(texts)``: bundled-MiniLM embeddings through the library's on-disk cache
  (``datapruner.curation.embedding_cache``), so a rerun or a curation run over the same texts re-embeds nothing.
- ``wilson_interval``, ``bootstrap_interval``: 95 % intervals.
- ``write_result(name, payload, quick=...)``: ``benchmarks/results/<name>.json`` (or
  ``<name>_quick.json``) with machine info, threads, command and timestamps added.
- ``readme_block(title, markdown)``: the ``"readme"`` entry that ``update_readme.py`` renders.
"""

from __future__ import annotations

import csv
import json
import os
import platform
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"


def positive_int(text: str) -> int:
    """An argparse ``type`` for counts such as ``--rounds``: an integer >= 1, else a usage error naming the value."""
    import argparse

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1; given {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1; given {value}")
    return value


def set_threads(threads: int = 1) -> int:
    """Pin BLAS / torch threads (call before heavy imports where possible). Returns the count."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(threads)
    os.environ.setdefault("DATAPRUNER_PROGRESS", "0")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        import torch

        torch.set_num_threads(threads)
    except ImportError:  # pragma: no cover
        pass
    return threads


def thread_env(threads: int = 1) -> dict[str, str]:
    """A copy of the environment for a subprocess pinned to `threads` threads, progress bars off."""
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(threads)
    env["DATAPRUNER_PROGRESS"] = "0"
    env["HF_HUB_OFFLINE"] = "1"
    return env


# ---- data ------------------------------------------------------------------------------------
def skip(reason: str) -> None:
    """Print why the benchmark is skipped and exit with code 0."""
    print(f"SKIP: {reason}")
    sys.exit(0)


def shared_data_dir() -> Path:
    """``$DATAPRUNER_SHARED_DATA``, else ``../shared/data`` beside the repository."""
    env = os.environ.get("DATAPRUNER_SHARED_DATA")
    return Path(env).expanduser() if env else ROOT.parent / "shared" / "data"


def require_data(*parts: str) -> Path:
    path = shared_data_dir().joinpath(*parts)
    if not path.exists():
        skip(f"{path} not found; set DATAPRUNER_SHARED_DATA to the shared data folder (by default ../shared/data beside the repository)")
    return path


@dataclass
class Split:
    texts: list[str]
    labels: np.ndarray  # (N,) int64 class indices
    names: list[str]  # class index -> name

    def __len__(self) -> int:
        return len(self.texts)

    def take(self, rows: np.ndarray) -> "Split":
        return Split([self.texts[i] for i in rows], self.labels[rows], self.names)


def _sst2(path: Path) -> tuple[list[str], list[str]]:
    texts, labels = [], []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            label, text = line.split(" ", 1)
            labels.append(label)
            texts.append(text.strip())
    return texts, labels


def _banking(path: Path) -> tuple[list[str], list[str]]:
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return [r["text"] for r in rows], [r["category"] for r in rows]


def _trec(path: Path) -> tuple[list[str], list[str]]:
    """TREC question classification, `COARSE:fine text` per line (latin-1): the 6 coarse classes."""
    texts, labels = [], []
    for line in path.read_text(encoding="latin-1").splitlines():
        if line.strip():
            label, text = line.split(" ", 1)
            labels.append(label.split(":", 1)[0])
            texts.append(text.strip())
    return texts, labels


def _sms_spam(path: Path) -> tuple[list[str], list[str]]:
    """UCI SMS Spam Collection, `label<TAB>text` per line after the header line."""
    rows = [line.split("\t", 1) for line in path.read_text(encoding="utf-8").splitlines()[1:] if line.strip()]
    return [text for _, text in rows], [label for label, _ in rows]


DATASETS = {
    "sst2": (("classification", "sst2"), "stsa.binary.train", "stsa.binary.test", _sst2),
    "banking77": (("classification", "banking77"), "train.csv", "test.csv", _banking),
    # held-out sets: never used to choose a method or a default (benchmarks/pruning_curve.py --heldout)
    "trec": (("classification", "trec"), "TREC.train.raw_5452.label", "TREC.test.raw_500.label", _trec),
    "sms_spam": (("classification", "sms_spam"), "SMSSpamCollection", None, _sms_spam),
}
HELDOUT_TEST_SHARE = 0.2
"""Share of a dataset without a test file (SMS spam) held out as its test set, by a seeded permutation."""


def load_classification(name: str) -> tuple[Split, Split]:
    """(train, test) of a dataset of `DATASETS`; class indices follow the sorted train label names. A
    dataset without a test file gets a seeded `HELDOUT_TEST_SHARE` of its rows as the test set."""
    folder, train_file, test_file, reader = DATASETS[name]
    base = require_data(*folder)
    tr_texts, tr_labels = reader(base / train_file)
    if test_file is None:
        order = np.random.default_rng(0).permutation(len(tr_texts))
        cut = int(round(len(order) * (1 - HELDOUT_TEST_SHARE)))
        te_texts, te_labels = [tr_texts[i] for i in order[cut:]], [tr_labels[i] for i in order[cut:]]
        tr_texts, tr_labels = [tr_texts[i] for i in order[:cut]], [tr_labels[i] for i in order[:cut]]
    else:
        te_texts, te_labels = reader(base / test_file)
    names = sorted(set(tr_labels))
    index = {n: i for i, n in enumerate(names)}
    return (
        Split(tr_texts, np.array([index[x] for x in tr_labels], dtype=np.int64), names),
        Split(te_texts, np.array([index[x] for x in te_labels], dtype=np.int64), names),
    )


def subsample(n: int, size: int | None, random_state: int = 0) -> np.ndarray:
    """Sorted seeded subset of range(n) of `size` rows (all rows when size is None or >= n)."""
    if size is None or size >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(random_state).choice(n, size, replace=False))


def inject_label_noise(labels: np.ndarray, rate: float, n_classes: int, random_state: int) -> tuple[np.ndarray, np.ndarray]:
    """Flip exactly round(rate * N) seeded rows to a uniformly drawn other class.

    Returns (noisy_labels, flipped) where `flipped` (N,) bool is the ground truth."""
    labels = np.asarray(labels, dtype=np.int64)
    rng = np.random.default_rng(random_state)
    n = len(labels)
    rows = rng.choice(n, int(round(rate * n)), replace=False)
    noisy = labels.copy()
    shift = rng.integers(1, n_classes, len(rows))
    noisy[rows] = (labels[rows] + shift) % n_classes
    flipped = np.zeros(n, dtype=bool)
    flipped[rows] = True
    return noisy, flipped


def write_parquet(path: Path, texts: list[str], labels: np.ndarray | None = None, names: list[str] | None = None) -> Path:
    """Write a (id, text[, label]) Parquet file; labels written as their names when `names` is given."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    cols = {"id": [f"r{i}" for i in range(len(texts))], "text": texts}
    if labels is not None:
        cols["label"] = [names[i] for i in labels] if names is not None else [int(x) for x in labels]
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(cols), path)
    return path


# ---- embeddings --------------------------------------------------------------------------------
_EMBEDDER = None


def embedder():
    global _EMBEDDER
    if _EMBEDDER is None:
        from datapruner.models import Embedder

        _EMBEDDER = Embedder()
    return _EMBEDDER


def embed_texts(texts: list[str]) -> np.ndarray:
    """(N, 384) float32 L2-normalised bundled-MiniLM embeddings, through the library's disk cache
    (keyed by the texts' content fingerprint, the same key a curation run over these texts uses)."""
    from datapruner.curation.dataset import ColumnMap, Dataset
    from datapruner.curation.embedding_cache import cached_embeddings

    with tempfile.TemporaryDirectory() as tmp:
        path = write_parquet(Path(tmp) / "texts.parquet", texts)
        ds = Dataset(path, format="parquet", columns=ColumnMap(text="text", id="id"))
        emb = np.asarray(cached_embeddings(ds, embedder()), dtype=np.float32)
    norms = np.linalg.norm(emb, axis=1, keepdims=True)
    return emb / np.maximum(norms, 1e-12)


def proxy_benchmark_parser(doc: str):
    """The argument parser the proxy benchmarks share: --quick (1,000 train rows), --rounds, --threads."""
    import argparse

    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="first 1,000 train rows of each dataset")
    ap.add_argument("--rounds", type=positive_int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    return ap


def proxy_fits_in_turn(name: str, variants: dict[str, dict], *, rounds: int, quick: bool, noise_rate: float) -> dict:
    """Fit `ProxyClassifier(**variants[v])` for every variant in turn, `rounds` times, on a dataset's
    train rows (the first 1,000 with `quick`) with `noise_rate` seeded label flips.

    Returns {"n_rows", "n_classes", "noisy", "flipped", "seconds": {variant: [per round]}, "fits": {variant: last fit}}.
    """
    from datapruner.curation.proxy import ProxyClassifier

    train, _ = load_classification(name)
    if quick:
        train = train.take(np.arange(1000))
    X = embed_texts(train.texts)
    k = len(train.names)
    noisy, flipped = inject_label_noise(train.labels, noise_rate, k, random_state=0)
    seconds: dict[str, list[float]] = {v: [] for v in variants}
    fits = {}
    for _ in range(rounds):
        for v, params in variants.items():
            t0 = time.perf_counter()
            fits[v] = ProxyClassifier(**params).fit(X, noisy, n_classes=k)
            seconds[v].append(time.perf_counter() - t0)
    return {"n_rows": len(noisy), "n_classes": k, "noisy": noisy, "flipped": flipped, "seconds": seconds, "fits": fits}


# ---- statistics ----------------------------------------------------------------------------------
def prf(flags: np.ndarray, truth: np.ndarray) -> dict:
    """Precision, recall and F1 of boolean `flags` against boolean `truth`, and the number flagged."""
    tp = int((flags & truth).sum())
    p = tp / flags.sum() if flags.sum() else 0.0
    r = tp / truth.sum() if truth.sum() else 0.0
    f1 = 2 * p * r / (p + r) if p + r else 0.0
    return {"precision": p, "recall": r, "f1": f1, "n_flagged": int(flags.sum())}


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return (float("nan"), float("nan"))
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (float(centre - half), float(centre + half))


def bootstrap_interval(values, *, stat=np.mean, n_boot: int = 1000, random_state: int = 0, alpha: float = 0.05) -> tuple[float, float]:
    values = np.asarray(values)
    if len(values) == 0:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(random_state)
    boots = np.array([stat(values[rng.integers(0, len(values), len(values))]) for _ in range(n_boot)])
    return (float(np.quantile(boots, alpha / 2)), float(np.quantile(boots, 1 - alpha / 2)))


# ---- results -------------------------------------------------------------------------------------
def machine_info() -> dict:
    info = {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}
    try:
        info["loadavg_at_write"] = [round(x, 2) for x in os.getloadavg()]  # other users of the shared cores
    except OSError:  # pragma: no cover
        pass
    try:
        import torch

        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
    except ImportError:  # pragma: no cover
        pass
    return info


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def readme_block(title: str, markdown: str) -> dict:
    """The entry `update_readme.py` renders: a section title and Markdown built from measurements."""
    return {"title": title, "markdown": markdown}


def write_result(name: str, payload: dict, *, quick: bool, threads: int, started: str) -> Path:
    """Write benchmarks/results/<name>.json (<name>_quick.json with --quick), adding provenance."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = {
        "benchmark": name,
        "quick": quick,
        "command": "python " + " ".join([f"benchmarks/{Path(sys.argv[0]).name}", *sys.argv[1:]]),
        "threads": threads,
        "machine": machine_info(),
        "started_utc": started,
        "finished_utc": now(),
        **payload,
    }
    path = RESULTS / (f"{name}_quick.json" if quick else f"{name}.json")
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(out, indent=1, default=_json_default))
    os.replace(tmp, path)
    return path


def _json_default(obj):
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return None if np.isnan(obj) else float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.bool_):
        return bool(obj)
    raise TypeError(f"not JSON serialisable: {type(obj)}")


def plt():
    """matplotlib.pyplot on the Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as pyplot

    return pyplot


def fmt(x, digits: int = 3, signed: bool = False) -> str:
    if x is None or (isinstance(x, float) and np.isnan(x)):
        return "n/a"
    return f"{x:+.{digits}f}" if signed else f"{x:.{digits}f}"


def score_with_library(train_path: Path, scorers: list[dict], out_dir: Path, *, threads: int = 1, random_state: int = 0,
                       label: bool = True, cache_name: str | None = None) -> dict[str, np.ndarray]:
    """Score a Parquet file (id, text[, label]) with the library's scorers through
    `datapruner.pipelines.curate.score` and return {column: (N,) array} in input row order.

    With `cache_name`, the columns are saved to `<cache dir>/benchmarks/<cache_name>.npz` and read
    back on a rerun (the key should encode the data, the regime and the scorer parameters)."""
    from datapruner.paths import cache_dir

    cache = cache_dir() / "benchmarks" / f"{cache_name}.npz" if cache_name else None
    if cache is not None and cache.exists():
        with np.load(cache, allow_pickle=True) as z:
            return {k: z[k] for k in z.files}
    import pyarrow.parquet as pq
    from datapruner.pipelines.curate import score

    columns = {"text": "text", "id": "id"}
    if label:
        columns["label"] = "label"
    config = {
        "input": {"path": str(train_path), "format": "parquet", "columns": columns, "batch_size": 512},
        "output": {"dir": str(out_dir), "plots": False},
        "models": {"embedder": "bundled-minilm", "threads": threads},
        "scorers": scorers,
        "random_state": random_state,
    }
    path = score(config, out=str(out_dir))
    table = pq.read_table(path)
    ids = table.column("id").to_pylist()
    order = np.argsort(np.array([int(i[1:]) for i in ids]))
    result = {}
    for name in table.column_names:
        if name in ("id", "reason"):
            continue
        col = table.column(name)
        try:
            values = col.to_numpy(zero_copy_only=False)
        except Exception:  # nested columns (e.g. token masks) are not needed here
            continue
        if values.dtype == object:
            try:
                values = np.array([np.nan if v is None else float(v) for v in values])
            except (TypeError, ValueError):
                continue
        result[name] = values[order]
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache.with_suffix(".tmp.npz"), **result)
        os.replace(cache.with_suffix(".tmp.npz"), cache)
    return result


def select(scores: dict[str, np.ndarray], policies: list[dict]) -> np.ndarray:
    """Run a chain of the library's selection policies (by config spec) over score columns; (N,) keep."""
    from datapruner.selection import apply_policies, make_policy

    n = len(next(iter(scores.values())))
    cols = dict(scores)
    keep, _ = apply_policies([make_policy(p) for p in policies], cols, valid=np.ones(n, dtype=bool),
                             invalid_reason=np.full(n, "", dtype=object))
    return keep


class Timer:
    def __enter__(self):
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.t0


def rss_split() -> dict[str, int]:
    """This process's resident memory from /proc: anonymous, file-backed, and the peak (bytes)."""
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(("RssAnon", "RssFile", "VmHWM")):
                key, value = line.split(":")
                out[key] = int(value.split()[0]) * 1024
    return out
