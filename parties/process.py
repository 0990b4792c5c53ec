"""What every long-running Pooled process does the same way: report readiness, wait for a signal.

A process started on an ephemeral port tells its launcher where it listens in two ways:
a line `POOLED_READY <identity> <host:port>` on stdout, and (with `--port-file`) a file
holding `host:port`, written atomically so a reader never sees half of it.

Once its server has stopped, a process leaves at once (`exit_now`): the gRPC runtime's
teardown at interpreter exit took from a fraction of a second to over a second on every
node and dealer measured, after everything it serves was already closed.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import NoReturn

READY_PREFIX = "POOLED_READY"


def report_ready(identity: str, address: str, port_file: Path | None) -> None:
    if port_file is not None:
        tmp = port_file.with_name(port_file.name + ".tmp")
        tmp.write_text(address + "\n")
        os.replace(tmp, port_file)
    print(f"{READY_PREFIX} {identity} {address}", flush=True)


def read_port_file(path: Path, timeout_s: float, poll_s: float = 0.02) -> str:
    """The host:port in another process's port file, waiting until it is written (a launcher that
    starts the dealer and its nodes together: each node reads the dealer's). TimeoutError after
    `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} was not written within {timeout_s:.0f} s")
        time.sleep(poll_s)
    return path.read_text().strip()


def parse_ready(line: str) -> tuple[str, str] | None:
    """(identity, address) from a readiness line, or None."""
    parts = line.split()
    if len(parts) == 3 and parts[0] == READY_PREFIX:
        return parts[1], parts[2]
    return None


def wait_for_shutdown() -> None:
    """Block the main thread until SIGTERM or SIGINT."""
    stop = threading.Event()

    def handler(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    while not stop.wait(1.0):
        pass
    print("stopping", file=sys.stderr, flush=True)


def exit_now(code: int = 0) -> NoReturn:
    """End the process with `code` without the interpreter's teardown. Call it only after a clean
    stop: nothing is left to write then (the audit log flushes and fsyncs every entry)."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def watch_parent(poll_s: float = 1.0) -> None:
    """Send ourselves SIGTERM when the process that started us dies (no orphans in tests)."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            threading.Event().wait(poll_s)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="watch-parent", daemon=True).start()
