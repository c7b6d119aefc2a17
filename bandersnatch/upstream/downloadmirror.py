"""bandersnatch 8's ``download-mirror``: where a file is asked first, and how many came from each host.

A nearby mirror keeps upstream's files at the same paths below its root (a
bandersnatch mirror's ``web/`` holds ``packages/ab/cd/...`` as PyPI's file host
does), so a file's URL there is the mirror's base plus the path of upstream's
URL, as 8.2's ``populate_download_urls`` builds it.  Its bytes are trusted only
once they match upstream's page: ``Master.download`` checks them as any download.
"""

from __future__ import annotations

import enum
import logging
import threading
from collections import Counter
from urllib.parse import urlsplit

logger = logging.getLogger(__name__)

# This many files in a row that the download mirror failed (no answer, 5xx, bodies cut: not a
# 404 or other bytes, which are its answers) and, with a fallback, it is not asked again this
# run: a mirror that is down or black-holed would otherwise cost a timeout per file.
GIVE_UP_AFTER = 10


class Fallback(enum.Enum):
    """Why a file came from upstream after the download mirror was asked; the value words it in
    the summary (``{n}`` the count, ``{where}`` the download mirror, or "it" after the first)."""

    NOT_THERE = "{n} not on {where}"  # a 404: an answer, not a failure
    OTHER_BYTES = "{n} with other bytes on {where}"  # not the page's hash or size: an answer too
    FAILED = "{n} after {where} failed"  # no answer, 5xx, a body cut short


def mirror_url(base: str, file_url: str) -> str:
    """Where ``file_url`` (upstream's, from its page) is asked on the download mirror at ``base``.

    The path is kept exactly as upstream's URL spells it (percent-escapes included); its
    query and fragment are upstream's business.  ``base`` has no trailing slash (config).
    """
    return base + urlsplit(file_url).path


class DownloadMirror:
    """The download mirror of a run, and the count of files each host served (safe across threads)."""

    def __init__(self, base: str, *, no_fallback: bool) -> None:
        self.base = base.rstrip("/")
        self.no_fallback = no_fallback  # download-mirror-no-fallback: upstream's file URLs are never asked
        self.host = urlsplit(self.base).netloc
        self._lock = threading.Lock()
        self._served: Counter[str] = Counter()  # host -> files it served this run
        self._fallbacks: Counter[Fallback] = Counter()
        self._failing = 0  # files in a row it failed without answering for them (GIVE_UP_AFTER)
        self.given_up = False  # with a fallback: not asked again this run

    def url_for(self, file_url: str) -> str:
        return mirror_url(self.base, file_url)

    def served_by_mirror(self) -> None:
        with self._lock:
            self._served[self.host] += 1
            self._failing = 0

    def answered_without_file(self) -> None:
        """It answered for a file, but not with it (404, other bytes): it is there, so keep asking."""
        with self._lock:
            self._failing = 0

    def failed(self, why: str) -> None:
        """It failed a file without answering for it; past ``GIVE_UP_AFTER`` in a row (and with a
        fallback) it is given up for the rest of the run, said once."""
        with self._lock:
            self._failing += 1
            if self.no_fallback or self.given_up or self._failing < GIVE_UP_AFTER:
                return
            self.given_up = True
        logger.warning("download mirror %s failed %d files in a row (last: %s): files come from upstream "
                       "for the rest of this run", self.host, GIVE_UP_AFTER, why)

    def served_by_upstream(self, file_url: str, *, fallback: Fallback | None) -> None:
        """``file_url`` came from upstream; ``fallback``: why, after the download mirror was asked
        for it (None: it was not asked)."""
        with self._lock:
            self._served[urlsplit(file_url).netloc] += 1
            if fallback is not None:
                self._fallbacks[fallback] += 1

    def summary(self) -> str | None:
        """``files from m.example 120, files.pythonhosted.org 3 (2 not on the download mirror, 1 after
        it failed)``; None when nothing was downloaded."""
        with self._lock:
            if not self._served:
                return None
            # The download mirror first, then upstream's hosts by count.
            hosts = sorted(self._served.items(), key=lambda item: (item[0] != self.host, -item[1], item[0]))
            text = "files from " + ", ".join(f"{host} {count}" for host, count in hosts)
            causes = [cause for cause in Fallback if self._fallbacks[cause]]
            if causes:
                text += " (" + ", ".join(
                    cause.value.format(n=self._fallbacks[cause], where="it" if i else "the download mirror")
                    for i, cause in enumerate(causes)) + ")"
            return text

    def counts(self) -> dict[str, int]:
        """Files served per host so far."""
        with self._lock:
            return dict(self._served)
