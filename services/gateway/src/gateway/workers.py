"""GATEWAY_WORKERS > 1: several gateway processes serving one port.

Why: one process is one event loop, so one gateway uses at most about one core of Python;
where a host gives it more, more processes serve more requests. (On the 2-core benchmark
machine, whose cores the embedder and vector-search share, two gained nothing:
docs/benchmarks.md, "Runs 25-32"; hence the default of 1.) The parent reserves the REST port
and spawns the workers (fresh interpreters, so no forked gRPC or event-loop state), each
listening on it with SO_REUSEPORT; the kernel hands each new connection to one of them.
Worker 0 also owns the gRPC port. Counters and histograms go to one directory
(prometheus_client's multiprocess mode), so ``/metrics`` on any worker reports every worker.
A worker that dies is started again; SIGTERM or SIGINT stops them all, each finishing its
requests first; a parent killed outright takes them with it.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import math
import multiprocessing
import os
import shutil
import signal
import socket
import tempfile
import time
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from pathlib import Path
from types import FrameType

from fashionrec_common.logging import configure_logging
from gateway.config import GatewaySettings

log = logging.getLogger("gateway.workers")
METRICS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"  # prometheus_client reads it at import
GRACE_S = 30.0  # a worker's time to finish its requests after SIGTERM
QUICK_DEATH_S = 10.0  # a worker that dies sooner after its start counts towards giving up
MAX_QUICK_DEATHS = 5  # in a row: the set-up itself fails, restarting will not help
PR_SET_PDEATHSIG = 1  # linux/prctl.h


def bind(host: str, port: int, listen: bool = True) -> socket.socket:
    """A socket on ``host:port`` in the port's SO_REUSEPORT group (port 0 picks a free one).

    Each worker listens on its own such socket, so the kernel spreads new connections over
    the workers by a hash of their addresses. On one shared listening socket asyncio's accept
    loop takes every waiting connection on each wake-up: one worker took 3 or 4 of 4 fresh
    keep-alive connections, leaving the other idle. The parent holds a bound socket that does
    not listen: it reserves the port and receives no connections."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto named: asyncio sets TCP_NODELAY only on sockets whose proto is IPPROTO_TCP, and
    # accepted sockets inherit it; with 0, Nagle + delayed ACK added ~45 ms to every reply
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    if listen:
        sock.listen(2048)
    return sock


def available_cores(cgroup: Path = Path("/sys/fs/cgroup/cpu.max")) -> int:
    """Cores this process may use: its CPU affinity, capped by a cgroup v2 CPU quota (a
    Kubernetes CPU limit), which ``os.cpu_count()`` ignores."""
    cores = len(os.sched_getaffinity(0))
    try:
        quota, period = cgroup.read_text().split()[:2]
    except (OSError, ValueError):
        return cores
    if quota == "max":
        return cores
    return max(1, min(cores, math.ceil(int(quota) / int(period))))


def _die_with_parent(parent: int) -> None:
    """SIGTERM this worker when the parent dies, even by SIGKILL (the OOM killer): orphaned
    workers would keep the port and serve with no one to restart or stop them."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM) != 0:
        log.warning("prctl(PR_SET_PDEATHSIG) failed: errno %d", ctypes.get_errno())
    if os.getppid() != parent:  # it died before the prctl
        os._exit(1)


def _worker(settings: GatewaySettings, port: int, index: int, parent: int) -> None:
    """A spawned worker's entry point: logging first, then the same ``serve`` as one process."""
    from gateway.serve import serve  # imported here, after PROMETHEUS_MULTIPROC_DIR is set

    configure_logging("gateway", settings.log_level, settings.log_json)
    _die_with_parent(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent turns Ctrl-C into SIGTERM
    asyncio.run(serve(settings, sock=bind(settings.host, port), grpc=index == 0))


class Workers:
    """The parent's side: start, watch, restart and stop the worker processes."""

    def __init__(self, settings: GatewaySettings, port: int) -> None:
        self.settings, self.port = settings, port
        self.context = multiprocessing.get_context("spawn")
        self.procs: dict[int, BaseProcess] = {}
        self.started: dict[int, float] = {}
        self.stopping = False
        self.quick_deaths = 0

    def start(self, index: int) -> None:
        args = (self.settings, self.port, index, os.getpid())
        proc = self.context.Process(target=_worker, args=args, name=f"gateway-{index}")
        proc.start()
        self.procs[index], self.started[index] = proc, time.monotonic()
        log.info("worker %d started (pid %d)%s", index, proc.pid, ", with gRPC" * (index == 0))

    def stop(self, signum: int = signal.SIGTERM, frame: FrameType | None = None) -> None:
        del frame
        if not self.stopping:
            log.info("stopping %d workers (signal %d)", len(self.procs), signum)
        self.stopping = True

    def watch(self) -> int:
        """Until told to stop: restart each worker that exits. Returns the exit status."""
        while not self.stopping:
            ready = wait([p.sentinel for p in self.procs.values()], timeout=0.5)
            for index, proc in list(self.procs.items()):
                if proc.sentinel in ready and not self.stopping:
                    if not self._restart(index, proc):
                        self.stopping = True
                        return 1
        return 0

    def _restart(self, index: int, proc: BaseProcess) -> bool:
        proc.join()
        _mark_dead(proc.pid)
        quick = time.monotonic() - self.started[index] < QUICK_DEATH_S
        self.quick_deaths = self.quick_deaths + 1 if quick else 0
        log.error("worker %d (pid %s) exited with %s", index, proc.pid, proc.exitcode)
        if self.quick_deaths >= MAX_QUICK_DEATHS:
            log.error("%d workers died within %.0f s of starting: giving up", MAX_QUICK_DEATHS,
                      QUICK_DEATH_S)  # fmt: skip
            return False
        self.start(index)
        return True

    def shutdown(self) -> None:
        """SIGTERM to every worker (uvicorn finishes open requests), SIGKILL after GRACE_S."""
        for proc in self.procs.values():
            if proc.is_alive():
                proc.terminate()
        deadline = time.monotonic() + GRACE_S
        for proc in self.procs.values():
            proc.join(max(0.0, deadline - time.monotonic()))
            if proc.is_alive():
                log.error("worker pid %s did not stop within %.0f s: killed", proc.pid, GRACE_S)
                proc.kill()
                proc.join()


def _mark_dead(pid: int | None) -> None:
    from prometheus_client import multiprocess

    if pid is not None and os.environ.get(METRICS_DIR_ENV):
        multiprocess.mark_process_dead(pid)


def _metrics_dir() -> Path | None:
    """A fresh directory for the workers' metric files, unless the operator named one
    (PROMETHEUS_MULTIPROC_DIR, kept). Returns the directory to remove at the end."""
    if os.environ.get(METRICS_DIR_ENV):
        return None
    made = Path(tempfile.mkdtemp(prefix="gateway-metrics-"))
    os.environ[METRICS_DIR_ENV] = str(made)
    return made


def run(settings: GatewaySettings, count: int) -> int:
    """``python -m gateway`` with more than one worker; returns the exit status."""
    sock = bind(settings.host, settings.port, listen=False)
    host, port = sock.getsockname()[:2]
    made = _metrics_dir()
    workers = Workers(settings, port)
    signal.signal(signal.SIGTERM, workers.stop)
    signal.signal(signal.SIGINT, workers.stop)
    log.info("REST on %s:%d, %d worker processes", host, port, count)
    try:
        for index in range(count):
            workers.start(index)
        return workers.watch()
    finally:
        workers.shutdown()
        sock.close()
        if made is not None:
            shutil.rmtree(made, ignore_errors=True)
