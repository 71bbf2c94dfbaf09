"""Protocol-agnostic serving: model versions, predict, batching, limits."""
