"""Worker processes behind bounded queues: where the service's compressions run.

Each :class:`LaneRunner` owns one lane of the :class:`~datapruner.service.plan.ServingPlan`: a
bounded queue of waiting requests and ``lane.workers`` worker processes. A worker process builds
the lane's compressors, loads their models (one warm-up call each), says it is ready, then
compresses one job at a time.

Deadlines: every job carries the absolute deadline of its request.

- A job whose deadline passes while it waits is taken out of the queue and answered at once; it
  never starts (:class:`DeadlinePassed` with ``started=False``).
- A running job that passes its deadline is stopped by killing its worker process, which a new
  one replaces (its models load again); the worker slot is free again once that one is ready.
  Killing a process is the one way to stop a model call anywhere in its loop without a hook in
  every method.
- A full queue sheds the request (:class:`QueueFull`), answered 503 with ``Retry-After``.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import multiprocessing
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from datapruner.service.plan import Lane

log = logging.getLogger(__name__)

WARMUP = ("warm up", ["The service is warming up its models."])
STOP_GRACE_S = 5.0


class QueueFull(Exception):
    """The lane's queue holds ``max_queue`` requests already."""


class DeadlinePassed(Exception):
    """The request's deadline passed: before it started (``started=False``) or while it ran."""

    def __init__(self, started: bool):
        super().__init__("started" if started else "queued")
        self.started = started


class WorkerLost(Exception):
    """The worker process died while running the job (e.g. killed for memory); it is replaced."""


class LaneUnavailable(Exception):
    """The lane's workers could not load their models; the message says why."""


@dataclass(eq=False)
class Job:
    """One request's work: ``compressors[method].compress(query, passages, **budget)`` by `deadline`."""

    method: str
    query: str
    passages: list[str]
    budget: dict[str, Any]
    deadline: float  # time.monotonic()
    started: bool = False
    future: asyncio.Future | None = field(default=None, repr=False)


def worker_main(conn, options: dict[str, dict[str, Any]]) -> None:
    """Entry point of a worker process: build and warm up the compressors, then serve jobs.

    Messages sent back: ``("ready", pid)`` or ``("failed", message)`` once, then per job
    ``("ok", result dict)`` or ``("error", status, type, message, field)``.
    """
    os.environ.setdefault("TQDM_DISABLE", "1")
    from datapruner.errors import ConfigError, DataprunerError, ModelLoadError
    from datapruner.pipelines.compress import Compressor

    try:
        compressors = {m: Compressor(**o) for m, o in options.items()}
        for compressor in compressors.values():
            compressor.compress(*WARMUP)
    except DataprunerError as exc:
        conn.send(("failed", str(exc)))
        return
    conn.send(("ready", os.getpid()))
    while True:
        try:
            job = conn.recv()
        except (EOFError, KeyboardInterrupt):
            return
        if job is None:
            return
        method, query, passages, budget = job
        try:
            reply = ("ok", compressors[method].compress(query, passages, **budget).to_dict())
        except ModelLoadError as exc:
            reply = ("error", 503, "model_unavailable", str(exc), None)
        except ConfigError as exc:
            reply = ("error", 422, "ConfigError", str(exc), exc.key)
        except DataprunerError as exc:
            reply = ("error", 422, type(exc).__name__, str(exc), None)
        except Exception as exc:  # a bug, not bad input: logged here, answered as JSON by the app
            log.exception("compression failed")
            reply = ("error", 500, "internal_error", f"{type(exc).__name__}: {exc}", None)
        conn.send(reply)


class WorkerProcess:
    """One worker process and its pipe; blocking methods, run in threads by :class:`LaneRunner`."""

    def __init__(self, lane: str, options: dict[str, dict[str, Any]]):
        self.lane, self.options = lane, options
        self.process = None
        self.conn = None
        self.pid: int | None = None
        self.state = "starting"
        self.restarts = -1  # the first start is not a restart
        self.jobs = 0

    def start(self, timeout_s: float) -> str | None:
        """Start the process and wait until its models are loaded; the failure message, or None."""
        ctx = multiprocessing.get_context("spawn")
        parent, child = ctx.Pipe()
        self.state, self.restarts = "starting", self.restarts + 1
        self.process = ctx.Process(target=worker_main, args=(child, self.options), daemon=True,
                                   name=f"datapruner-{self.lane}-worker")
        self.process.start()
        child.close()
        self.conn = parent
        if not parent.poll(timeout_s):
            self.kill()
            return f"the worker did not load its models within {timeout_s:.0f} s"
        try:
            message = parent.recv()
        except EOFError:
            self.kill()
            return f"the worker exited while loading its models (exit code {self.process.exitcode})"
        if message[0] != "ready":
            self.kill()
            return message[1]
        self.pid, self.state = message[1], "ready"
        return None

    def call(self, job: Job) -> tuple:
        """Run `job`; the worker's reply. Kills the process at the deadline (:class:`DeadlinePassed`)."""
        self.state, self.jobs = "busy", self.jobs + 1
        try:
            self.conn.send((job.method, job.query, job.passages, job.budget))
            if not self.conn.poll(max(0.0, job.deadline - time.monotonic())):
                self.kill()
                raise DeadlinePassed(started=True)
            reply = self.conn.recv()
        except (EOFError, BrokenPipeError, ConnectionResetError, OSError):
            code = self.process.exitcode if self.process else None
            self.kill()
            raise WorkerLost(f"the worker process stopped while compressing (exit code {code})") from None
        self.state = "ready"
        return reply

    def kill(self) -> None:
        """Stop the process now (SIGKILL) and close the pipe."""
        self.state = "stopped"
        if self.process is not None and self.process.is_alive():
            self.process.kill()
        if self.process is not None:
            self.process.join(STOP_GRACE_S)
        if self.conn is not None:
            self.conn.close()

    def stop(self) -> None:
        """Ask the process to exit, then kill it if it does not."""
        try:
            if self.conn is not None and self.state == "ready":
                self.conn.send(None)
                self.process.join(STOP_GRACE_S)
        except (OSError, BrokenPipeError):
            pass
        self.kill()

    def describe(self) -> dict[str, Any]:
        return {"lane": self.lane, "pid": self.pid, "state": self.state, "restarts": max(0, self.restarts),
                "jobs": self.jobs}


class LaneRunner:
    """The bounded queue and worker processes of one :class:`~datapruner.service.plan.Lane`.

    Parameters
    ----------
    lane : the lane (its methods and number of workers).
    options : ``{method: Compressor options}`` of the lane's methods.
    max_queue : most waiting requests; one more raises :class:`QueueFull`.
    start_timeout_s : how long a worker may take to load its models.
    """

    def __init__(self, lane: Lane, options: dict[str, dict[str, Any]], *, max_queue: int,
                 start_timeout_s: float = 600.0):
        self.lane, self.max_queue, self.start_timeout_s = lane, max_queue, start_timeout_s
        self.workers = [WorkerProcess(lane.name, options) for _ in range(lane.workers)]
        self.pending: collections.deque[Job] = collections.deque()
        self.unavailable: str | None = None
        self.threads = ThreadPoolExecutor(max_workers=lane.workers, thread_name_prefix=f"datapruner-{lane.name}")
        self.tasks: list[asyncio.Task] = []
        self.ready = None  # asyncio.Event, set when every worker has started once (or failed)
        self.started = 0
        self.wakeup = None  # asyncio.Condition

    async def start(self) -> None:
        """Start the worker loops (the processes load their models in the background)."""
        self.wakeup, self.ready = asyncio.Condition(), asyncio.Event()
        self.tasks = [asyncio.create_task(self._run(w)) for w in self.workers]

    async def submit(self, job: Job) -> tuple:
        """Queue `job` and wait for its reply (see the module docstring for the exceptions)."""
        if self.unavailable:
            raise LaneUnavailable(self.unavailable)
        if len(self.pending) >= self.max_queue:
            raise QueueFull()
        job.future = asyncio.get_running_loop().create_future()
        self.pending.append(job)
        async with self.wakeup:
            self.wakeup.notify()
        try:
            return await asyncio.wait_for(asyncio.shield(job.future), timeout=max(0.0, job.deadline - time.monotonic()))
        except asyncio.TimeoutError:
            if job in self.pending:  # still waiting: it never starts
                self.pending.remove(job)
                job.future.cancel()
                raise DeadlinePassed(started=False) from None
        except asyncio.CancelledError:  # the client went away or the server stops: drop the job if it waits
            if job in self.pending:
                self.pending.remove(job)
            job.future.cancel()
            raise
        return await job.future  # taken by a worker, which refuses or stops it at the same deadline

    async def _run(self, worker: WorkerProcess) -> None:
        loop = asyncio.get_running_loop()
        while True:
            failure = await loop.run_in_executor(self.threads, worker.start, self.start_timeout_s)
            self._count_start()
            if failure:
                log.error("%s worker could not start: %s", self.lane.name, failure)
                self.unavailable = f"the {self.lane.name} worker could not load its models: {failure}"
                self._fail_pending()
                return
            while True:
                async with self.wakeup:
                    await self.wakeup.wait_for(lambda: self.pending)
                    job = self.pending.popleft()
                if job.future.done():
                    continue
                if time.monotonic() >= job.deadline:
                    job.future.set_exception(DeadlinePassed(started=False))
                    continue
                job.started = True
                try:
                    reply = await loop.run_in_executor(self.threads, worker.call, job)
                except (DeadlinePassed, WorkerLost) as exc:
                    log.warning("%s worker %s replaced: %s", self.lane.name, worker.pid, exc)
                    if not job.future.done():
                        job.future.set_exception(exc)
                    break  # start a new process
                if not job.future.done():
                    job.future.set_result(reply)

    def _count_start(self) -> None:
        self.started += 1
        if self.started >= len(self.workers):
            self.ready.set()

    def _fail_pending(self) -> None:
        while self.pending:
            job = self.pending.popleft()
            if not job.future.done():
                job.future.set_exception(LaneUnavailable(self.unavailable))

    async def stop(self) -> None:
        """Stop the loops and the processes."""
        for task in self.tasks:
            task.cancel()
        loop = asyncio.get_running_loop()
        await asyncio.gather(*(loop.run_in_executor(None, w.stop) for w in self.workers))
        self.threads.shutdown(wait=False, cancel_futures=True)

    def describe(self) -> dict[str, Any]:
        return {"methods": list(self.lane.methods), "queued": len(self.pending), "max_queue": self.max_queue,
                "unavailable": self.unavailable, "workers": [w.describe() for w in self.workers]}
