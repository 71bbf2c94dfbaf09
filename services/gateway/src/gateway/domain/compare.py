"""Blinded side-by-side rows for human votes, and the encrypted token that unblinds the vote."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Sequence

from fashionrec_common import compare_token
from fashionrec_common.compare_token import Comparison, ShownRow
from gateway.domain.recommend import Recommender
from gateway.domain.timing import Timings
from gateway.domain.types import Hit, RecommendQuery, StoredItem
from gateway.errors import InvalidInput


async def compare(
    recommender: Recommender,
    *,
    item_id: str,
    catalogue: str | None,
    models: Sequence[str],
    k: int,
    secret: str,
    timings: Timings,
) -> tuple[StoredItem, str, list[list[Hit]], str]:
    """Returns (query item, catalogue, rows of hits in display order, token).

    Model names never leave in the clear: only the encrypted token (``fashionrec_common.
    compare_token``, shared with the annotation service) records which row is which.
    """
    names = list(dict.fromkeys(m.strip() for m in models if m.strip()))
    if not 2 <= len(names) <= 8:
        raise InvalidInput("compare needs between 2 and 8 distinct models")
    catalogue, query = await recommender.find_item(item_id, catalogue, names[0], with_vector=False)
    results = await asyncio.gather(
        *(recommender.similar(item_id, RecommendQuery(catalogue, m, k), timings) for m in names)
    )
    order = list(range(len(names)))
    secrets.SystemRandom().shuffle(order)
    rows = [results[i].items for i in order]
    comparison = Comparison(
        query_id=item_id,
        catalogue=catalogue,
        rows=tuple(
            ShownRow(model=names[i], items=tuple(h.id for h in results[i].items)) for i in order
        ),
        nonce=secrets.token_hex(16),
    )
    return query, catalogue, rows, compare_token.encode(secret, comparison)
