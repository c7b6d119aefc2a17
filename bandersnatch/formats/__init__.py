"""Pure parsing and rendering: upstream's pages and our own (HTML, JSON, the JSON API copy),
where each object lives (layout), release file names and versions. No network, no disk.
"""
