"""Seeing and mending the mirror: verify, repair, status.
"""
