"""Embed-then-search, caching and compare logic; imports no web/RPC/Redis code."""
