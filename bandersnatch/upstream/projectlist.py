"""Every project upstream has, with its serial, in one request: what ``verify --upstream`` compares.

The PEP 691 root listing (``GET <master>/simple/`` as JSON, each project's
``_last-serial``: what bandersnatch 8 follows and any static mirror of ours
serves), or XML-RPC ``list_packages_with_serial`` for a master without one.
Unlike the change feeds it remembers nothing and sends no validators: an audit
wants the whole list now, never a 304.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..errors import UpstreamError, shown
from .listing import RootListing
from .master import Master

LISTING = "PEP 691 root listing"
XMLRPC = "XML-RPC list_packages_with_serial"


class ProjectList:
    """Iterate once for ``(name, serial)``; ``serial`` (upstream's own) is known after the iteration."""

    def __init__(self, master: Master, *, xmlrpc: bool) -> None:
        self.master = master
        self.source = XMLRPC if xmlrpc else LISTING
        self.serial: int | None = None

    def __iter__(self) -> Iterator[tuple[str, int]]:
        return self._xmlrpc() if self.source == XMLRPC else self._listing()

    def _xmlrpc(self) -> Iterator[tuple[str, int]]:
        highest = 0
        for name, serial in self.master.list_packages_with_serial():
            highest = max(highest, serial)
            yield name, serial
        self.serial = highest

    def _listing(self) -> Iterator[tuple[str, int]]:
        """The listing's entries; one without ``_last-serial`` cannot be compared, so it is refused."""
        highest = 0
        with self.master.root_listing(fresh=True) as answer:
            assert answer is not None, "no validators sent: never a 304"
            listing = RootListing(answer.chunks())
            for name, serial in listing:
                if serial is None:
                    raise UpstreamError(f"root listing: project {shown(name, 100)} has no _last-serial, so "
                                        "it cannot be compared with the mirror")
                highest = max(highest, serial)
                yield name, serial
            self.serial = highest if listing.last_serial is None else listing.last_serial
