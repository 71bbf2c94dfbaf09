"""VoteService with an in-memory repository: the rules, without a database."""

from __future__ import annotations

import pytest

from annotation.domain.leaderboard import VoteRecord
from annotation.domain.tokens import hash_annotator_token, sign_comparison, verify_comparison
from annotation.domain.votes import Annotator, NewVote, VoteService
from annotation.errors import BadAnnotator, DoubleVote, ForgedToken, InvalidChoice, ReplayedToken
from fashionrec_common import compare_token

from ..conftest import SECRET, make_comparison, make_token


class FakeRepo:
    def __init__(self) -> None:
        self.annotators: dict[str, Annotator] = {}
        self.votes: list[NewVote] = []

    def annotator_by_token_hash(self, token_hash: str) -> Annotator | None:
        return self.annotators.get(token_hash)

    def add_annotator(self, name: str, token_hash: str) -> Annotator:
        a = Annotator(len(self.annotators) + 1, name)
        self.annotators[token_hash] = a
        return a

    def nonce_used(self, nonce: str) -> bool:
        return any(v.comparison.nonce == nonce for v in self.votes)

    def has_voted(self, annotator_id: int, catalogue: str, query_id: str) -> bool:
        return any(
            (v.annotator_id, v.comparison.catalogue, v.comparison.query_id)
            == (annotator_id, catalogue, query_id)
            for v in self.votes
        )

    def add_vote(self, vote: NewVote) -> int:
        self.votes.append(vote)
        return len(self.votes)

    def vote_records(self, catalogue: str | None = None) -> list[VoteRecord]:
        return []


@pytest.fixture
def setup() -> tuple[VoteService, FakeRepo, str]:
    repo = FakeRepo()
    service = VoteService(repo, SECRET, token_max_age_s=60)
    _, bearer = service.register("alice")
    return service, repo, bearer


def test_token_round_trip_keeps_display_order() -> None:
    c = make_comparison(models=("vgg16", "infogan"))
    back = verify_comparison(SECRET, sign_comparison(SECRET, c), 60)
    assert back == c and [r.model for r in back.rows] == ["vgg16", "infogan"]


def test_annotator_token_is_stored_hashed(setup) -> None:  # type: ignore[no-untyped-def]
    _, repo, bearer = setup
    assert bearer.startswith("ann_") and list(repo.annotators) == [hash_annotator_token(bearer)]


def test_vote_maps_row_to_hidden_model(setup) -> None:  # type: ignore[no-untyped-def]
    service, repo, bearer = setup
    service.cast(bearer, make_token(models=("vgg16", "infogan")), 2, 1200)
    assert repo.votes[0].chosen_model == "infogan" and repo.votes[0].duration_ms == 1200


def test_none_is_similar(setup) -> None:  # type: ignore[no-untyped-def]
    service, repo, bearer = setup
    service.cast(bearer, make_token(), 0, None)
    assert repo.votes[0].choice == 0 and repo.votes[0].chosen_model is None


@pytest.mark.parametrize(
    "token",
    [
        make_token(secret="another-secret-entirely-000000"),
        "not-a-token",
        make_token()[:-3] + "AAA",
        compare_token.seal(SECRET, {"query_id": "q"}),
        compare_token.seal(SECRET, {"query_id": "q", "catalogue": "c", "rows": [], "nonce": "n"}),
        compare_token.seal(SECRET, ["a", "list"]),
        compare_token.seal(SECRET, {"x": 1})[len(compare_token.PREFIX) :],  # no version prefix
        "fc1." + compare_token.seal(SECRET, {"x": 1})[len(compare_token.PREFIX) :],
    ],
)
def test_forged_tokens_are_rejected(setup, token: str) -> None:  # type: ignore[no-untyped-def]
    service, repo, bearer = setup
    with pytest.raises(ForgedToken):
        service.cast(bearer, token, 1, None)
    assert repo.votes == []


def test_expired_token_is_rejected(setup) -> None:  # type: ignore[no-untyped-def]
    service, _, bearer = setup
    service.token_max_age_s = -1  # every token is older than that
    with pytest.raises(ForgedToken, match="expired"):
        service.cast(bearer, make_token(), 1, None)


def test_replay_and_double_vote(setup) -> None:  # type: ignore[no-untyped-def]
    service, repo, bearer = setup
    token = make_token(query_id="q9")
    service.cast(bearer, token, 1, None)
    with pytest.raises(ReplayedToken):
        service.cast(bearer, token, 2, None)
    with pytest.raises(DoubleVote):  # a fresh token for the same query
        service.cast(bearer, make_token(query_id="q9"), 2, None)
    assert len(repo.votes) == 1


@pytest.mark.parametrize("bearer", [None, "", "ann_unknown"])
def test_bad_annotator(setup, bearer) -> None:  # type: ignore[no-untyped-def]
    service, _, _ = setup
    with pytest.raises(BadAnnotator):
        service.cast(bearer, make_token(), 1, None)


def test_choice_out_of_range(setup) -> None:  # type: ignore[no-untyped-def]
    service, _, bearer = setup
    with pytest.raises(InvalidChoice):
        service.cast(bearer, make_token(models=("a", "b")), 3, None)
