"""The HTTP API over a real database: SQLite file and the real PostgreSQL (own schema)."""

from __future__ import annotations

import csv
import io
import re
import socket
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from sqlalchemy import inspect, text

from annotation.adapters.db.migrate import downgrade, upgrade
from annotation.adapters.db.repository import SqlVoteRepository
from annotation.adapters.db.session import make_engine
from annotation.config import AnnotationSettings
from annotation.domain.votes import NewVote
from annotation.errors import AnnotatorExists, DoubleVote, ReplayedToken
from annotation.transport.rest.app import ConfigError, create_app

from ..conftest import SECRET, make_comparison, make_token, running_server

pytestmark = pytest.mark.integration
ADMIN = {"X-Admin-Key": "admin-key-for-tests"}


def settings_for(url: str) -> AnnotationSettings:
    return AnnotationSettings(
        database_url=url, vote_token_secret=SECRET, admin_key="admin-key-for-tests"
    )


@pytest.fixture
def client(database_url: str) -> Iterator[httpx.Client]:
    with (
        running_server(create_app(settings_for(database_url))) as url,
        httpx.Client(base_url=url, timeout=10) as c,
    ):
        yield c


def annotator(client: httpx.Client, name: str) -> dict[str, str]:
    res = client.post("/v1/annotators", json={"name": name}, headers=ADMIN)
    assert res.status_code == 201, res.text
    return {"Authorization": f"Bearer {res.json()['token']}"}


def vote(client: httpx.Client, auth: dict[str, str], choice: int, **token_kwargs: object):  # type: ignore[no-untyped-def]
    body = {"token": make_token(**token_kwargs), "choice": choice, "duration_ms": 900}
    return client.post("/v1/votes", json=body, headers=auth)


def test_migrations_up_from_empty_and_down(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        upgrade(engine)
        tables = set(inspect(engine).get_table_names())
        assert {"annotators", "votes", "vote_rows", "alembic_version"} <= tables
        with engine.connect() as conn:
            assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0001"
        downgrade(engine)
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
        upgrade(engine)  # and back up again
        assert "votes" in inspect(engine).get_table_names()
    finally:
        engine.dispose()


def test_vote_is_stored_with_rows(client: httpx.Client) -> None:
    auth = annotator(client, "alice")
    res = vote(client, auth, 2, models=("vgg16", "infogan", "dcgan"), query_id="item-7")
    assert res.status_code == 201, res.text
    assert res.json()["annotator"] == "alice"
    stored = client.get("/v1/votes", headers=ADMIN).json()["votes"]
    assert len(stored) == 1
    v = stored[0]
    assert (v["query_id"], v["catalogue"], v["choice"], v["chosen_model"]) == (
        "item-7", "shoes", 2, "infogan",
    )  # fmt: skip
    assert v["duration_ms"] == 900
    assert [r["model"] for r in v["rows"]] == ["vgg16", "infogan", "dcgan"]
    assert v["rows"][1]["items"] == [f"infogan-{i}" for i in range(5)]


def test_none_is_similar(client: httpx.Client) -> None:
    auth = annotator(client, "bob")
    assert vote(client, auth, 0).status_code == 201
    board = client.get("/v1/leaderboard").json()
    assert board["none_votes"] == 1 and all(m["wins"] == 0 for m in board["models"])


def test_forged_replayed_double_and_bad_annotator(client: httpx.Client) -> None:
    auth = annotator(client, "carol")
    forged = client.post(
        "/v1/votes", json={"token": make_token(secret="x" * 32), "choice": 1}, headers=auth
    )
    assert forged.status_code == 400 and forged.json()["error"]["code"] == "invalid_token"
    token = make_token(query_id="q-replay")
    assert (
        client.post("/v1/votes", json={"token": token, "choice": 1}, headers=auth).status_code
        == 201
    )
    replay = client.post("/v1/votes", json={"token": token, "choice": 1}, headers=auth)
    assert replay.status_code == 409 and replay.json()["error"]["code"] == "token_replayed"
    double = vote(client, auth, 1, query_id="q-replay")
    assert double.status_code == 409 and double.json()["error"]["code"] == "double_vote"
    for headers in ({}, {"Authorization": "Bearer ann_nope"}, {"Authorization": "Basic x"}):
        res = vote(client, headers, 1)
        assert res.status_code == 401 and res.headers["www-authenticate"] == "Bearer"
    assert vote(client, auth, 7).status_code == 400  # no row 7 among 3
    assert len(client.get("/v1/votes", headers=ADMIN).json()["votes"]) == 1


def test_admin_key_required(client: httpx.Client) -> None:
    assert client.post("/v1/annotators", json={"name": "eve"}).status_code == 403
    bad = client.post("/v1/annotators", json={"name": "eve"}, headers={"X-Admin-Key": "no"})
    assert bad.status_code == 403
    annotator(client, "dave")
    again = client.post("/v1/annotators", json={"name": "dave"}, headers=ADMIN)
    assert again.status_code == 409
    assert client.get("/v1/votes").status_code == 403


def test_leaderboard_numbers_and_csv(client: httpx.Client) -> None:
    a, b = annotator(client, "ann-a"), annotator(client, "ann-b")
    models = ("infogan", "vgg16")
    # shoes: infogan wins q1 (both annotators) and q2; vgg16 wins q3. bags: vgg16 wins once.
    for auth, q, choice in [(a, "q1", 1), (b, "q1", 1), (a, "q2", 1), (a, "q3", 2)]:
        assert vote(client, auth, choice, models=models, query_id=q).status_code == 201
    assert vote(client, a, 2, models=models, query_id="q1", catalogue="bags").status_code == 201

    shoes = client.get("/v1/leaderboard", params={"catalogue": "shoes"}).json()
    assert shoes["votes"] == 4 and shoes["annotators"] == 2
    assert shoes["catalogues"] == ["bags", "shoes"]
    by = {m["model"]: m for m in shoes["models"]}
    assert (by["infogan"]["wins"], by["infogan"]["shown"], by["infogan"]["rank"]) == (3, 4, 1)
    assert by["infogan"]["win_rate"] == 0.75 and by["vgg16"]["win_rate"] == 0.25
    assert by["infogan"]["ci_low"] < 0.75 < by["infogan"]["ci_high"]
    # BT with prior 0.5: (3.5 / 1.5) strength ratio.
    assert by["infogan"]["bt_strength"] / by["vgg16"]["bt_strength"] == pytest.approx(3.5 / 1.5)
    assert shoes["agreement"]["shared_queries"] == 1
    assert shoes["agreement"]["pairwise_agreement"] == 1.0

    everything = client.get("/v1/leaderboard").json()
    assert everything["votes"] == 5

    res = client.get("/v1/leaderboard.csv")
    assert res.status_code == 200 and res.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(res.text)))
    assert {r["catalogue"] for r in rows} == {"*", "bags", "shoes"}
    shoe_rows = {r["model"]: r for r in rows if r["catalogue"] == "shoes"}
    assert shoe_rows["infogan"]["wins"] == "3" and float(shoe_rows["infogan"]["win_rate"]) == 0.75
    only = list(csv.DictReader(io.StringIO(client.get("/v1/leaderboard.csv?catalogue=bags").text)))
    assert [(r["model"], r["wins"]) for r in only] == [("vgg16", "1"), ("infogan", "0")]
    votes_csv = client.get("/v1/votes", params={"format": "csv"}, headers=ADMIN).text
    assert len(votes_csv.strip().splitlines()) == 1 + 5 * 2  # header + one line per shown row


def test_health_ready_metrics_pages(client: httpx.Client) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"]["database"] == "ok"
    auth = annotator(client, "m")
    vote(client, auth, 1)
    vote(client, {}, 1)
    metrics = client.get("/metrics").text
    assert 'annotation_votes_total{outcome="stored"} 1.0' in metrics
    assert 'annotation_votes_total{outcome="bad_annotator"} 1.0' in metrics
    assert "python_gc_pause_seconds_bucket" in metrics  # the collector's pauses, per generation
    for path in ("/", "/annotate", "/leaderboard"):
        page = client.get(path)
        assert page.status_code == 200 and "window.FASHIONREC" in page.text
        # Without an icon link every page load asks /favicon.ico: a 404 in the console.
        icon = re.search(r'<link rel="icon" href="(/static/[^"]+)"', page.text)
        assert icon is not None, path
        got = client.get(icon.group(1))
        assert got.status_code == 200 and got.headers["content-type"].startswith("image/")
    assert '"gatewayUrl": "http://127.0.0.1:8080"' in client.get("/").text
    assert client.get("/static/annotate.js").status_code == 200
    me = client.get("/v1/annotators/me", headers=auth)
    assert me.json()["name"] == "m"


def test_secret_is_required(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError):
        create_app(AnnotationSettings(database_url=f"sqlite:///{tmp_path}/x.db"))


def test_settings_accept_plain_database_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANNOTATION_DATABASE_URL", raising=False)
    monkeypatch.setenv("DATABASE_URL", "postgresql://u@db/x")
    assert AnnotationSettings().database_url == "postgresql://u@db/x"
    monkeypatch.setenv("ANNOTATION_DATABASE_URL", "sqlite:///y.db")
    assert AnnotationSettings().database_url == "sqlite:///y.db"


def test_database_down_answers_503(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Votes must be retried, not dropped, while the database is away."""
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings = settings_for(f"postgresql+psycopg://postgres@127.0.0.1:{port}/none")
    settings.migrate_on_start = False
    with (
        running_server(create_app(settings)) as url,
        httpx.Client(base_url=url, timeout=10) as c,
    ):
        res = c.post("/v1/votes", json={"token": make_token(), "choice": 1},
                     headers={"Authorization": "Bearer ann_x"})  # fmt: skip
        assert res.status_code == 503 and res.json()["error"]["code"] == "database_unavailable"
        assert c.get("/readyz").status_code == 503
        assert c.get("/healthz").status_code == 200


def test_concurrent_duplicate_votes_store_one(client: httpx.Client) -> None:
    """The same vote sent 6 times at once (a retrying client): one 201, the rest 409."""
    auth = annotator(client, "racer")
    body = {"token": make_token(query_id="race"), "choice": 1}
    with ThreadPoolExecutor(6) as pool:
        codes = sorted(
            pool.map(lambda _: client.post("/v1/votes", json=body, headers=auth).status_code,
                     range(6))
        )  # fmt: skip
    assert codes == [201, 409, 409, 409, 409, 409]
    assert len(client.get("/v1/votes", headers=ADMIN).json()["votes"]) == 1


def test_repository_maps_unique_violations(database_url: str) -> None:
    """The race the pre-checks cannot see: the database constraints still refuse repeats."""
    engine = make_engine(database_url)
    try:
        upgrade(engine)
        repo = SqlVoteRepository(engine)
        who = repo.add_annotator("u", "0" * 64)
        first = make_comparison(query_id="q")
        repo.add_vote(NewVote(who.id, first, 1, "infogan", None, "t"))
        with pytest.raises(ReplayedToken):
            repo.add_vote(NewVote(who.id, first, 2, "vgg16", None, "t"))
        with pytest.raises(DoubleVote):
            repo.add_vote(NewVote(who.id, make_comparison(query_id="q"), 1, "infogan", None, "t"))
        with pytest.raises(AnnotatorExists):
            repo.add_annotator("u", "1" * 64)
        assert len(repo.vote_records()) == 1
    finally:
        engine.dispose()
