"""Blinded side-by-side rows for human votes, with a signed token the annotation service checks."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Sequence

from itsdangerous import URLSafeTimedSerializer

from gateway.domain.recommend import Recommender
from gateway.domain.timing import Timings
from gateway.domain.types import Hit, StoredItem
from gateway.errors import InvalidInput

TOKEN_SALT = "fashionrec.compare.v1"


def serializer(secret: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret, salt=TOKEN_SALT)


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

    Model names never leave in the clear: only the signed token records which row is which.
    """
    names = list(dict.fromkeys(m.strip() for m in models if m.strip()))
    if not 2 <= len(names) <= 8:
        raise InvalidInput("compare needs between 2 and 8 distinct models")
    catalogue, query = await recommender.find_item(item_id, catalogue, names[0], with_vector=False)
    results = await asyncio.gather(
        *(
            recommender.similar(
                item_id, catalogue=catalogue, model=m, k=k, filters={}, timings=timings
            )
            for m in names
        )
    )
    order = list(range(len(names)))
    secrets.SystemRandom().shuffle(order)
    rows = [results[i].items for i in order]
    payload = {
        "query_id": item_id,
        "catalogue": catalogue,
        "rows": [{"model": names[i], "items": [h.id for h in results[i].items]} for i in order],
        "nonce": secrets.token_hex(16),
    }
    return query, catalogue, rows, serializer(secret).dumps(payload)
