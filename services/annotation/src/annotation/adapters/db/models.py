"""Tables. The schema is created by Alembic (adapters/db/migrations), never by ``create_all``."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class Base(DeclarativeBase):
    pass


class AnnotatorRow(Base):
    __tablename__ = "annotators"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class VoteRow(Base):
    __tablename__ = "votes"
    __table_args__ = (
        UniqueConstraint("annotator_id", "catalogue", "query_id", name="uq_votes_annotator_query"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    nonce: Mapped[str] = mapped_column(String(128), unique=True)
    catalogue: Mapped[str] = mapped_column(String(200), index=True)
    query_id: Mapped[str] = mapped_column(String(200))
    annotator_id: Mapped[int] = mapped_column(ForeignKey("annotators.id"))
    choice: Mapped[int] = mapped_column(Integer)
    chosen_model: Mapped[str | None] = mapped_column(String(200), nullable=True)
    duration_ms: Mapped[int | None] = mapped_column(Integer, nullable=True)
    token: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    annotator: Mapped[AnnotatorRow] = relationship()
    rows: Mapped[list[ShownRowRow]] = relationship(
        order_by="ShownRowRow.position", cascade="all, delete-orphan"
    )


class ShownRowRow(Base):
    """One result row the annotator saw: its position, hidden model name and item ids."""

    __tablename__ = "vote_rows"

    vote_id: Mapped[int] = mapped_column(
        ForeignKey("votes.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    model: Mapped[str] = mapped_column(String(200))
    item_ids: Mapped[list[str]] = mapped_column(JSON)
