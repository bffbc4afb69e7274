"""Start-up and shut-down helpers for a `datapruner serve` child process (tests, load benchmarks)."""

from __future__ import annotations

import signal
import socket
import subprocess


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_server(process: subprocess.Popen, *, grace_s: float = 30.0) -> None:
    """Stop the server as Ctrl-C does (its workers shut down), and kill it if it outlives `grace_s`."""
    process.send_signal(signal.SIGINT)
    try:
        process.wait(grace_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)
