"""The agent loop's sans-IO parts: which tools lynkr offers and owns, how several model rounds stream to the
client as one message, and how the rounds the client never saw are spliced back into its next request.

Nothing here does I/O or imports trio; the session actor (``lynkr/actors/session.py``) drives these pieces.
"""
