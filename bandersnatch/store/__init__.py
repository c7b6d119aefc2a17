"""Where the mirror is published: the store protocol, the filesystem and S3 stores, the
S3 store's local record, and the atomic, confined file primitives under them.
May import formats (what a path segment may be); never config.
"""
