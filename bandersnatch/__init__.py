"""bandersnatch: a PyPI mirror client (PEP 381, 503, 592, 629, 658/714, 691, 700)."""

__version__ = "10.0.0.dev0"
