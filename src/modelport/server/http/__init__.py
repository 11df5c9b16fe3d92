"""The HTTP side of the server: the ASGI app, its routes per protocol, and the
error -> status table."""
