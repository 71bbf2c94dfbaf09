"""The native Search front (libvsfront.so.0, built from services/vector-search/native/)."""
