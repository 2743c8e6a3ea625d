"""The HTTP edge: an ASGI app served by hypercorn under trio."""
