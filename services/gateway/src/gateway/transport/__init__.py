"""Transport layers: REST (``rest/``, FastAPI) and gRPC (``grpc_api.py``); thin, no logic."""
