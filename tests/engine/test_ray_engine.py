"""The Ray engine on a real two-node cluster gives the local engine's scores and kept ids.

The module starts one cluster: a head and a worker node, each started with `ray start` on
127.0.0.1 with one CPU, a private temp dir and free ports. The nodes' processes get their own
empty `DATAPRUNER_CACHE` (sharing only the converted LM folder), so per-row caches filled by the
local run are never what the Ray run reads. Teardown stops only this cluster's processes.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from datapruner.paths import cache_dir
from datapruner.pipelines.curate import curate

pytestmark = [pytest.mark.ray, pytest.mark.slow]

RAY_CLI = [sys.executable, "-c", "import sys; from ray.scripts.scripts import main; sys.argv[0] = 'ray'; main()"]


def _free_ports(n: int) -> list[int]:
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


def _node_ports() -> list[str]:
    agent, grpc, env_agent, metrics, node_manager, object_manager = _free_ports(6)
    return ["--dashboard-agent-listen-port", str(agent), "--dashboard-agent-grpc-port", str(grpc),
            "--runtime-env-agent-port", str(env_agent), "--metrics-export-port", str(metrics),
            "--node-manager-port", str(node_manager), "--object-manager-port", str(object_manager)]


def _accepts(port: int) -> bool:
    """Whether something listens on 127.0.0.1:`port`."""
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _processes_under(temp_dir: str) -> list[int]:
    """Pids of processes whose command line names this cluster's temp dir (and nothing else's)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if temp_dir.encode() in (entry / "cmdline").read_bytes():
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


@pytest.fixture(scope="module")
def two_node_cluster():
    ray = pytest.importorskip("ray")
    temp_dir = tempfile.mkdtemp(prefix="dpray-", dir="/tmp")  # short: Ray's socket paths must fit 107 bytes
    node_cache = Path(temp_dir) / "cache"
    (node_cache).mkdir()
    models = cache_dir() / "models"
    if models.exists():
        (node_cache / "models").symlink_to(models)
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_ENABLE_UV_RUN_RUNTIME_ENV": "0", "DATAPRUNER_CACHE": str(node_cache),
           "HF_HUB_OFFLINE": "1", "DATAPRUNER_PROGRESS": "0", "TOKENIZERS_PARALLELISM": "false", "RAY_USAGE_STATS_ENABLED": "0"}
    gcs, dashboard = _free_ports(2)
    low = 20000 + (os.getpid() * 37) % 30000
    common = ["--num-cpus", "1", "--object-store-memory", str(256 * 2**20), "--temp-dir", temp_dir, "--node-ip-address", "127.0.0.1", "--disable-usage-stats", "--block"]
    head = subprocess.Popen(RAY_CLI + ["start", "--head", "--port", str(gcs), "--dashboard-port", str(dashboard),
                                       "--include-dashboard", "false", "--min-worker-port", str(low), "--max-worker-port", str(low + 40),
                                       *_node_ports(), *common], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    nodes = [head]
    address = f"127.0.0.1:{gcs}"
    try:
        deadline = time.monotonic() + 120
        while not _accepts(gcs):  # the head's GCS listens: a worker node can join (cheaper than polling `ray status`)
            if time.monotonic() > deadline or head.poll() is not None:
                raise RuntimeError(f"the Ray head did not start (exit code {head.poll()}; GCS port {gcs} closed)")
            time.sleep(0.2)
        nodes.append(subprocess.Popen(RAY_CLI + ["start", "--address", address, "--min-worker-port", str(low + 41),
                                                 "--max-worker-port", str(low + 80), *_node_ports(), *common],
                                      env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        os.environ["RAY_AUTH_MODE"] = "disabled"
        ray.init(address=address, include_dashboard=False, log_to_driver=False, _node_ip_address="127.0.0.1")
        while len([n for n in ray.nodes() if n["Alive"]]) < 2:
            if time.monotonic() > deadline:
                raise RuntimeError("the Ray worker node did not join")
            time.sleep(0.2)
        yield {"address": address, "node_cache": node_cache}
    finally:
        ray.shutdown()
        for proc in reversed(nodes):  # `ray start --block` stops the node's processes when it is terminated
            proc.send_signal(signal.SIGTERM)
        for proc in nodes:
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
        for pid in _processes_under(temp_dir):  # anything that outlived its node: only this cluster's
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        import shutil

        shutil.rmtree(temp_dir, ignore_errors=True)


def _both(cfg_for, tmp_path, cluster, **ray_options):
    local = curate(cfg_for(tmp_path / "local", engine="local"))
    distributed = curate(cfg_for(tmp_path / "ray", engine="ray", ray={"address": cluster["address"], **ray_options}))
    assert distributed.manifest["config"]["engine"] == "ray"
    return pq.read_table(local.scores_path), pq.read_table(distributed.scores_path)


def _assert_same_table(a: pa.Table, b: pa.Table) -> None:
    """Same columns, types and values (NaN equal to NaN, which `Table.equals` does not grant)."""
    assert a.schema.equals(b.schema) and a.num_rows == b.num_rows
    for name in a.column_names:
        x, y = a.column(name), b.column(name)
        if pa.types.is_floating(x.type):
            assert np.array_equal(x.to_numpy(), y.to_numpy(), equal_nan=True), name
        else:
            assert x.equals(y), name


def _kept_ids(table: pa.Table) -> list[str]:
    return table.filter(table.column("keep")).column("id").to_pylist()


def test_cluster_has_two_nodes(two_node_cluster):
    import ray

    alive = [n for n in ray.nodes() if n["Alive"]]
    assert len(alive) == 2 and sum(n["Resources"].get("CPU", 0) for n in alive) == 2


def test_jsonl_read_by_ray(tmp_path, sst2_rows, curation_config, two_node_cluster):
    """Ray's JSON reader gives every row its ingest index (text_stats, no model)."""
    jsonl = tmp_path / "rows.jsonl"
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in sst2_rows[:60]))
    a, b = _both(lambda out, **kw: curation_config(jsonl, out, **kw), tmp_path, two_node_cluster, concurrency=2)
    _assert_same_table(a, b)
    assert a.num_rows == 60


def test_perplexity_band_matches_local(tmp_path, sst2_rows, two_node_cluster, causal_lm):
    path = tmp_path / "ppl.parquet"
    pq.write_table(pa.Table.from_pylist(sst2_rows[:40]), path)

    def cfg(out, **kw):
        return {"input": {"path": str(path), "columns": {"text": "sentence"}, "batch_size": 16},
                "output": {"dir": str(out), "plots": False}, "models": {"lm_max_length": 256},
                "scorers": [{"name": "perplexity"}],
                "selection": [{"policy": "band", "score": "perplexity", "keep": 0.5, "band": "middle"}], **kw}

    a, b = _both(cfg, tmp_path, two_node_cluster, concurrency=2)
    # the Ray actors ran the LM themselves: their per-row cache lies in the nodes' own cache folder
    assert list((two_node_cluster["node_cache"] / "row-scores" / "perplexity").glob("*.sqlite"))
    np.testing.assert_allclose(b.column("perplexity").to_numpy(), a.column("perplexity").to_numpy(), rtol=1e-4)
    assert b.column("ppl_tokens").equals(a.column("ppl_tokens"))
    assert _kept_ids(a) == _kept_ids(b) and len(_kept_ids(a)) == 20


@pytest.fixture()
def seeded_duplicates(tmp_path, sst2_rows) -> tuple[Path, set[str]]:
    """80 SST-2 rows plus 10 near-copies (whitespace and case changed) of 10 of them."""
    rng = np.random.default_rng(0)
    rows = [{"id": f"r{i}", "sentence": r["sentence"], "label": r["label"]} for i, r in enumerate(sst2_rows[:80])]
    copies = rng.choice(80, 10, replace=False)
    rows += [{"id": f"dup{i}", "sentence": "  " + rows[i]["sentence"].upper() + " ", "label": rows[i]["label"]} for i in copies]
    path = tmp_path / "dups.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path, {f"dup{i}" for i in copies} | {f"r{i}" for i in copies}


def test_semdedup_and_dbp_match_local(tmp_path, seeded_duplicates, two_node_cluster, embedder):
    path, pairs = seeded_duplicates

    def cfg(out, **kw):
        return {"input": {"path": str(path), "columns": {"text": "sentence", "id": "id"}, "batch_size": 16},
                "output": {"dir": str(out), "plots": False}, "random_state": 0,
                "scorers": [{"name": "semdedup", "params": {"n_clusters": 4, "eps": 0.05}},
                            {"name": "density", "params": {"n_clusters": 4}}],
                "selection": [{"policy": "drop_flagged", "score": "semdedup_duplicate"}, {"policy": "cluster_quota", "keep": 0.5}],
                **kw}

    a, b = _both(cfg, tmp_path, two_node_cluster, concurrency=2)
    _assert_same_table(a, b)
    flagged = set(a.filter(a.column("semdedup_duplicate")).column("id").to_pylist())
    assert len(flagged) >= 8 and flagged <= pairs  # the seeded copies are found, nothing else
    assert _kept_ids(a) == _kept_ids(b)


def test_el2n_and_confident_learning_match_local(tmp_path, sst2_rows, two_node_cluster, embedder):
    """On a folder of three Parquet files of unequal size: Ray reads each file and every row keeps its index."""
    folder = tmp_path / "in"
    folder.mkdir()
    for name, (lo, hi) in {"a": (0, 50), "b": (50, 57), "c": (57, 120)}.items():
        pq.write_table(pa.Table.from_pylist(sst2_rows[lo:hi]), folder / f"{name}.parquet")

    def cfg(out, **kw):
        return {"input": {"path": str(folder), "columns": {"text": "sentence", "label": "label"}, "batch_size": 16},
                "output": {"dir": str(out), "plots": False}, "random_state": 0,
                "scorers": [{"name": "el2n"}, {"name": "confident_learning"}],
                "selection": [{"policy": "drop_label_issues"}, {"policy": "top_fraction", "score": "el2n", "keep": 0.5}],
                **kw}

    a, b = _both(cfg, tmp_path, two_node_cluster, concurrency=2)
    _assert_same_table(a, b)
    assert a.num_rows == 120 and np.isfinite(a.column("el2n").to_numpy()).all()
    assert _kept_ids(a) == _kept_ids(b)


def _read_folder(folder: Path) -> pa.Table:
    """`pruned/` as one table: its shards sorted by file name (the order the output checks read)."""
    return pa.concat_tables([pq.read_table(p) for p in sorted(folder.glob("*.parquet"))])


def test_ray_writers_give_the_local_outputs(tmp_path, sst2_rows, two_node_cluster):
    """Ray's `write_parquet` writes `pruned/` (score columns appended) from a folder of three files;
    the output checks read it back and its content equals the local writer's. (`scores.parquet` is
    written by the same streaming writer on both engines, so only the checks read it here.)"""
    from datapruner.curation.dataset import ColumnMap, Dataset, DatasetView
    from datapruner.curation.output_checks import check_scores_file
    from datapruner.curation.outputs import check_pruned, scores_table, write_scores
    from datapruner.executors import LocalExecutor
    from datapruner.executors.ray_executor import RayExecutor

    folder = tmp_path / "in"
    folder.mkdir()
    for name, (lo, hi) in {"a": (0, 50), "b": (50, 57), "c": (57, 120)}.items():
        pq.write_table(pa.Table.from_pylist(sst2_rows[lo:hi]), folder / f"{name}.parquet")
    dataset = Dataset(folder, columns=ColumnMap(text="sentence", label="label"), batch_size=16)
    info = dataset.ingest()
    view = DatasetView(dataset=dataset, info=info, random_state=0, work_dir=tmp_path / "work", embedder_name="", lm_name="")
    rng = np.random.default_rng(0)
    keep = rng.random(info.n_rows) < 0.4
    keep[50:57] = False  # a whole file dropped: its slice writes no shard
    scores = {"n_chars": np.array([len(r["sentence"]) for r in sst2_rows[:120]]), "score": rng.random(info.n_rows)}
    table = scores_table(info.ids, scores, keep=keep, reason=np.where(keep, "kept", "dropped:test").astype(object))
    written = {}
    for executor in (LocalExecutor(), RayExecutor(address=two_node_cluster["address"])):
        staging = tmp_path / executor.name
        staging.mkdir()
        write_scores(staging, table)
        assert executor.write_pruned(staging, view, keep, scores=scores, shard_rows=20) == keep.sum()
        assert check_scores_file(staging, info.ids, selected=True)["kept"] == keep.sum()
        check_pruned(staging, dataset)
        written[executor.name] = _read_folder(staging / "pruned")
    local_pruned, ray_pruned = written["local"], written["ray"]
    assert sorted(p.name for p in (tmp_path / "ray" / "pruned").glob("*.parquet"))[0].endswith("-0.parquet")
    assert ray_pruned.num_rows == keep.sum() and ray_pruned.equals(local_pruned)
    assert ray_pruned.column_names == ["sentence", "label", "n_chars", "score"]
