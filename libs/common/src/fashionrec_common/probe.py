"""The container health check of every Python image: ``python -m fashionrec_common.probe TARGET``.

One program instead of a Python one-liner per Dockerfile. TARGET is ``http://...`` (healthy
on a 2xx answer), ``grpc://host:port`` (healthy when ``grpc.health.v1`` says SERVING) or
``none`` (a batch job: its health is its exit code). Exit status 0 = healthy, 1 = not.
"""

from __future__ import annotations

import sys
import urllib.request
from urllib.parse import urlsplit

TIMEOUT_S = 3.0
USAGE = "usage: python -m fashionrec_common.probe (http://URL | grpc://HOST:PORT | none)\n"


def check_http(url: str, timeout_s: float = TIMEOUT_S) -> None:
    """Raises unless ``url`` answers 2xx (urllib raises HTTPError on 4xx/5xx)."""
    with urllib.request.urlopen(url, timeout=timeout_s) as reply:  # noqa: S310 - http(s) only
        reply.read(0)


def check_grpc(address: str, timeout_s: float = TIMEOUT_S) -> None:
    """Raises unless the standard gRPC health service at ``address`` says SERVING."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(address) as channel:
        status = (
            health_pb2_grpc.HealthStub(channel)
            .Check(health_pb2.HealthCheckRequest(), timeout=timeout_s)
            .status
        )
    states = health_pb2.HealthCheckResponse
    if status != states.SERVING:
        raise RuntimeError(f"{address} is {states.ServingStatus.Name(status)}")


def check(target: str) -> None:
    """Raises with the reason when ``target`` is not healthy."""
    scheme = urlsplit(target).scheme
    if target == "none":
        return
    if scheme in ("http", "https"):
        check_http(target)
    elif scheme == "grpc":
        check_grpc(urlsplit(target).netloc)
    else:
        raise ValueError(f"unknown health target {target!r}: use http://, grpc:// or none")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or args[0] in ("-h", "--help"):
        sys.stdout.write(USAGE)
        return 0 if args[:1] in (["-h"], ["--help"]) else 2
    try:
        check(args[0])
    except Exception as exc:  # noqa: BLE001 - any failure is "unhealthy", said once
        sys.stderr.write(f"unhealthy: {args[0]}: {exc}\n")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
