"""The index-naming contract between the gateway and the vector stores: ``<catalogue>/<model>``.

The gateway builds names with :func:`index_name`; vector-search refuses any name that does not
match :data:`INDEX_NAME` (a path inside its data directory, so ``..`` is never allowed). One
definition, tested from both sides in ``tests/contracts``.
"""

from __future__ import annotations

import re

PART = r"[A-Za-z0-9_.-]{1,64}"
"""A catalogue or model name (also the OpenAPI pattern of ``model``)."""
PART_NAME = re.compile(PART)
INDEX_NAME = re.compile(rf"^{PART}(/{PART}){{0,2}}$")


def valid_part(name: str) -> bool:
    return bool(PART_NAME.fullmatch(name)) and name not in (".", "..")


def index_name(catalogue: str, model: str) -> str:
    """The index holding ``model``'s vectors of ``catalogue``. Callers validate the parts
    (:func:`valid_part`) at their edge; a store refuses a name that is not valid."""
    return f"{catalogue}/{model}"


def valid_index_name(name: str) -> bool:
    return bool(INDEX_NAME.match(name)) and ".." not in name
