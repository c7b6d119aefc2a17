"""The only code that talks to the master: ``transport`` (the requests session: sending,
retries, reading bodies safely; ``diagnosis`` says why a request got no answer), ``master``
(the APIs on top: XML-RPC via ``rpcstream``, the PEP 691 root listing, pages, files),
``listing`` and the change feeds built on them; ``downloadmirror``, where files are asked first;
``projectlist``, every project with its serial in one request (``verify --upstream``).
Nobody outside this package imports requests.
May import selection, publish, ledger, config, store and formats.
"""
