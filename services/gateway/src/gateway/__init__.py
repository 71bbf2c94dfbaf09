"""The front door: REST for shops, gRPC for internal services, embed-then-search with a cache."""
