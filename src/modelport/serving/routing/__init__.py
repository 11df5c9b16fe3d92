"""Routers: targets that wrap the targets of a deployment's arms (``serving.target``).

``DeploymentRouter`` answers a deployment's requests with one of its live arms, picked
by weight (``weighted``) or by a sticky key (``sticky``), and copies some requests to
its shadow arms after the live arm answered (``shadow``).
"""
