"""Embed-then-search, caching, sharding and compare logic; imports no web/RPC/Redis code."""
