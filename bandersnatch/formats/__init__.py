"""Pure parsing and rendering: upstream's pages and our own (HTML, JSON, the JSON API copy),
our JSON page read back as a record (pagerecord, its one reader and writer), where each object
lives (layout: every page path), release file names and versions. No network, no disk.
"""
