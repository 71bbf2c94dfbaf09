"""A small process supervisor for `make demo` and end-to-end tests.

Starts each service as a child process, prefixes its output lines with the
service name, waits for readiness, and stops everything (SIGTERM, then SIGKILL
after a grace period) on exit, Ctrl-C, or a SIGTERM/SIGHUP to this process (``timeout``,
a closed terminal): children run in their own sessions, so nothing else would stop them.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

_COLOURS = ("36", "33", "35", "32", "34", "31", "96", "93")
# Signals that end the supervising process: turned into KeyboardInterrupt, as Ctrl-C is.
_STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)
# Lines of a child's output kept for the error when it exits before it is ready.
_TAIL_LINES = 30
# Ports this process handed out: a fixture picks its ports long before the service binds them.
_HANDED_OUT: set[int] = set()
_LOCAL_RANGE = "/proc/sys/net/ipv4/ip_local_port_range"


def _interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _ephemeral_range() -> tuple[int, int]:
    """The kernel's range for outgoing connections' local ports (Linux; IANA's elsewhere)."""
    try:
        low, high = Path(_LOCAL_RANGE).read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 49152, 65535


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A TCP port that is free now and stays free until a service of ours binds it.

    Why not the kernel's ``bind(0)``: that port comes from the ephemeral range, which every
    outgoing connection (Redis, gRPC, HTTP clients in the same test run) also draws from, and
    a test session picks its ports minutes before it starts the service; CI saw a service
    exit for want of its port. So: a port below that range, never handed out twice by this
    process, checked bindable.
    """
    low, _ = _ephemeral_range()
    start = 20000 if low > 21000 else 1024
    for _ in range(1000):
        port = random.randrange(start, low)  # noqa: S311 - not a secret
        if port not in _HANDED_OUT and _bindable(port):
            _HANDED_OUT.add(port)
            return port
    raise RuntimeError(f"no free TCP port in {start}-{low - 1}")


def http_ok(url: str, timeout_s: float = 1.0) -> bool:
    """True when ``url`` answers 2xx."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as reply:  # noqa: S310 - loopback URLs only
            return 200 <= reply.status < 300
    except (urllib.error.URLError, OSError):
        return False


def tcp_open(host: str, port: int, timeout_s: float = 0.5) -> bool:
    """True when something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


@dataclass
class Child:
    name: str
    process: subprocess.Popen[str]
    pump: threading.Thread
    tail: deque[str]  # the last lines of its output, filled by the pump


@dataclass
class Supervisor:
    """Runs named child processes; use as a context manager so they always stop."""

    out: TextIO = field(default_factory=lambda: sys.stdout)
    colour: bool = field(default_factory=lambda: sys.stdout.isatty())
    grace_s: float = 10.0
    children: list[Child] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _handlers: dict[int, object] = field(default_factory=dict)

    def __enter__(self) -> Supervisor:
        if threading.current_thread() is threading.main_thread():
            for sig in _STOP_SIGNALS:
                self._handlers[sig] = signal.signal(sig, _interrupt)
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.stop_all()
        finally:
            for sig, handler in self._handlers.items():
                signal.signal(sig, handler)  # type: ignore[arg-type]
            self._handlers.clear()

    def _prefix(self, name: str) -> str:
        width = max([len(c.name) for c in self.children] + [len(name), 10])
        label = f"{name:<{width}} |"
        if not self.colour:
            return label
        code = _COLOURS[sum(map(ord, name)) % len(_COLOURS)]
        return f"\033[{code}m{label}\033[0m"

    def _pump(self, name: str, stream: TextIO, tail: deque[str]) -> None:
        prefix = self._prefix(name)
        for raw in stream:
            line = raw.rstrip()
            tail.append(line)
            with self._lock:
                self.out.write(f"{prefix} {line}\n")
                self.out.flush()

    def log(self, name: str, message: str) -> None:
        with self._lock:
            self.out.write(f"{self._prefix(name)} {message}\n")
            self.out.flush()

    def start(
        self,
        name: str,
        argv: Sequence[str],
        env: dict[str, str] | None = None,
        cwd: str | None = None,
    ) -> Child:
        """Start ``argv`` with its stdout and stderr merged and prefixed by ``name``."""
        process = subprocess.Popen(  # noqa: S603 - argv comes from our own scripts
            list(argv),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            bufsize=1,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
            cwd=cwd,
            start_new_session=True,  # Ctrl-C reaches us only; we stop children in order
        )
        assert process.stdout is not None
        tail: deque[str] = deque(maxlen=_TAIL_LINES)
        pump = threading.Thread(target=self._pump, args=(name, process.stdout, tail), daemon=True)
        pump.start()
        child = Child(name, process, pump, tail)
        self.children.append(child)
        return child

    def wait_until(
        self,
        child: Child,
        ready: Callable[[], bool],
        timeout_s: float = 120.0,
        poll_s: float = 0.25,
    ) -> None:
        """Block until ``ready()`` or raise if the child exits or the time runs out."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if child.process.poll() is not None:
                child.pump.join(timeout=2)  # the last lines say why
                last = "\n".join(f"  {line}" for line in child.tail)
                raise RuntimeError(
                    f"{child.name} exited with code {child.process.returncode}; its last lines:\n"
                    f"{last}"
                )
            if ready():
                return
            time.sleep(poll_s)
        raise TimeoutError(f"{child.name} was not ready after {timeout_s:.0f} s")

    def stop(self, child: Child) -> None:
        """SIGTERM, then SIGKILL after the grace period; the whole process group."""
        if child.process.poll() is None:
            _signal_group(child.process, signal.SIGTERM)
            try:
                child.process.wait(self.grace_s)
            except subprocess.TimeoutExpired:
                _signal_group(child.process, signal.SIGKILL)
                child.process.wait()
        child.pump.join(timeout=2)
        if child.process.stdout is not None:
            child.process.stdout.close()

    def stop_all(self) -> None:
        """Stop children in reverse start order (front doors first)."""
        for child in reversed(self.children):
            self.stop(child)
        self.children.clear()

    def first_exited(self) -> Child | None:
        return next((c for c in self.children if c.process.poll() is not None), None)


def _signal_group(process: subprocess.Popen[str], sig: int) -> None:
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        pass
