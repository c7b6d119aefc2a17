"""The one gate every change to the published tree goes through: the removal budget,
ownership of files and what is published beside them, the symlink rule, diff-file recording.
May import ledger, config, store and formats.
"""
