"""Thin gRPC and REST layers over the dataplane (TF Serving's wire formats)."""
