"""API rate limits: token buckets per enterprise, for operators and per client address.

``bucket.py`` is the arithmetic (GCRA, the token bucket as one timestamp per
key), ``stores.py`` / ``database.py`` / ``redis_store.py`` keep that timestamp
in process memory, in the database or in Redis, ``limiter.py`` names the
buckets, and ``admission.py`` is the one rule every HTTP request goes through
before anything runs. ``service.py`` holds the operators' per-enterprise override.
"""
