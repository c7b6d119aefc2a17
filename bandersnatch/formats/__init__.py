"""Pure parsing and rendering: upstream's pages and our own (HTML, JSON, the JSON API copy),
our JSON page read back as a record (pagerecord, its one reader and writer), where each object
lives (layout: every page path), what a path segment and a serial may be, release file names and
versions, lock files (lockfiles: pylock.toml and uv.lock). No network, no disk. May import only
errors and names (the top's leaves).
"""
