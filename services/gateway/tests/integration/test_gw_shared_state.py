"""Two gateway processes on one Redis: a job started on one is polled on the other and
survives a restart; the rate limit is one bucket for both, not one per replica."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import replace

import httpx
import pytest

from fashionrec_testing.supervisor import Child, Supervisor
from fashionrec_testing.system import LocalSystem

from .conftest import b64, image, unique_prefix

pytestmark = pytest.mark.integration
REDIS_12 = "redis://127.0.0.1:6379/12"
LIMIT = 40  # per minute, per principal


@pytest.fixture
def prefix() -> Iterator[str]:
    with unique_prefix(REDIS_12) as prefix:
        yield prefix


def start(gateway: LocalSystem, supervisor: Supervisor, label: str) -> Child:
    return gateway.start(supervisor, "gateway", label=label, timeout_s=90)


def test_two_gateways_share_jobs_and_rate_limits(
    embedder_url: str, vector_search: str, system: LocalSystem, supervisor: Supervisor, prefix: str
) -> None:
    tuning = {
        "REDIS_URL": REDIS_12,
        "GATEWAY_CACHE_PREFIX": prefix,  # every key (jobs, rate limits, cache) under it
        "GATEWAY_RATE_LIMIT_PER_MINUTE": str(LIMIT),
    }
    shared = replace(system, tuning={**system.tuning, "gateway": tuning})
    a, b = (shared.another("gateway", system.state) for _ in range(2))
    children = [
        a.spawn(supervisor, "gateway", label="gw-a"),
        b.spawn(supervisor, "gateway", label="gw-b"),
    ]
    try:
        for gw, child in zip((a, b), children, strict=True):
            supervisor.wait_until(child, lambda gw=gw: gw.ready("gateway"), timeout_s=90)
        key = {"X-API-Key": system.api_key}
        with (
            httpx.Client(base_url=a.url("gateway"), timeout=30) as on_a,
            httpx.Client(base_url=b.url("gateway"), timeout=30) as on_b,
        ):
            # (1) started on A, polled on B until finished
            lines = [
                json.dumps(
                    {"id": f"shared-{i}", "catalogue": "shoes", "image_b64": b64(image(500 + i))}
                )
                for i in range(6)
            ]
            body = "\n".join([*lines, '{"id": "no catalogue"}']).encode()
            started = on_a.post(
                "/v1/items:batch",
                content=body,
                headers=key | {"content-type": "application/x-ndjson"},
            )
            assert started.status_code == 202, started.text
            job_id = started.json()["job_id"]
            for _ in range(30):  # the key's bucket holds LIMIT: polls stay well below it
                polled = on_b.get(f"/v1/jobs/{job_id}", headers=key)
                assert polled.status_code == 200, polled.text
                if polled.json()["state"] != "running":
                    break
                time.sleep(0.5)
            on_b_doc = polled.json()
            assert (on_b_doc["total"], on_b_doc["done"], on_b_doc["failed"]) == (7, 6, 1)
            assert on_b_doc["state"] == "partial" and on_b_doc["progress"] == 1.0
            assert on_a.get(f"/v1/jobs/{job_id}", headers=key).json() == on_b_doc

            # (2) A restarts: the record is still there, finished, not "interrupted"
            supervisor.stop(children[0])
            children[0] = start(a, supervisor, "gw-a2")
            assert on_a.get(f"/v1/jobs/{job_id}", headers=key).json() == on_b_doc

            # (3) one bucket for both: LIMIT requests split over A and B, then 429 on either.
            # Per-replica buckets would allow LIMIT on each, so none of these would be 429.
            for i in range(LIMIT):
                reply = (on_a if i % 2 else on_b).get("/v1/jobs/no-such-job")
                assert reply.status_code == 404, (i, reply.text)
            for gw in (on_a, on_b):
                limited = gw.get("/v1/jobs/no-such-job")
                assert limited.status_code == 429, limited.text
                assert limited.json()["error"]["code"] == "rate_limited"
                assert int(limited.headers["Retry-After"]) >= 1
    finally:
        for child in children:
            supervisor.stop(child)
