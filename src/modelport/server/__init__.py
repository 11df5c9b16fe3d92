"""The HTTP server: ASGI app, protocol adapters, error -> status table."""
