"""Milvus collection names and filter expressions: reversible names, hostile values escaped.

Literals are read back with Milvus Lite's own tokenizer and parser, so "escaped" means what
Milvus reads, not what we think it reads.
"""

from __future__ import annotations

import pytest

from gateway.adapters.milvus_names import (
    collection_name,
    filter_expr,
    ids_expr,
    index_of_collection,
    search_expr,
    string_literal,
)

tokens = pytest.importorskip("milvus_lite.search.filter.tokens")
parser = pytest.importorskip("milvus_lite.search.filter.parser")

P = "fashionrec_"
HOSTILE = [
    'a"b',
    "a'b",
    "back\\slash",
    "trailing\\",
    '\\"',
    '"] or id != "',
    "x) or (true",
    "[brackets]",
    "tab\tnew\nline\rret",
    "ünïcødé ✓",
    "",
]


@pytest.mark.parametrize(
    ("index", "expected"),
    [
        ("shoes/infogan", "fashionrec_shoes_2finfogan"),
        ("shoes/mobilenet_v2", "fashionrec_shoes_2fmobilenet_5fv2"),
        ("a-b.c/d", "fashionrec_a_2db_2ec_2fd"),
    ],
)
def test_collection_names_are_escaped_and_reversible(index: str, expected: str) -> None:
    assert collection_name(index, P) == expected
    assert index_of_collection(expected, P) == index


def test_names_stay_distinct_and_unicode_round_trips() -> None:
    names = ["a/b", "a_b", "a_2fb", "a__b", "é/x"]
    colls = [collection_name(n, P) for n in names]
    assert len(set(colls)) == len(names)
    assert all(c.replace("_", "").isalnum() and c.isascii() for c in colls)
    assert [index_of_collection(c, P) for c in colls] == names


@pytest.mark.parametrize(
    "name",
    [
        "fashionrec__generations",  # the adapter's own bookkeeping collection
        "other_shoes_2finfogan",  # another prefix
        "fashionrec_shoes_2Finfogan",  # not what the encoder writes (uppercase hex)
        "fashionrec_shoes_2",  # truncated escape
        "fashionrec_",
    ],
)
def test_foreign_collections_are_not_indexes(name: str) -> None:
    assert index_of_collection(name, P) is None


def test_too_long_names_are_refused() -> None:
    with pytest.raises(ValueError):
        collection_name("x/" + "_" * 120, P)


@pytest.mark.parametrize("value", HOSTILE)
def test_string_literal_reads_back_exactly(value: str) -> None:
    toks = tokens.tokenize(string_literal(value))
    assert toks[0].kind == tokens.TokenKind.STRING
    assert toks[0].value == value
    assert [t.kind for t in toks[1:]] in ([], [tokens.TokenKind.EOF])


@pytest.mark.parametrize("value", HOSTILE[:-1])
def test_hostile_filter_keys_and_values_stay_one_comparison_each(value: str) -> None:
    """A key or value that tries to close its literal and add a clause is still data:
    the parsed tree is AND(OR(cmp, cmp), OR(cmp)) with exactly the keys and values given."""
    tree = parser.parse_expr(filter_expr({value: [value, "plain"], "class": ["heels"]}))
    assert type(tree).__name__ == "And"
    groups = []
    for group in tree.operands:
        cmps = group.operands if type(group).__name__ == "Or" else (group,)
        assert all(type(c).__name__ == "CmpOp" and c.op == "==" for c in cmps)
        assert all(c.left.base.name == "meta" for c in cmps)
        groups.append(sorted((c.left.path, c.right.value) for c in cmps))
    assert sorted(groups) == sorted(
        [[(("class",), "heels")], sorted([((value,), value), ((value,), "plain")])]
    )


def test_filter_shapes() -> None:
    assert filter_expr({"class": ["flats", "heels"]}) == (
        '(meta["class"] == "flats" or meta["class"] == "heels")'
    )
    assert search_expr({}, None) == ""
    assert search_expr({}, 'a"b') == 'id != "a\\"b"'
    assert ids_expr(["1", 'x"]']) == 'id in ["1", "x\\"]"]'
    with pytest.raises(ValueError):
        filter_expr({"class": []})
