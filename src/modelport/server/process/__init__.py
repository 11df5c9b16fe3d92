"""The process side of the server: the supervisor, its worker processes, the channel
between them and the listening sockets. It reaches the HTTP side only through the app
factory named in the worker spec."""
