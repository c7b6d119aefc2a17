"""PEP 381 download statistics for the mirror (``bandersnatch update-stats``).

The web server's access logs are the only record of who downloaded what, so
this package turns them into the PEP 381 per-day files under
``web/local-stats/days/`` plus a page an operator can look at.  Pure parts
(line parsing, user agents, file names, aggregation, rendering) are kept apart
from the one module that touches the disk, :mod:`bandersnatch.stats.command`.
May import what sync may; today it needs only store and formats.
"""
