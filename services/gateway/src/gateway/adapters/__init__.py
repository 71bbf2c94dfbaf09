"""Clients of other systems: embedder, vector-search or Milvus, annotation, Redis, image URLs."""
