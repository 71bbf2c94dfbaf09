"""Request/response bodies of the JSON API."""

from __future__ import annotations

from dataclasses import asdict

from pydantic import BaseModel, Field

from annotation.domain.leaderboard import Leaderboard


class VoteIn(BaseModel):
    token: str = Field(min_length=1, max_length=20_000)
    choice: int = Field(ge=0, le=99, description="1-based row number; 0 = none is similar")
    duration_ms: int | None = Field(default=None, ge=0)


class VoteOut(BaseModel):
    vote_id: int
    annotator: str
    choice: int


class AnnotatorIn(BaseModel):
    name: str = Field(min_length=1, max_length=200, pattern=r"^[\w .@-]+$")


class AnnotatorOut(BaseModel):
    id: int
    name: str
    token: str | None = None


def leaderboard_json(board: Leaderboard, catalogues: list[str]) -> dict[str, object]:
    body = asdict(board)
    body["catalogues"] = catalogues
    return body


CSV_FIELDS = (
    "catalogue",
    "rank",
    "model",
    "shown",
    "wins",
    "win_rate",
    "ci_low",
    "ci_high",
    "bt_strength",
)
