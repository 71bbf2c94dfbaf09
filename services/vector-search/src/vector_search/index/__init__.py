"""The domain of vector-search: engine -> collection -> managed (WAL, snapshots) -> registry."""
