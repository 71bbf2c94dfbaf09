"""A TensorFlow-Serving-compatible model server (gRPC + REST) over a TF Serving model repository.

Layers: ``domain/`` (``manager``: servables, versions, polling; ``dataplane``: predict, metadata,
status, batching, limits) is protocol-agnostic; ``transport/`` (``grpc_api``, ``rest_api``) is
thin; ``adapters/servable`` loads SavedModels with TensorFlow; ``errors`` maps domain errors to
gRPC and HTTP status once. It never imports the workbench (``embedder``).
"""
