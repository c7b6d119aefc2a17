"""What is mirrored: the filter policy, requirements, the dependency closure and its records.
May import publish, ledger, config, store and formats.
"""
