"""Domain errors; the servicer maps each to one gRPC status code."""

from __future__ import annotations


class VectorSearchError(Exception):
    """Base class for every error the service reports to clients."""


class InvalidArgument(VectorSearchError):
    """The request is malformed (bad spec, bad k, unknown filter shape)."""


class DimensionMismatch(InvalidArgument):
    """A vector does not have the index dimension."""


class IndexNotFound(VectorSearchError):
    """No index with that name."""


class ItemNotFound(VectorSearchError):
    """No item with that id in the index."""


class IndexExists(VectorSearchError):
    """An index with that name but a different spec exists."""


class ResourceExhausted(VectorSearchError):
    """A size limit (batch, index capacity) would be exceeded."""
