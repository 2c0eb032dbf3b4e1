"""The local LimaCharlie-compatible search service behind ``lcq serve``.

It imports only the standard library and its own modules, so it can ship
without the rest of lcq.
"""
