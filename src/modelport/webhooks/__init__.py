"""Signed HTTP deliveries: the sender alerts and registry events share, and the
dispatcher that posts registry events to the ``[webhooks.NAME]`` receivers.

``sending`` signs a body and POSTs it with retries; ``envelope`` wraps a registry event
into the JSON a receiver gets; ``dispatcher`` delivers envelopes from a background
thread so that a registry write never waits for a receiver.
"""
