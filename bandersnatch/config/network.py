"""How the upstream is reached on the operator's network: proxies and the trusted CA certificates.

Read once, by ``config.load``, from the environment the CLI hands it and the
``[mirror] proxy`` option, into a frozen ``Network`` given to ``master.Master``;
nothing reads the environment later behind the caller's back.

requests' own ``trust_env`` would also do this, but it brings ``~/.netrc``
credentials along (sent as ``Authorization`` to whatever host the file names)
and re-reads the environment on every request.  Its helpers are no better a
fit: ``requests.utils.should_bypass_proxies`` reads ``os.environ`` itself and
even rewrites it for a moment (not safe with worker threads), and
``urllib.request.getproxies`` only reads ``os.environ``.  The rules are short
enough to keep here as pure functions of the mapping we are given, which
makes them testable with plain dictionaries.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from ..errors import ConfigError
from .values import has_space_or_control, http_url_fault

ENVIRONMENT = "environment"
"""What a ConfigError names as the "file" when a variable is at fault."""

# Lowercase first, as curl, urllib and requests do.  ALL_PROXY stands in for both schemes.
_PROXY_VARIABLES = {
    "http": ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"),
    "https": ("https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"),
}
_NO_PROXY_VARIABLES = ("no_proxy", "NO_PROXY")
# requests honours the first two; OpenSSL-based tools the last two.
_CA_VARIABLES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR")
_NO_PROXY_SEPARATORS = re.compile(r"[\s,]+")


@dataclass(frozen=True)
class Proxy:
    """One proxy URL and where it was set; ``str()`` never shows its credentials."""

    url: str
    source: str  # "HTTPS_PROXY", "[mirror] proxy", ...

    @property
    def address(self) -> str:
        """``host:port`` only: what messages and logs show."""
        parts = urlsplit(self.url)
        return f"{parts.hostname}:{parts.port or (443 if parts.scheme == 'https' else 80)}"

    def __str__(self) -> str:
        return f"{urlsplit(self.url).scheme}://{self.address}"


@dataclass(frozen=True)
class Network:
    """Proxies per URL scheme, hosts that bypass them, and the CA bundle that replaces the default."""

    http_proxy: Proxy | None = None  # None: connect directly
    https_proxy: Proxy | None = None
    no_proxy: tuple[str, ...] = ()
    ca_bundle: str | None = None  # a PEM file or a hashed directory; None: requests' default (certifi)
    ca_source: str = ""

    def proxy_for(self, url: str) -> Proxy | None:
        """The proxy a request to ``url`` goes through, or None to connect directly."""
        parts = urlsplit(url)
        proxy = self.proxies.get(parts.scheme.lower())
        if proxy is None or parts.hostname is None:
            return None
        if bypasses_proxy(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80),
                          self.no_proxy):
            return None
        return proxy

    @property
    def proxies(self) -> dict[str, Proxy]:
        """URL scheme -> its proxy, for the schemes that have one."""
        chosen = {"http": self.http_proxy, "https": self.https_proxy}
        return {scheme: proxy for scheme, proxy in chosen.items() if proxy is not None}

    def describe(self) -> list[str]:
        """Lines for the log saying what is in force (never credentials)."""
        lines = [f"{scheme} requests go through proxy {proxy} (from {proxy.source})"
                 for scheme, proxy in self.proxies.items()]
        if lines and self.no_proxy:
            lines.append("except for hosts matching NO_PROXY: " + ",".join(self.no_proxy))
        if self.ca_bundle is not None:
            lines.append(f"trusting the CA certificates in {self.ca_bundle} (from {self.ca_source})")
        return lines


def from_environment(environ: Mapping[str, str], proxy_option: str | None = None) -> Network:
    """The network settings the environment (and ``[mirror] proxy``, which wins) ask for.

    Pure: ``environ`` is whatever mapping the caller read once.  Empty values
    count as unset, as they do for curl and requests.
    """
    if proxy_option is not None:
        # The option replaces the environment's proxy settings whole, NO_PROXY included,
        # like bandersnatch 8's: the operator who wrote it meant every request.
        proxy = Proxy(proxy_option, "[mirror] proxy")
        proxies: dict[str, Proxy | None] = {"http": proxy, "https": proxy}
        no_proxy: tuple[str, ...] = ()
    else:
        proxies = {scheme: _proxy_from(environ, names) for scheme, names in _PROXY_VARIABLES.items()}
        name = _first_set(environ, _NO_PROXY_VARIABLES)
        no_proxy = tuple(e for e in _NO_PROXY_SEPARATORS.split(environ[name].lower()) if e) if name else ()
    ca_name = _first_set(environ, _CA_VARIABLES)
    return Network(proxies["http"], proxies["https"], no_proxy,
                   environ[ca_name].strip() if ca_name else None, ca_name or "")


def _proxy_from(environ: Mapping[str, str], names: tuple[str, ...]) -> Proxy | None:
    name = _first_set(environ, names)
    if name is None:
        return None
    return Proxy(parse_proxy_url(environ[name].strip(), ENVIRONMENT, None, name), name)


def _first_set(environ: Mapping[str, str], names: tuple[str, ...]) -> str | None:
    return next((name for name in names if environ.get(name, "").strip()), None)


def check_ca_bundle(network: Network) -> None:
    """Fail before any request if the CA bundle named cannot be read (requests would raise a bare OSError)."""
    path = network.ca_bundle
    if path is None:
        return
    if not os.path.exists(path):
        raise ConfigError(ENVIRONMENT, None, network.ca_source, f"{path} does not exist; point it at a PEM "
                          "file of CA certificates (or unset it to trust the default ones)")
    if not os.access(path, os.R_OK):
        raise ConfigError(ENVIRONMENT, None, network.ca_source, f"{path} is not readable by this user")


def parse_proxy_url(raw: str, where: str, section: str | None, option: str) -> str:
    """A proxy URL: ``http://`` or ``https://``, a host, maybe a port and ``user:password@``.

    A bare ``host:port`` means ``http://host:port``, as curl and requests take it.
    Messages never repeat the credentials.
    """
    if "://" not in raw:
        raw = "http://" + raw
    parts = urlsplit(raw)
    shown = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"[:100]

    def bad(why: str) -> ConfigError:
        return ConfigError(where, section, option, f"{shown!r} {why}")

    if has_space_or_control(raw):
        raise bad("is not a URL (contains whitespace)")
    if parts.scheme.lower().startswith("socks"):
        raise bad("is a SOCKS proxy, which is not supported; use an HTTP proxy (http://host:port)")
    fault = http_url_fault(parts, "must start with http:// (or https://)")
    if fault is not None:
        raise bad(fault)
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise bad("has a path; give only scheme, host and port")
    return raw


def bypasses_proxy(host: str, port: int, no_proxy: tuple[str, ...]) -> bool:
    """Whether ``host:port`` matches a NO_PROXY entry.

    Entries as curl and requests read them: ``*`` (everything), a domain that
    also covers its subdomains (``example.com``, ``.example.com`` or
    ``*.example.com``), an address, a CIDR block (``10.0.0.0/8``), each maybe
    with ``:port`` (``[::1]:8080`` for IPv6).
    """
    host = host.lower().strip("[]").rstrip(".")
    try:
        address: ipaddress.IPv4Address | ipaddress.IPv6Address | None = ipaddress.ip_address(host)
    except ValueError:
        address = None
    for entry in no_proxy:
        if entry == "*":
            return True
        name, entry_port = _split_entry(entry)
        if entry_port is not None and entry_port != port:
            continue
        if "/" in name:
            try:
                if address is not None and address in ipaddress.ip_network(name, strict=False):
                    return True
            except ValueError:
                pass
            continue
        name = name.lstrip("*").lstrip(".").rstrip(".")
        if name and (host == name or host.endswith("." + name)):
            return True
    return False


def _split_entry(entry: str) -> tuple[str, int | None]:
    """``(name, port)`` of a NO_PROXY entry; IPv6 addresses have more than one colon."""
    if entry.startswith("["):
        name, _, rest = entry[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif entry.count(":") == 1:
        name, _, port = entry.partition(":")
    else:
        name, port = entry, ""
    return name, int(port) if port.isdigit() else None
