"""SQLAlchemy implementation of the domain's ``VoteRepository``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import fields
from typing import Any

from sqlalchemy import Engine, exists, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload, sessionmaker

from annotation.adapters.db.models import AnnotatorRow, ShownRowRow, VoteRow
from annotation.domain.leaderboard import VoteRecord
from annotation.domain.votes import Annotator, NewVote
from annotation.errors import AnnotatorExists, DoubleVote, ReplayedToken


class SqlVoteRepository:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    @contextmanager
    def _session(self) -> Iterator[Session]:
        with self._sessions.begin() as session:
            yield session

    def ping(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    def annotator_by_token_hash(self, token_hash: str) -> Annotator | None:
        with self._session() as s:
            row = s.scalar(
                select(AnnotatorRow).where(
                    AnnotatorRow.token_hash == token_hash, AnnotatorRow.active.is_(True)
                )
            )
            return Annotator(row.id, row.name) if row else None

    def add_annotator(self, name: str, token_hash: str) -> Annotator:
        try:
            with self._session() as s:
                row = AnnotatorRow(name=name, token_hash=token_hash, active=True)
                s.add(row)
                s.flush()
                return Annotator(row.id, row.name)
        except IntegrityError as exc:
            raise AnnotatorExists(f"annotator {name!r} exists already") from exc

    def nonce_used(self, nonce: str) -> bool:
        with self._session() as s:
            return bool(s.scalar(select(exists().where(VoteRow.nonce == nonce))))

    def has_voted(self, annotator_id: int, catalogue: str, query_id: str) -> bool:
        with self._session() as s:
            return bool(
                s.scalar(
                    select(
                        exists().where(
                            VoteRow.annotator_id == annotator_id,
                            VoteRow.catalogue == catalogue,
                            VoteRow.query_id == query_id,
                        )
                    )
                )
            )

    def add_vote(self, vote: NewVote) -> int:
        c = vote.comparison
        # The vote's own fields are stored as they are, each in the column of the same name.
        own = {f.name: getattr(vote, f.name) for f in fields(vote) if f.name != "comparison"}
        row = VoteRow(
            nonce=c.nonce,
            catalogue=c.catalogue,
            query_id=c.query_id,
            rows=[
                ShownRowRow(position=i, model=r.model, item_ids=list(r.items))
                for i, r in enumerate(c.rows, start=1)
            ],
            **own,
        )
        try:
            with self._session() as s:
                s.add(row)
                s.flush()
                return row.id
        except IntegrityError as exc:
            # A concurrent request won the race the pre-checks could not see.
            if self.nonce_used(c.nonce):
                raise ReplayedToken("this comparison was already voted on") from exc
            raise DoubleVote("this annotator already voted on this query") from exc

    def _votes(self, s: Session, catalogue: str | None) -> list[VoteRow]:
        query = select(VoteRow).options(selectinload(VoteRow.rows), selectinload(VoteRow.annotator))
        if catalogue is not None:
            query = query.where(VoteRow.catalogue == catalogue)
        return list(s.scalars(query.order_by(VoteRow.id)))

    def vote_records(self, catalogue: str | None = None) -> list[VoteRecord]:
        with self._session() as s:
            return [
                VoteRecord(
                    catalogue=v.catalogue,
                    query_id=v.query_id,
                    annotator=v.annotator.name,
                    models=tuple(r.model for r in v.rows),
                    chosen=v.chosen_model,
                )
                for v in self._votes(s, catalogue)
            ]

    def export_votes(self, catalogue: str | None = None) -> list[dict[str, Any]]:
        """Every stored vote with its rows, for the JSON/CSV export."""
        with self._session() as s:
            return [
                {
                    "id": v.id,
                    "catalogue": v.catalogue,
                    "query_id": v.query_id,
                    "annotator": v.annotator.name,
                    "choice": v.choice,
                    "chosen_model": v.chosen_model,
                    "duration_ms": v.duration_ms,
                    "created_at": v.created_at.isoformat() if v.created_at else None,
                    "rows": [
                        {"row": r.position, "model": r.model, "items": r.item_ids} for r in v.rows
                    ],
                }
                for v in self._votes(s, catalogue)
            ]

    def catalogues(self) -> list[str]:
        with self._session() as s:
            return list(s.scalars(select(VoteRow.catalogue).distinct().order_by(VoteRow.catalogue)))
