"""What is mirrored: the filter policy, requirements, the dependency closure and its records.
"""
