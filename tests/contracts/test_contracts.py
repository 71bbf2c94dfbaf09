"""Contracts between services, defined once in libs/common and checked from both sides.

- Index names: what the gateway builds is what vector-search accepts; what vector-search
  refuses (paths out of its data directory) the gateway never builds from valid names.
- Compare tokens: a token the gateway mints for ``/v1/compare`` is what annotation opens to
  record a vote, and a token minted with another secret or tampered with is refused.
"""

from __future__ import annotations

import pytest

from annotation.domain.tokens import verify_comparison
from annotation.errors import AnnotationError
from fashionrec_common import compare_token, index_names
from fashionrec_common.compare_token import Comparison, ShownRow
from gateway.domain.types import index_name
from vector_search.errors import InvalidArgument
from vector_search.index.spec import IndexSpec

VALID = [("shoes", "infogan"), ("handbags", "mobilenet_v2_ft"), ("a.b-c", "X" * 64)]
INVALID = [("..", "infogan"), ("shoes", ".."), ("sh oes", "m"), ("shoes", "m/x/y/z"), ("", "m")]


@pytest.mark.parametrize("catalogue,model", VALID)
def test_contract_gateway_index_names_are_accepted_by_vector_search(
    catalogue: str, model: str
) -> None:
    name = index_name(catalogue, model)
    assert name == index_names.index_name(catalogue, model) == f"{catalogue}/{model}"
    assert IndexSpec(name=name, dimension=8).validate().name == name


@pytest.mark.parametrize("catalogue,model", INVALID)
def test_contract_invalid_parts_are_refused_on_both_sides(catalogue: str, model: str) -> None:
    assert not (index_names.valid_part(catalogue) and index_names.valid_part(model))
    with pytest.raises(InvalidArgument):
        IndexSpec(name=index_name(catalogue, model), dimension=8).validate()


def _comparison() -> Comparison:
    """Built as ``gateway.domain.compare`` builds it (rows in a shuffled order, a nonce)."""
    rows = (ShownRow("infogan", ("a", "b")), ShownRow("mobilenet_v2", ("c",)))
    return Comparison(query_id="q1", catalogue="shoes", rows=rows, nonce="n" * 32)


def test_contract_gateway_compare_token_opens_in_annotation() -> None:
    secret = "s" * 32
    token = compare_token.encode(secret, _comparison())  # what gateway.domain.compare returns
    opened = verify_comparison(secret, token, max_age_s=60)
    assert opened == _comparison()


def _tampered(token: str) -> str:
    """One base64url character changed where all six of its bits count (not the last of a
    part, whose low bits may be padding and decode to the same bytes)."""
    at = next(i for i in range(len(token) // 2, len(token)) if token[i] not in "." and
              token[i + 1] not in ".")  # fmt: skip
    return token[:at] + ("A" if token[at] != "A" else "B") + token[at + 1 :]


def test_contract_compare_token_from_another_secret_or_tampered_is_refused() -> None:
    token = compare_token.encode("a" * 32, _comparison())
    with pytest.raises(AnnotationError):
        verify_comparison("b" * 32, token, max_age_s=60)
    with pytest.raises(AnnotationError):
        verify_comparison("a" * 32, _tampered(token), 60)
