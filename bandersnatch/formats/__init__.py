"""Pure parsing and rendering: upstream's pages and our own (HTML, JSON, the JSON API copy),
where each object lives (layout), what a path segment and a serial may be, release file names and
versions. No network, no disk. May import only errors and names (the top's leaves).
"""
