"""JSON API: votes, annotators, leaderboard (JSON and CSV), vote export, health."""

from __future__ import annotations

import csv
import hmac
import io
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse, Response

from annotation.adapters.db.repository import SqlVoteRepository
from annotation.domain.leaderboard import Leaderboard, compute_leaderboard
from annotation.domain.votes import VoteService
from annotation.errors import AdminDenied
from annotation.transport.rest.schemas import (
    CSV_FIELDS,
    AnnotatorIn,
    AnnotatorOut,
    VoteIn,
    VoteOut,
    leaderboard_json,
)

router = APIRouter()
Catalogue = Annotated[str | None, Query(max_length=200)]


def _service(request: Request) -> VoteService:
    return request.app.state.service  # type: ignore[no-any-return]


def _repo(request: Request) -> SqlVoteRepository:
    return request.app.state.repo  # type: ignore[no-any-return]


def _bearer(authorization: str | None) -> str | None:
    if authorization and authorization.lower().startswith("bearer "):
        return authorization[7:].strip() or None
    return None


def _require_admin(request: Request, key: str | None) -> None:
    configured = request.app.state.settings.admin_key
    if configured is None or not configured.get_secret_value():
        raise AdminDenied("the admin API is disabled: set ANNOTATION_ADMIN_KEY")
    if not key or not hmac.compare_digest(key, configured.get_secret_value()):
        raise AdminDenied("wrong admin key")


@router.post("/v1/votes", status_code=201, response_model=VoteOut)
def cast_vote(
    body: VoteIn, request: Request, authorization: Annotated[str | None, Header()] = None
) -> VoteOut:
    vote_id, annotator = _service(request).cast(
        _bearer(authorization), body.token, body.choice, body.duration_ms
    )
    request.app.state.votes_total.labels("stored").inc()
    return VoteOut(vote_id=vote_id, annotator=annotator.name, choice=body.choice)


@router.post("/v1/annotators", status_code=201, response_model=AnnotatorOut)
def add_annotator(
    body: AnnotatorIn,
    request: Request,
    x_admin_key: Annotated[str | None, Header()] = None,
) -> AnnotatorOut:
    """Create an annotator; the token in the response is shown only this once."""
    _require_admin(request, x_admin_key)
    annotator, token = _service(request).register(body.name)
    return AnnotatorOut(id=annotator.id, name=annotator.name, token=token)


@router.get("/v1/annotators/me", response_model=AnnotatorOut)
def whoami(request: Request, authorization: Annotated[str | None, Header()] = None) -> AnnotatorOut:
    """Lets the annotator page check a token at sign-in."""
    annotator = _service(request).authenticate(_bearer(authorization))
    return AnnotatorOut(id=annotator.id, name=annotator.name)


def _board(request: Request, catalogue: str | None) -> Leaderboard:
    return compute_leaderboard(_repo(request).vote_records(catalogue), catalogue)


@router.get("/v1/leaderboard")
def leaderboard(request: Request, catalogue: Catalogue = None) -> dict[str, object]:
    """Per-model wins, win-rate with Wilson 95 % CI, Bradley-Terry rank, annotator agreement."""
    return leaderboard_json(_board(request, catalogue), _repo(request).catalogues())


@router.get("/v1/leaderboard.csv")
def leaderboard_csv(request: Request, catalogue: Catalogue = None) -> Response:
    """One row per model; without ``catalogue``: all catalogues ("*") then each one."""
    names = [catalogue] if catalogue else [None, *_repo(request).catalogues()]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_FIELDS)
    for name in names:
        for m in _board(request, name).models:
            writer.writerow(
                [name or "*", m.rank, m.model, m.shown, m.wins]
                + [f"{x:.6f}" for x in (m.win_rate, m.ci_low, m.ci_high, m.bt_strength)]
            )
    return Response(
        out.getvalue(),
        media_type="text/csv",
        headers={"Content-Disposition": 'attachment; filename="leaderboard.csv"'},
    )


@router.get("/v1/votes", response_model=None)
def export_votes(
    request: Request,
    catalogue: Catalogue = None,
    format: Annotated[str, Query(pattern="^(json|csv)$")] = "json",
    x_admin_key: Annotated[str | None, Header()] = None,
) -> Response | dict[str, object]:
    """Raw votes with the rows shown (admin only: it names annotators)."""
    _require_admin(request, x_admin_key)
    votes = _repo(request).export_votes(catalogue)
    if format == "json":
        return {"votes": votes}
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["id", "catalogue", "query_id", "annotator", "choice", "chosen_model",
                     "duration_ms", "created_at", "row", "model", "items"])  # fmt: skip
    for v in votes:
        for r in v["rows"]:
            writer.writerow([v["id"], v["catalogue"], v["query_id"], v["annotator"], v["choice"],
                             v["chosen_model"], v["duration_ms"], v["created_at"], r["row"],
                             r["model"], " ".join(r["items"])])  # fmt: skip
    return Response(out.getvalue(), media_type="text/csv")


@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    ok, report = await request.app.state.readiness.run()
    return JSONResponse({"ready": ok, "checks": report}, status_code=200 if ok else 503)
