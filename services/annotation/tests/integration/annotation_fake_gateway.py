"""A stand-in for the gateway inside the browser: Playwright routes answer its REST calls.

Votes are forwarded to the real annotation service, as the real gateway does, so the
browser tests exercise the page, the HTTP API and the database together.
"""

from __future__ import annotations

import csv
import io
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
from PIL import Image

from annotation.domain.tokens import Comparison, ShownRow, sign_comparison

GATEWAY = "http://gateway.test"
MODELS = ["infogan", "mobilenet_v2", "vgg16"]
CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Headers": "authorization, content-type, x-api-key",
    "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
}
# Error bodies in the services' one shape.
NOT_FOUND = {"error": {"code": "not_found", "message": "not found"}}
ANNOTATION_DOWN = {"error": {"code": "dependency_unavailable", "message": "annotation unavailable"}}
SHARED_224 = Path(__file__).resolve().parents[4].parent / "shared/data/fashion-product-images-224"


def _catalogue(n: int) -> list[dict[str, Any]]:
    """Real shoe photos when ../shared is there (nicer screenshots), else coloured squares."""
    labels = SHARED_224 / "labels.csv"
    if labels.exists():
        with labels.open() as f:
            rows = [r for r in csv.DictReader(f) if r["category"] == "shoes"][: n * 7 : 7]
        return [
            {"id": r["product_id"], "path": SHARED_224 / r["path"],
             "metadata": {"title": r["product_title"], "class": r["class"],
                          "colour": r["base_colour"], "category": "shoes"}}
            for r in rows
        ]  # fmt: skip
    return [
        {"id": f"item{i}", "path": None, "colour": (40 * i % 256, 90, 255 - 30 * i % 256),
         "metadata": {"title": f"Shoe {i}", "class": "heels", "category": "shoes"}}
        for i in range(n)
    ]  # fmt: skip


@dataclass
class FakeGateway:
    annotation_url: str
    secret: str
    items: list[dict[str, Any]] = field(default_factory=lambda: _catalogue(12))
    fail_votes: int = 0  # answer this many vote POSTs with 503 before forwarding
    vote_posts: list[int] = field(default_factory=list)  # status answered to each POST
    compares: list[Comparison] = field(default_factory=list)
    fixed_query_id: str | None = None  # as the real gateway: same query id for a product
    searches: list[dict[str, bytes]] = field(default_factory=list)  # multipart fields received

    def item(self, it: dict[str, Any], score: float | None = None) -> dict[str, Any]:
        body = {"id": it["id"], "metadata": it["metadata"], "image_url": f"/img/{it['id']}"}
        if score is not None:
            body.update(score=score, distance=1 - score)
        return body

    def image(self, item_id: str) -> bytes:
        it = next(i for i in self.items if i["id"] == item_id)
        if it["path"] is not None:
            return Path(it["path"]).read_bytes()
        buf = io.BytesIO()
        Image.new("RGB", (64, 64), it["colour"]).save(buf, "PNG")
        return buf.getvalue()

    def similar(self, query_id: str, model: str, k: int) -> list[dict[str, Any]]:
        shift = MODELS.index(model) + 1 if model in MODELS else 1
        start = next(n for n, i in enumerate(self.items) if i["id"] == query_id)
        picks = [self.items[(start + shift * j) % len(self.items)] for j in range(1, k + 1)]
        return [self.item(it, round(0.95 - 0.05 * j, 3)) for j, it in enumerate(picks)]

    def handle(self, route: Any) -> None:
        req = route.request
        if req.method == "OPTIONS":
            route.fulfill(status=204, headers=CORS)
            return
        url = urlparse(req.url)
        q = {k: v[0] for k, v in parse_qs(url.query).items()}
        path = url.path
        if path.startswith("/img/"):
            route.fulfill(status=200, body=self.image(path[5:]), headers=CORS,
                          content_type="image/jpeg")  # fmt: skip
            return
        if path == "/v1/votes":
            self._vote(route)
            return
        if path == "/v1/catalogues":
            # The real gateway's shapes: bare lists of objects.
            body: Any = [
                {"name": "shoes", "models": MODELS, "items": len(self.items)},
                {"name": "handbags", "models": MODELS[:2], "items": 0},
            ]
        elif path == "/v1/models":
            body = [{"name": m, "version": "1", "catalogues": ["shoes"]} for m in MODELS]
        elif path == "/v1/items":
            off, lim = int(q.get("offset", 0)), int(q.get("limit", 24))
            page = self.items[off : off + lim]
            body = {"items": [self.item(i) for i in page], "total": len(self.items)}
        elif path.startswith("/v1/items/") and path.endswith("/similar"):
            model = q.get("model", MODELS[0])
            items = self.similar(path.split("/")[3], model, int(q.get("k", 5)))
            body = {"items": items, "model": model, "model_version": "1", "partial": False}
        elif path == "/v1/search":
            self.searches.append(_multipart(req.headers["content-type"], req.post_data_buffer))
            body = {"items": self.similar(self.items[0]["id"], q.get("model", "infogan"), 4),
                    "model": "infogan", "model_version": "1", "partial": False}  # fmt: skip
        elif path == "/v1/compare":
            body = self._compare(q["item_id"], q.get("catalogue", "shoes"))
        else:
            route.fulfill(status=404, headers=CORS, json=NOT_FOUND)
            return
        route.fulfill(status=200, headers=CORS, json=body)

    def _compare(self, item_id: str, catalogue: str) -> dict[str, Any]:
        # A fresh query id per comparison so one annotator never double-votes by chance.
        query_id = self.fixed_query_id or f"{item_id}#{len(self.compares)}"
        order = list(MODELS)
        if len(self.compares) % 2:
            order.reverse()  # shuffled rows, deterministically
        rows = [(m, self.similar(item_id, m, 5)) for m in order]
        comparison = Comparison(
            query_id, catalogue,
            tuple(ShownRow(m, tuple(i["id"] for i in items)) for m, items in rows),
            secrets.token_hex(8),
        )  # fmt: skip
        self.compares.append(comparison)
        query = next(i for i in self.items if i["id"] == item_id)
        return {
            "query": self.item(query),
            "rows": [{"row": n, "items": items} for n, (_, items) in enumerate(rows, start=1)],
            "token": sign_comparison(self.secret, comparison),
        }

    def _vote(self, route: Any) -> None:
        if self.fail_votes > 0:
            self.fail_votes -= 1
            self.vote_posts.append(503)
            route.fulfill(status=503, headers=CORS, json=ANNOTATION_DOWN)
            return
        try:
            res = httpx.post(
                f"{self.annotation_url}/v1/votes",
                content=route.request.post_data_buffer,
                headers={
                    "Authorization": route.request.headers.get("authorization", ""),
                    "Content-Type": "application/json",
                },  # fmt: skip
                timeout=10,
            )
        except httpx.TransportError:  # the annotation service is down: as the gateway does
            self.vote_posts.append(503)
            route.fulfill(status=503, headers=CORS, json=ANNOTATION_DOWN)
            return
        self.vote_posts.append(res.status_code)
        route.fulfill(status=res.status_code, headers=CORS, body=res.content,
                      content_type="application/json")  # fmt: skip

    def chosen_models(self, choices: list[int]) -> list[str | None]:
        """What the choices mean for the comparisons shown, in order."""
        shown = self.compares[: len(choices)]
        return [c.rows[k - 1].model if k else None for c, k in zip(shown, choices, strict=True)]


def _multipart(content_type: str, data: bytes) -> dict[str, bytes]:
    """Field name -> raw value of a multipart/form-data body (enough for a test)."""
    boundary = content_type.split("boundary=")[1].encode()
    fields = {"_raw": data}
    for part in data.split(b"--" + boundary)[1:-1]:
        head, _, value = part.strip(b"\r\n").partition(b"\r\n\r\n")
        name = head.split(b'name="')[1].split(b'"')[0].decode()
        fields[name] = value
    return fields
