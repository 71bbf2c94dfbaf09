"""Adapters to the embedder, vector-search, annotation and the cache."""
