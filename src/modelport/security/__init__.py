"""API keys and their scopes, rate limits and quotas: who may call what, how often.

``principal`` holds the types the HTTP guard and the limiters share: the ``Principal``
an API key authenticates as, and the ``Admission`` protocol a rate limiter implements.
"""
