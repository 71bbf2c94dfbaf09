"""Durable FAISS vector search over gRPC: one index per catalogue and model."""
