"""REST transport: FastAPI app, routes, guards; maps domain errors to HTTP in one place."""
