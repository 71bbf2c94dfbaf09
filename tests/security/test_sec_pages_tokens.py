"""No secret in a page, and compare tokens that reveal nothing (issue 14, points 1 and 2).

1. The voting pages used to embed a gateway write key (``ANNOTATION_GATEWAY_API_KEY``) in
   their HTML. Every page and every static script is rendered with every secret configured
   (the old setting included) and searched for each secret.
2. The ``/v1/compare`` token's first segment decoded to JSON naming each row's model. A
   token minted by the gateway's compare path is taken apart every way an annotator could
   (dot and underscore segments, base64 with padding, zlib, JSON) and no model name or item
   id may appear; the annotation service still reads it, and refuses it once altered or old.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
import zlib
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from annotation.config import AnnotationSettings
from annotation.transport.rest.app import create_app
from fashionrec_common import compare_token
from fashionrec_common.compare_token import Comparison, ShownRow
from gateway.domain.compare import compare
from gateway.domain.timing import Timings
from gateway.domain.types import Hit, RecommendQuery, StoredItem

VOTE_SECRET = "sec-test-vote-token-secret-5f1c0e"
ADMIN_KEY = "sec-test-admin-key-93ab1d"
GATEWAY_KEY = "sec-test-gateway-write-key-7d2e44"
MAX_AGE_S = 600
PAGES = ("/", "/annotate", "/leaderboard")
STATIC = Path(__file__).resolve().parents[2] / "services/annotation/src/annotation/web/static"
MODELS = ("infogan", "mobilenet_v2", "efficientnet_lite0")
CONFIG_RE = re.compile(r"window\.FASHIONREC = (\{.*?\});</script>")


# --- 1. pages ------------------------------------------------------------------------------


@pytest.fixture
def annotation_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> AnnotationSettings:
    """Settings as compose used to give them: the gateway write key included."""
    monkeypatch.setenv("ANNOTATION_GATEWAY_API_KEY", GATEWAY_KEY)
    monkeypatch.setenv("ANNOTATION_VOTE_TOKEN_SECRET", VOTE_SECRET)
    monkeypatch.setenv("ANNOTATION_ADMIN_KEY", ADMIN_KEY)
    monkeypatch.setenv("ANNOTATION_DATABASE_URL", f"sqlite:///{tmp_path / 'annotation.db'}")
    return AnnotationSettings()


@asynccontextmanager
async def serve(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """The app in process (lifespan included), as the other unit tests run theirs."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://annotation") as c:
            yield c


@pytest.fixture
async def pages_client(annotation_env: AnnotationSettings) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(create_app(annotation_env)) as client:
        yield client


@pytest.mark.parametrize("secret", [GATEWAY_KEY, VOTE_SECRET, ADMIN_KEY])
@pytest.mark.parametrize("path", PAGES)
async def test_page_html_holds_no_secret(pages_client, path: str, secret: str) -> None:  # type: ignore[no-untyped-def]
    page = await pages_client.get(path)
    assert page.status_code == 200 and "window.FASHIONREC" in page.text
    assert secret not in page.text


@pytest.mark.parametrize("path", PAGES)
async def test_page_config_is_public_values_only(pages_client, path: str) -> None:  # type: ignore[no-untyped-def]
    """An allow-list: a new key in the page's config must be added here, on purpose."""
    found = CONFIG_RE.search((await pages_client.get(path)).text)
    assert found is not None
    assert set(json.loads(found.group(1))) == {"gatewayUrl", "page"}


@pytest.mark.parametrize("script", sorted(p.name for p in STATIC.glob("*.js")))
async def test_static_scripts_hold_and_send_no_key(pages_client, script: str) -> None:  # type: ignore[no-untyped-def]
    body = await pages_client.get(f"/static/{script}")
    assert body.status_code == 200
    for secret in (GATEWAY_KEY, VOTE_SECRET, ADMIN_KEY):
        assert secret not in body.text
    # Reads need no key and votes carry the annotator's own token: no shared key header.
    assert not re.search(r"x-api-key|x-admin-key|apikey", body.text, re.IGNORECASE)


def test_old_setting_is_gone(annotation_env: AnnotationSettings) -> None:
    assert GATEWAY_KEY not in annotation_env.model_dump_json()
    assert not hasattr(annotation_env, "gateway_api_key")


# --- 2. compare tokens ---------------------------------------------------------------------


class FakeRecommender:
    """What ``compare`` calls: each model returns its own, recognisable item ids."""

    def ids(self, model: str) -> list[str]:
        return [f"sku-{model}-{n:04d}" for n in range(4)]

    async def find_item(
        self, item_id: str, catalogue: str | None, model: str, with_vector: bool
    ) -> tuple[str, StoredItem]:
        return catalogue or "shoes", StoredItem(item_id, {"title": "query"})

    async def similar(self, item_id: str, query: RecommendQuery, timings: Timings) -> Any:
        hits = [Hit(i, 1.0 - n / 10, n / 10) for n, i in enumerate(self.ids(query.model))]
        return type("Result", (), {"items": hits[: query.k]})()


async def mint(item_id: str = "query-sku-31415", models: Sequence[str] = MODELS) -> tuple:
    """(rows in display order, token) from the gateway's own compare path."""
    _, _, rows, token = await compare(
        FakeRecommender(),  # type: ignore[arg-type]
        item_id=item_id,
        catalogue="shoes",
        models=list(models),
        k=4,
        secret=VOTE_SECRET,
        timings=Timings(),
    )
    return rows, token


def b64_variants(text: str) -> Iterator[bytes]:
    """``text`` as urlsafe and standard base64, padded, and with a leading dot stripped."""
    for candidate in {text, text.lstrip(".")}:
        padded = candidate + "=" * (-len(candidate) % 4)
        for decoder in (base64.urlsafe_b64decode, base64.b64decode):
            try:
                yield decoder(padded)
            except (binascii.Error, ValueError):
                continue


def decodings(token: str) -> list[bytes]:
    """Everything an annotator could get out of the token without the key."""
    pieces = {token}
    for sep in (".", "_", "-"):
        for part in token.split(sep):
            pieces.add(part)
    # Fernet-like tokens are one base64 blob: also try every dot segment whole.
    pieces.update(token.split("."))
    out: list[bytes] = [p.encode() for p in pieces]
    for piece in pieces:
        for blob in b64_variants(piece):
            out.append(blob)
            for offset in range(0, min(len(blob), 64)):  # a header before a compressed body
                try:
                    out.append(zlib.decompress(blob[offset:]))
                except zlib.error:
                    continue
    for blob in list(out):
        try:
            out.append(json.dumps(json.loads(blob)).encode())
        except (ValueError, UnicodeDecodeError):
            continue
    return out


def leaks(token: str, needles: Sequence[str]) -> set[str]:
    found = set()
    for blob in decodings(token):
        low = blob.lower()
        found |= {n for n in needles if n.lower().encode() in low}
    return found


def _signed_only(payload: dict[str, Any], compress: bool) -> str:
    """How a signed-but-not-encrypted token (the old itsdangerous one) is laid out."""
    body = json.dumps(payload, separators=(",", ":")).encode()
    if compress:
        body = zlib.compress(body)
    text = base64.urlsafe_b64encode(body).decode().rstrip("=")
    return ("." if compress else "") + text + ".Zk1hQw.c2lnbmF0dXJlLWJ5dGVz"


@pytest.mark.parametrize("compress", [False, True])
def test_the_decoder_finds_what_a_signed_only_token_shows(compress: bool) -> None:
    """Control: ``leaks`` does find names, in the kind of token that leaked them."""
    doc = {"rows": [{"model": m, "items": [f"sku-{m}-0000"]} for m in MODELS]}
    assert leaks(_signed_only(doc, compress), MODELS) == set(MODELS)


async def test_gateway_token_reveals_no_model_and_no_item() -> None:
    rows, token = await mint()
    shown_ids = [h.id for row in rows for h in row]
    assert len(shown_ids) == 12  # the ids do exist, in the clear, on the page itself
    needles = [*MODELS, *shown_ids, "query-sku-31415", "shoes"]
    assert leaks(token, needles) == set()


async def test_same_comparison_twice_gives_unrelated_tokens() -> None:
    """Fresh IV and nonce each time: two tokens share no long run an annotator could match."""
    _, first = await mint()
    _, second = await mint()
    body1, body2 = (t[len(compare_token.PREFIX) :] for t in (first, second))
    common = {body1[i : i + 16] for i in range(16, len(body1) - 16)}  # past the timestamp
    assert not any(body2[i : i + 16] in common for i in range(16, len(body2) - 16))


# --- annotation side: refuses altered and old tokens, reads the gateway's ------------------


@dataclass
class Voting:
    client: httpx.AsyncClient
    app: FastAPI
    auth: dict[str, str]

    async def vote(self, token: str, choice: int) -> httpx.Response:
        body = {"token": token, "choice": choice}
        return await self.client.post("/v1/votes", json=body, headers=self.auth)

    def recorded(self) -> list[Any]:
        return self.app.state.repo.vote_records()


@pytest.fixture
async def voting(annotation_env: AnnotationSettings) -> AsyncIterator[Voting]:
    app = create_app(annotation_env.model_copy(update={"vote_token_max_age_s": MAX_AGE_S}))
    async with serve(app) as client:
        _, bearer = app.state.service.register("alice")
        yield Voting(client, app, {"Authorization": f"Bearer {bearer}"})


def error_code(body: dict[str, Any]) -> str:
    return body["error"]["code"]


def flip(token: str, at: int) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    i = at % len(token)
    replacement = alphabet[(alphabet.index(token[i]) + 1) % 64] if token[i] in alphabet else "A"
    return token[:i] + replacement + token[i + 1 :]


def reencode(token: str, change: Any) -> str:
    """Alter the decoded bytes rather than the text (text after base64 padding is ignored)."""
    raw = base64.urlsafe_b64decode(token[len(compare_token.PREFIX) :])
    return compare_token.PREFIX + base64.urlsafe_b64encode(change(raw)).decode()


def xor_at(raw: bytes, at: int) -> bytes:
    return raw[:at] + bytes([raw[at] ^ 1]) + raw[at + 1 :]


def payload(models: Sequence[str] = MODELS) -> Comparison:
    rows = tuple(ShownRow(m, (f"sku-{m}-0000",)) for m in models)
    return Comparison("q-tampered", "shoes", rows, "nonce-0001")


TAMPERED: dict[str, Any] = {
    "a character in the middle changed": lambda t: flip(t, len(t) // 2),
    "a character of the MAC changed": lambda t: flip(t, -5),
    "a character of the timestamp changed": lambda t: flip(t, len(compare_token.PREFIX) + 4),
    "truncated": lambda t: t[:-10],
    "bytes appended": lambda t: reencode(t, lambda raw: raw + b"\0\0\0"),
    "a byte of the ciphertext flipped": lambda t: reencode(t, lambda raw: xor_at(raw, 40)),
    "no version prefix": lambda t: t[len(compare_token.PREFIX) :],
    "another version prefix": lambda t: "fc1." + t[len(compare_token.PREFIX) :],
    "another secret": lambda t: compare_token.encode("some-other-secret", payload()),
    "not base64": lambda t: compare_token.PREFIX + "%%%%",
    "expired": lambda t: compare_token.encode(
        VOTE_SECRET, payload(), now=time.time() - MAX_AGE_S - 5
    ),
    "dated in the future": lambda t: compare_token.encode(
        VOTE_SECRET, payload(), now=time.time() + 3600
    ),
    "valid seal, payload of another shape": lambda t: compare_token.seal(
        VOTE_SECRET, {"rows": "infogan", "nonce": "x"}
    ),
    "valid seal, no rows": lambda t: compare_token.encode(VOTE_SECRET, payload(models=())),
}


@pytest.mark.parametrize("case", list(TAMPERED))
async def test_annotation_refuses_altered_or_old_tokens(voting: Voting, case: str) -> None:
    _, good = await mint(item_id=f"q-{case}")
    reply = await voting.vote(TAMPERED[case](good), 1)
    assert reply.status_code == 400, reply.text
    assert error_code(reply.json()) == "invalid_token"
    if case == "expired":
        assert "expired" in reply.text
    assert voting.recorded() == []
    assert (await voting.vote(good, 1)).status_code == 201  # the untouched token is fine


@pytest.mark.parametrize("choice", [1, 2, 3, 0])
async def test_gateway_token_round_trips_to_the_annotation_service(
    voting: Voting, choice: int
) -> None:
    """The vote lands on the model that made the chosen row, which only the token knew."""
    rows, token = await mint(item_id=f"q-round-trip-{choice}")
    reply = await voting.vote(token, choice)
    assert reply.status_code == 201, reply.text
    (record,) = voting.recorded()
    shown = tuple(rows[n][0].id.split("-")[1] for n in range(len(rows)))  # sku-<model>-nnnn
    assert record.models == shown and sorted(shown) == sorted(MODELS)
    assert record.chosen == (shown[choice - 1] if choice else None)
    assert (await voting.vote(token, choice)).status_code == 409


# --- issue 14 point 8: annotation answers every error in the one shape ------------------

JSON = {"content-type": "application/json"}
BAD_REQUESTS = [
    ("POST", "/v1/votes", {"content": b"{not json", "headers": JSON}, 400, "invalid_input"),
    ("POST", "/v1/votes", {"json": {"token": 5}}, 400, "invalid_input"),
    ("GET", "/v1/no-such-route", {}, 404, "not_found"),
    ("DELETE", "/v1/leaderboard", {}, 405, "method_not_allowed"),
]  # fmt: skip


@pytest.mark.parametrize(("method", "path", "kwargs", "status", "code"), BAD_REQUESTS)
async def test_annotation_errors_use_the_one_shape(  # type: ignore[no-untyped-def]
    voting, method: str, path: str, kwargs: dict[str, Any], status: int, code: str
) -> None:
    kwargs = {**kwargs, "headers": {**voting.auth, **kwargs.get("headers", {})}}
    reply = await voting.client.request(method, path, **kwargs)
    assert reply.status_code == status, reply.text
    body = reply.json()
    assert set(body) == {"error"} and body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]


async def test_annotation_domain_errors_and_schema_use_the_one_shape(voting) -> None:  # type: ignore[no-untyped-def]
    reply = await voting.vote("not-a-token", 0)
    assert reply.status_code == 400 and error_code(reply.json()) == "invalid_token"
    assert set(reply.json()["error"]) >= {"code", "message"}
    schema = (await voting.client.get("/openapi.json")).json()
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    for item in schema["paths"].values():
        for op in item.values():
            assert "422" not in op["responses"]
