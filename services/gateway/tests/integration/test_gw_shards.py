"""Three real vector-search shards: merged top-k equals one index; a dead shard -> partial."""

from __future__ import annotations

import subprocess
import sys

import pytest

from .conftest import gw_settings, image, ingest_env, start_shard, write_catalog

pytestmark = pytest.mark.integration


def ingest(catalog, embedder_url: str, shards: str) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "gateway", "ingest", "--catalog", str(catalog),
         "--models", "infogan", "--embedder-url", embedder_url, "--shards", shards],  # fmt: skip
        capture_output=True, text=True, timeout=120, env=ingest_env(),
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]


async def test_fan_out_merge_equals_single_index_and_partial_on_dead_shard(
    embedder_url, system, supervisor, tmp_path, make_gateway
) -> None:
    ids = write_catalog(tmp_path, 40, category="sharded")
    single, _ = start_shard(system, supervisor, tmp_path / "single")
    shards = [start_shard(system, supervisor, tmp_path / f"s{i}") for i in range(3)]
    addresses = ",".join(a for a, _ in shards)
    ingest(tmp_path, embedder_url, single)
    ingest(tmp_path, embedder_url, addresses)
    common = {"embedder_url": embedder_url, "catalogues": "sharded", "search_timeout_s": 1.0}
    one = await make_gateway(gw_settings(vector_search_shards=single, **common))
    many = await make_gateway(gw_settings(vector_search_shards=addresses, **common))

    counts = [i.count for i in await many.services.store.list_indexes()]
    assert counts == [40]  # summed over shards
    per_shard = [
        (await many.services.store._rpc(s, "ListItems", _list_request())).total for s in range(3)
    ]
    assert sum(per_shard) == 40 and all(n > 0 for n in per_shard)  # spread by the id hash

    for seed in (0, 7, 13, 22, 39):
        up = {"files": {"image": ("q.png", image(seed + 100), "image/png")}, "data": {"k": "10"}}
        a = (await one.client.post("/v1/search", **up)).json()
        b = (await many.client.post("/v1/search", **up)).json()
        assert [i["id"] for i in a["items"]] == [i["id"] for i in b["items"]]
        assert [i["score"] for i in a["items"]] == pytest.approx([i["score"] for i in b["items"]])
        assert b["partial"] is False
    sa = (await one.client.get(f"/v1/items/{ids[5]}/similar", params={"k": 8})).json()
    sb = (await many.client.get(f"/v1/items/{ids[5]}/similar", params={"k": 8})).json()
    assert [i["id"] for i in sa["items"]] == [i["id"] for i in sb["items"]]

    supervisor.stop(shards[1][1])  # one shard dies
    up = {"files": {"image": ("q.png", image(3), "image/png")}, "data": {"k": "40"}}
    reply = await many.client.post("/v1/search", **up)
    assert reply.status_code == 200, reply.text
    doc = reply.json()
    assert doc["partial"] is True and doc["cached"] is False
    assert 0 < len(doc["items"]) == 40 - per_shard[1]
    again = (await many.client.post("/v1/search", **up)).json()
    assert again["partial"] is True and again["cached"] is False  # partial answers not cached

    for _, child in (shards[0], shards[2]):
        supervisor.stop(child)
    dead = await many.client.post("/v1/search", **up)
    assert dead.status_code == 503


def _list_request():
    from fashionrec.vectorsearch.v1 import vector_search_pb2 as pb

    return pb.ListItemsRequest(index="sharded/infogan", offset=0, limit=1)
