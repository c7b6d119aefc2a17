"""Seeing and mending the mirror: verify, repair, status.
May import sync, the composition root (runtime) and everything below; never stats or cli.
"""
