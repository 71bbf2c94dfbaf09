"""HTTP transport: JSON API, HTML pages, error mapping."""
