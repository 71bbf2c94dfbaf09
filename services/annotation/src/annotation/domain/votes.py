"""Recording a vote: authenticate the annotator, verify the comparison, refuse repeats."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from annotation.domain.leaderboard import VoteRecord
from annotation.domain.tokens import (
    Comparison,
    hash_annotator_token,
    new_annotator_token,
    verify_comparison,
)
from annotation.errors import BadAnnotator, DoubleVote, InvalidChoice, ReplayedToken


@dataclass(frozen=True)
class Annotator:
    id: int
    name: str


@dataclass(frozen=True)
class NewVote:
    annotator_id: int
    comparison: Comparison
    choice: int
    chosen_model: str | None
    duration_ms: int | None
    token: str


class VoteRepository(Protocol):
    """Storage port; ``db.repository.SqlVoteRepository`` implements it."""

    def annotator_by_token_hash(self, token_hash: str) -> Annotator | None: ...
    def add_annotator(self, name: str, token_hash: str) -> Annotator: ...
    def nonce_used(self, nonce: str) -> bool: ...
    def has_voted(self, annotator_id: int, catalogue: str, query_id: str) -> bool: ...
    def add_vote(self, vote: NewVote) -> int: ...
    def vote_records(self, catalogue: str | None = None) -> list[VoteRecord]: ...


@dataclass
class VoteService:
    repo: VoteRepository
    token_secret: str
    token_max_age_s: int

    def authenticate(self, bearer: str | None) -> Annotator:
        if not bearer:
            raise BadAnnotator("an annotator token is required")
        annotator = self.repo.annotator_by_token_hash(hash_annotator_token(bearer))
        if annotator is None:
            raise BadAnnotator("unknown or disabled annotator token")
        return annotator

    def register(self, name: str) -> tuple[Annotator, str]:
        """Create an annotator; the plain token is returned once and never stored."""
        token = new_annotator_token()
        return self.repo.add_annotator(name, hash_annotator_token(token)), token

    def cast(
        self, bearer: str | None, token: str, choice: int, duration_ms: int | None
    ) -> tuple[int, Annotator]:
        """Store one vote; ``choice`` is the 1-based row, 0 meaning "none is similar"."""
        annotator = self.authenticate(bearer)
        comparison = verify_comparison(self.token_secret, token, self.token_max_age_s)
        if not 0 <= choice <= len(comparison.rows):
            raise InvalidChoice(f"choice must be 0..{len(comparison.rows)}, got {choice}")
        if self.repo.nonce_used(comparison.nonce):
            raise ReplayedToken("this comparison was already voted on")
        if self.repo.has_voted(annotator.id, comparison.catalogue, comparison.query_id):
            raise DoubleVote("this annotator already voted on this query")
        chosen = comparison.rows[choice - 1].model if choice else None
        vote = NewVote(annotator.id, comparison, choice, chosen, duration_ms, token)
        return self.repo.add_vote(vote), annotator
