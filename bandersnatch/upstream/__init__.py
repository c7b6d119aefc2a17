"""The only code that talks to the master: HTTP transport, XML-RPC, the PEP 691 listing,
and the change feeds built on them. May import selection, publish, ledger, config, store and formats.
"""
