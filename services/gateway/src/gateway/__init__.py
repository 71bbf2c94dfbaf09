"""The front door: REST for shop frontends, gRPC for internal services, embed-then-search with a Redis cache."""
