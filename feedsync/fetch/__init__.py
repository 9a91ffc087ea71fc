"""Fetch: bring the digest in from where the config says, politely.

``http`` is the client (timeouts, retries, conditional GET, the token), ``quota`` paces it
by the Hub's rate limits, ``sources`` decides which URLs or files a run reads and hands
what they hold to whoever stores it.
"""
