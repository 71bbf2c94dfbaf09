"""A TensorFlow-Serving-compatible model server (gRPC + REST) over a TF Serving model repository.

Layers: ``manager`` (servables, versions, polling) and ``dataplane`` (predict, metadata, status,
batching, limits) are protocol-agnostic; ``grpc_api`` and ``rest_api`` are thin adapters;
``errors`` maps domain errors to gRPC and HTTP status once.
"""
