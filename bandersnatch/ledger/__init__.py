"""The mirror's own bookkeeping, never published: state and todo, counts, the last run's record.
May import config, store and formats.
"""
