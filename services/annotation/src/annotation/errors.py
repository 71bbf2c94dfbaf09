"""Domain errors; ``transport/rest/app.py`` maps each to one HTTP status, in one place."""

from __future__ import annotations


class AnnotationError(Exception):
    """Base class; ``code`` is a stable machine-readable name for clients."""

    code = "annotation_error"


class ForgedToken(AnnotationError):
    """The compare token's signature, age or payload is not valid (HTTP 400)."""

    code = "invalid_token"


class InvalidChoice(AnnotationError):
    """The chosen row does not exist in the comparison (HTTP 400)."""

    code = "invalid_choice"


class ReplayedToken(AnnotationError):
    """This compare token was already used for a vote (HTTP 409)."""

    code = "token_replayed"


class DoubleVote(AnnotationError):
    """This annotator already voted on this query (HTTP 409)."""

    code = "double_vote"


class BadAnnotator(AnnotationError):
    """Missing, unknown or disabled annotator token (HTTP 401)."""

    code = "bad_annotator"


class AnnotatorExists(AnnotationError):
    """An annotator with that name exists already (HTTP 409)."""

    code = "annotator_exists"


class AdminDenied(AnnotationError):
    """Wrong admin key, or the admin API is disabled because no key is configured (HTTP 403)."""

    code = "admin_denied"
