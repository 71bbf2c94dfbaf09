"""gRPC transport: the servicer (proto <-> index calls, error -> status) and server assembly."""
