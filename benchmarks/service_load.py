"""Load benchmark of `datapruner serve` (issue 12): many requests at a fixed concurrency, mig and perplexity mixed.

Starts `datapruner serve` on 127.0.0.1 (a free port; mig the default method, perplexity allowed;
cheap and costly lanes; a small queue so that overload is shed, not queued), waits until its
workers are ready, then sends ``--requests`` requests, ``--concurrency`` at a time, from a plain
asyncio + httpx client. Every ``--perplexity-every``-th request asks for perplexity, the others
for mig. Each request is one XQuAD question (tests/data/qa/xquad_en_sample.json: 70 paragraphs, real
Wikipedia text) with its paragraph and two other paragraphs, ``rate=0.25``.

Bounded: no request is sent after ``--max-seconds``; the unsent ones are counted. A shed request
(503 + Retry-After) is not retried.

Reported (benchmarks/results/service_load.json; --quick: service_load_quick.json): counts of
200 / 503 / 504 / 429 / other per method, errors other than shedding, p50 / p99 latency per
method (answered requests, client side), requests per second, the server's resident memory
(main process and workers) when it is ready and at the end, worker restarts, whether the server
was still up, the load average before and after (the machine may be shared) and the server
settings.

Run:  nice -n 10 .venv/bin/python benchmarks/service_load.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

import numpy as np  # noqa: E402

from datapruner.service.server_process import free_port, stop_server  # noqa: E402

STATUSES = ("200", "503", "504", "429", "other")


DATA = Path("tests") / "data" / "qa" / "xquad_en_sample.json"


def xquad_requests(n: int, *, perplexity_every: int, random_state: int = 0) -> list[dict]:
    """`n` request bodies: question + its paragraph + two others, every `perplexity_every`-th for perplexity."""
    data = json.loads((common.ROOT / DATA).read_text(encoding="utf-8"))
    paragraphs = [p for article in data["data"] for p in article["paragraphs"]]
    rng = random.Random(random_state)
    bodies = []
    for i in range(n):
        k = i % len(paragraphs)
        qa = paragraphs[k]["qas"][i // len(paragraphs) % len(paragraphs[k]["qas"])]
        others = rng.sample([j for j in range(len(paragraphs)) if j != k], 2)
        passages = [paragraphs[j]["context"] for j in others]
        passages.insert(rng.randrange(3), paragraphs[k]["context"])
        method = "perplexity" if perplexity_every and i % perplexity_every == perplexity_every - 1 else "mig"
        bodies.append({"query": qa["question"], "passages": passages, "rate": 0.25, "method": method})
    return bodies


def server_rss(pid: int) -> dict:
    """Resident memory (MiB) of the server process and of its worker processes."""
    import psutil

    main = psutil.Process(pid)
    workers = main.children(recursive=True)
    mib = [round(p.memory_info().rss / 2**20, 1) for p in workers if p.is_running()]
    own = round(main.memory_info().rss / 2**20, 1)
    return {"main_mib": own, "workers_mib": mib, "total_mib": round(own + sum(mib), 1)}


async def wait_ready(client, url: str, process, timeout_s: float) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"datapruner serve exited with {process.returncode}")
        try:
            health = (await client.get(url + "/healthz", timeout=5)).json()
            if all(all(w["state"] == "ready" for w in lane["workers"]) for lane in health["lanes"].values()):
                return health
        except Exception:  # not listening yet
            pass
        await asyncio.sleep(0.5)
    raise SystemExit(f"datapruner serve was not ready within {timeout_s} s")


async def send_all(client, url: str, bodies: list[dict], *, concurrency: int, max_seconds: float) -> tuple[list, float]:
    """Send `bodies` `concurrency` at a time; one record per sent request; the wall seconds."""
    records, next_index = [], iter(range(len(bodies)))
    started = time.monotonic()

    async def sender():
        for i in next_index:
            if time.monotonic() - started > max_seconds:
                return
            body = bodies[i]
            t0 = time.monotonic()
            try:
                r = await client.post(url + "/v1/compress", json=body, timeout=120)
                status, text = r.status_code, r.text
                error = None if status == 200 else r.json().get("error", {}).get("type", "?")
                if status == 503 and "retry-after" not in r.headers:
                    error = "503 without Retry-After"
            except Exception as exc:  # a connection error is a failure of the server
                status, text, error = -1, "", f"{type(exc).__name__}: {exc}"
            records.append({"method": body["method"], "status": status, "seconds": time.monotonic() - t0,
                            "error": error, "ok_text": status == 200 and bool(json.loads(text).get("text"))})

    await asyncio.gather(*(sender() for _ in range(concurrency)))
    return records, time.monotonic() - started


def summarize(records: list[dict], methods: list[str]) -> dict:
    out = {}
    for method in methods:
        rows = [r for r in records if r["method"] == method]
        counts = {s: 0 for s in STATUSES}
        for r in rows:
            key = str(r["status"]) if str(r["status"]) in STATUSES[:-1] else "other"
            counts[key] += 1
        answered = [r["seconds"] for r in rows if r["status"] == 200]
        out[method] = {
            "sent": len(rows), "counts": counts,
            "p50_ms": round(1000 * float(np.percentile(answered, 50)), 1) if answered else None,
            "p99_ms": round(1000 * float(np.percentile(answered, 99)), 1) if answered else None,
            "errors": sorted({r["error"] for r in rows if r["error"] and r["status"] not in (503, 504)}),
            "empty_texts": sum(1 for r in rows if r["status"] == 200 and not r["ok_text"]),
        }
    return out


async def run(args) -> dict:
    import httpx

    bodies = xquad_requests(args.requests, perplexity_every=args.perplexity_every)
    port = free_port()
    config = {"compress": {"method": "mig", "rate": 0.25},
              "service": {"port": port, "methods": ["perplexity"], "workers": args.workers,
                          "costly_workers": args.costly_workers, "max_queue": args.max_queue,
                          "timeout_s": args.timeout_s},
              "models": {"threads": args.threads}}
    folder = Path(tempfile.mkdtemp(prefix="dp-service-load-"))
    (folder / "serve.yaml").write_text(json.dumps(config), encoding="utf-8")
    cli = Path(sys.executable).parent / "datapruner"
    log = open(folder / "server.log", "w")
    process = subprocess.Popen([str(cli), "serve", "--config", str(folder / "serve.yaml"), "--warmup"],
                               env=common.thread_env(args.threads), stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    load_before = [round(x, 2) for x in os.getloadavg()]
    try:
        limits = httpx.Limits(max_connections=args.concurrency + 2, max_keepalive_connections=args.concurrency + 2)
        async with httpx.AsyncClient(limits=limits) as client:
            t0 = time.monotonic()
            health = await wait_ready(client, url, process, args.start_timeout_s)
            start_s = time.monotonic() - t0
            rss_start = server_rss(process.pid)
            records, wall = await send_all(client, url, bodies, concurrency=args.concurrency,
                                           max_seconds=args.max_seconds)
            alive = process.poll() is None
            rss_end = server_rss(process.pid) if alive else None
            health_end = (await client.get(url + "/healthz", timeout=10)).json() if alive else None
    finally:
        stop_server(process)
        log.close()
    restarts = ({name: sum(w["restarts"] for w in lane["workers"]) for name, lane in health_end["lanes"].items()}
                if health_end else None)
    per_method = summarize(records, ["mig", "perplexity"])
    unanswered = [r for r in records if r["status"] not in (200, 503, 504, 429)]
    return {
        "data": str(DATA),
        "server": {"config": config["service"], "lanes": {k: {"methods": v["methods"], "workers": len(v["workers"])}
                                                          for k, v in health["lanes"].items()},
                   "threads_per_worker": args.threads, "start_seconds": round(start_s, 1)},
        "client": {"requests": args.requests, "concurrency": args.concurrency, "perplexity_every": args.perplexity_every,
                   "max_seconds": args.max_seconds},
        "sent": len(records), "not_sent_time_bound": args.requests - len(records),
        "wall_seconds": round(wall, 1), "requests_per_second": round(len(records) / wall, 2) if wall else None,
        "per_method": per_method,
        "all_answered_or_shed": not unanswered, "unanswered": len(unanswered),
        "server_alive_at_end": alive, "worker_restarts": restarts,
        "rss_start": rss_start, "rss_end": rss_end,
        "loadavg_before": load_before, "loadavg_after": [round(x, 2) for x in os.getloadavg()],
    }


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="100 requests, 8 at a time, at most 120 s")
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--perplexity-every", type=int, default=5, help="every N-th request is perplexity (default 5: 20%%)")
    ap.add_argument("--max-seconds", type=float, default=900, help="send nothing after this (default 900)")
    ap.add_argument("--workers", type=int, default=None, help="server workers (default: the cores)")
    ap.add_argument("--costly-workers", type=int, default=None, help="of those, perplexity workers (default: half)")
    ap.add_argument("--max-queue", type=int, default=4, help="server queue per lane (default 4)")
    ap.add_argument("--timeout-s", type=float, default=30.0, help="server deadline per request (default 30)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads per worker (default 1)")
    ap.add_argument("--start-timeout-s", type=float, default=600)
    args = ap.parse_args(argv)
    if args.quick:
        args.requests, args.concurrency, args.max_seconds = min(args.requests, 100), min(args.concurrency, 8), 120
    if args.workers is None:
        args.workers = max(2, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count())
    started = common.now()
    payload = asyncio.run(run(args))
    path = common.write_result("service_load", payload, quick=args.quick, threads=args.threads, started=started)
    print(json.dumps({k: payload[k] for k in ("sent", "wall_seconds", "per_method", "all_answered_or_shed",
                                              "server_alive_at_end", "rss_start", "rss_end")}, indent=1))
    print(f"wrote {path}")
    if not payload["all_answered_or_shed"] or not payload["server_alive_at_end"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
