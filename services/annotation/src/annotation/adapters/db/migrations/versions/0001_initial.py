"""Annotators, votes and the rows shown with each vote.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "annotators",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    )
    op.create_table(
        "votes",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("nonce", sa.String(128), nullable=False, unique=True),
        sa.Column("catalogue", sa.String(200), nullable=False),
        sa.Column("query_id", sa.String(200), nullable=False),
        sa.Column("annotator_id", sa.Integer(), sa.ForeignKey("annotators.id"), nullable=False),
        sa.Column("choice", sa.Integer(), nullable=False),
        sa.Column("chosen_model", sa.String(200), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=True),
        sa.Column("token", sa.Text(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.UniqueConstraint(
            "annotator_id", "catalogue", "query_id", name="uq_votes_annotator_query"
        ),
    )
    op.create_index("ix_votes_catalogue", "votes", ["catalogue"])
    op.create_table(
        "vote_rows",
        sa.Column(
            "vote_id",
            sa.Integer(),
            sa.ForeignKey("votes.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("position", sa.Integer(), primary_key=True),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("item_ids", sa.JSON(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("vote_rows")
    op.drop_index("ix_votes_catalogue", table_name="votes")
    op.drop_table("votes")
    op.drop_table("annotators")
