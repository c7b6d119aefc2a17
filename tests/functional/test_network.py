"""The network as operators have it: proxies, NO_PROXY, a CA bundle of their own, and failures named.

Everything runs on 127.0.0.1: the fake PyPI (over HTTPS with a certificate
from a throwaway CA where it matters), a real forward proxy
(``forwardproxy.py``), and name resolution failing in-process, never asking
a real resolver.  The machine's own proxy and CA variables are cleared for
every test, so nothing is sent to a real proxy.
"""

from __future__ import annotations

import logging
import shutil
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import trustme
from support.fakepypi import Upstream
from support.forwardproxy import ForwardProxy
from support.mirrortools import MirrorSetup, assert_mirror_matches, write_config

from bandersnatch import cli
from bandersnatch.config import network as netsettings
from bandersnatch.config import settings as config
from bandersnatch.config.network import Network, bypasses_proxy, from_environment
from bandersnatch.errors import ConfigError, UpstreamError, UpstreamUnreachable
from bandersnatch.formats.layout import UrlPolicy
from bandersnatch.upstream.master import Master

PASSWORD = "s3cret-pass"
# conftest clears the machine's proxy and CA variables before every test.


@pytest.fixture
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Retries without the jittered back-off sleeps (the jitter factor becomes 0)."""
    monkeypatch.setattr("bandersnatch.upstream.transport.random.uniform", lambda low, high: 0.0)


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def ca_file(ca: trustme.CA, tmp_path: Path) -> Path:
    path = tmp_path / "test-ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return path


@pytest.fixture
def tls_upstream(ca: trustme.CA) -> Iterator[Upstream]:
    """The fake PyPI over HTTPS, its certificate (for 127.0.0.1) issued by the test CA."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    server = Upstream()
    server.start(tls=context)
    server.add_file("alpha", "alpha-1.0.tar.gz", b"alpha" * 100)
    server.add_file("beta", "beta-2.0.tar.gz", b"beta" * 100)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def proxy() -> Iterator[ForwardProxy]:
    with ForwardProxy() as running:
        yield running


def closed_port() -> int:
    """A loopback port nothing listens on: connecting is refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


def host_of(upstream: Upstream) -> str:
    return upstream.url.split("://", 1)[1]


def mirror_of(tmp_path: Path, upstream: Upstream, **options: str) -> MirrorSetup:
    return write_config(tmp_path, upstream.url, **options)


# ---------------------------------------------------------------- settings, pure


@pytest.mark.parametrize(("host", "port", "entries", "bypass"), [
    ("pypi.org", 443, (), False),
    ("pypi.org", 443, ("*",), True),
    ("pypi.org", 443, ("pypi.org",), True),
    ("files.pypi.org", 443, ("pypi.org",), True),
    ("files.pypi.org", 443, (".pypi.org",), True),
    ("files.pypi.org", 443, ("*.pypi.org",), True),
    ("notpypi.org", 443, ("pypi.org",), False),
    ("PyPI.org.", 443, ("pypi.org",), True),
    ("pypi.org", 443, ("pypi.org:8443",), False),
    ("pypi.org", 8443, ("pypi.org:8443",), True),
    ("127.0.0.1", 8080, ("127.0.0.1",), True),
    ("127.0.0.1", 8080, ("127.0.0.0/8",), True),
    ("10.1.2.3", 443, ("127.0.0.0/8",), False),
    ("pypi.org", 443, ("10.0.0.0/8",), False),
    ("::1", 443, ("::1",), True),
    ("[::1]", 8080, ("[::1]:8080",), True),
    ("::1", 443, ("[::1]:8080",), False),
    ("pypi.org", 443, ("bad/cidr", "pypi.org"), True),
])
def test_no_proxy_entries_match_as_curl_and_requests_read_them(
    host: str, port: int, entries: tuple[str, ...], bypass: bool
) -> None:
    assert bypasses_proxy(host, port, entries) is bypass


def test_environment_proxies_lowercase_first_all_proxy_as_fallback_empty_as_unset() -> None:
    network = from_environment({
        "https_proxy": "http://lower:1", "HTTPS_PROXY": "http://upper:2",
        "http_proxy": "", "ALL_PROXY": "proxy.corp:3128", "NO_PROXY": "localhost, .corp ,10.0.0.0/8",
    })
    assert network.https_proxy is not None and network.https_proxy.url == "http://lower:1"
    assert network.https_proxy.source == "https_proxy"
    assert network.http_proxy is not None and network.http_proxy.url == "http://proxy.corp:3128"
    assert network.http_proxy.source == "ALL_PROXY"
    assert network.no_proxy == ("localhost", ".corp", "10.0.0.0/8")
    assert network.proxy_for("https://pypi.org/simple/") == network.https_proxy
    assert network.proxy_for("https://mirror.corp/simple/") is None
    assert from_environment({}) == Network()


@pytest.mark.parametrize(("variables", "chosen"), [
    ({"REQUESTS_CA_BUNDLE": "/a", "CURL_CA_BUNDLE": "/b", "SSL_CERT_FILE": "/c"}, "REQUESTS_CA_BUNDLE"),
    ({"CURL_CA_BUNDLE": "/b", "SSL_CERT_FILE": "/c"}, "CURL_CA_BUNDLE"),
    ({"SSL_CERT_FILE": "/c", "SSL_CERT_DIR": "/d"}, "SSL_CERT_FILE"),
    ({"SSL_CERT_DIR": "/d", "REQUESTS_CA_BUNDLE": ""}, "SSL_CERT_DIR"),
])
def test_ca_bundle_comes_from_the_first_variable_set_in_requests_order(
    variables: dict[str, str], chosen: str
) -> None:
    network = from_environment(variables)
    assert (network.ca_bundle, network.ca_source) == (variables[chosen], chosen)


def test_proxy_option_replaces_the_environment_proxies_no_proxy_included() -> None:
    network = from_environment({"HTTPS_PROXY": "http://env:1", "NO_PROXY": "*"}, "http://u:p@opt:3128")
    assert network.proxy_for("https://pypi.org/") == network.proxy_for("http://pypi.org/")
    chosen = network.proxy_for("https://pypi.org/")
    assert chosen is not None and chosen.url == "http://u:p@opt:3128" and chosen.source == "[mirror] proxy"
    assert str(chosen) == "http://opt:3128" and "u:p" not in " ".join(network.describe())


@pytest.mark.parametrize(("value", "why"), [
    ("socks5://127.0.0.1:1080", "SOCKS proxy, which is not supported"),
    ("ftp://proxy:21", "must start with http://"),
    ("http://:3128", "has no host name"),
    ("http://proxy:99999", "invalid port"),
    ("http://proxy:3128/path", "has a path"),
])
def test_an_unusable_proxy_variable_is_one_config_line_without_its_password(value: str, why: str) -> None:
    value = value.replace("://", f"://user:{PASSWORD}@", 1)
    with pytest.raises(ConfigError) as refused:
        from_environment({"HTTPS_PROXY": value})
    assert str(refused.value).startswith("environment HTTPS_PROXY: ") and why in str(refused.value)
    assert PASSWORD not in str(refused.value)


def test_proxy_option_is_read_with_credentials_and_refused_when_unusable(tmp_path: Path) -> None:
    setup = write_config(tmp_path, "https://pypi.org", proxy=f"http://user:{PASSWORD}@proxy.corp:3128")
    loaded = config.load(setup.config, {"HTTPS_PROXY": "http://ignored:1"})
    assert loaded.proxy == f"http://user:{PASSWORD}@proxy.corp:3128"
    chosen = loaded.network.proxy_for("https://pypi.org/")
    assert chosen is not None and chosen.address == "proxy.corp:3128"
    setup = write_config(tmp_path, "https://pypi.org", proxy=f"socks5://user:{PASSWORD}@proxy.corp:1080")
    with pytest.raises(ConfigError, match=r"\[mirror\] proxy: .*SOCKS") as refused:
        config.load(setup.config)
    assert PASSWORD not in str(refused.value)


def test_a_missing_ca_bundle_is_refused_before_any_request(tmp_path: Path) -> None:
    setup = write_config(tmp_path, "https://pypi.org")
    with pytest.raises(ConfigError, match=r"^environment SSL_CERT_FILE: /nonexistent/ca.pem does not exist"):
        config.load(setup.config, {"SSL_CERT_FILE": "/nonexistent/ca.pem"})


def test_cli_refuses_a_missing_ca_bundle_with_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    setup = write_config(tmp_path, "https://pypi.org")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tmp_path / "missing.pem"))
    assert setup.run() == 2
    assert len(errors(caplog)) == 1 and "REQUESTS_CA_BUNDLE" in errors(caplog)[0]


# ---------------------------------------------------------------- through a real proxy


def test_https_master_through_https_proxy_every_request_goes_through_its_tunnels(
    tmp_path: Path, tls_upstream: Upstream, proxy: ForwardProxy, ca_file: Path,
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(ca_file))
    mirror = mirror_of(tmp_path, tls_upstream)
    assert cli.main(["-v", "-c", str(mirror.config), "mirror"]) == 0  # -v: the proxy in force is logged
    assert_mirror_matches(tls_upstream, mirror.web)
    assert set(proxy.methods()) == {"CONNECT"}
    assert {c.target for c in proxy.carried} == {host_of(tls_upstream)}
    ports = {r.client_port for r in tls_upstream.requests}
    assert len(tls_upstream.requests) >= 4 and ports <= proxy.upstream_ports
    assert any(f"through proxy {proxy.url} (from HTTPS_PROXY)" in r.getMessage() for r in caplog.records)


def test_http_master_through_http_proxy_every_request_is_forwarded(
    tmp_path: Path, upstream: Upstream, proxy: ForwardProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    upstream.add_file("alpha", "alpha-1.0.tar.gz", b"alpha" * 100)
    monkeypatch.setenv("http_proxy", proxy.url)
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{closed_port()}")  # not for http:// URLs
    mirror = mirror_of(tmp_path, upstream)
    assert mirror.run() == 0
    assert_mirror_matches(upstream, mirror.web)
    forwarded = sorted((c.method, c.target.removeprefix(upstream.url)) for c in proxy.carried)
    assert forwarded == sorted((r.method, r.path) for r in upstream.requests)
    assert {r.client_port for r in upstream.requests} <= proxy.upstream_ports


@pytest.mark.parametrize("how", ["option", "environment"])
def test_verify_repair_asks_upstream_through_the_proxy_as_mirror_does(
    tmp_path: Path, upstream: Upstream, proxy: ForwardProxy, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    upstream.add_file("alpha", "alpha-1.0.tar.gz", b"alpha" * 100)
    upstream.add_file("beta", "beta-2.0.tar.gz", b"beta" * 100)
    if how == "option":
        mirror = mirror_of(tmp_path, upstream, proxy=proxy.url)
    else:
        mirror = mirror_of(tmp_path, upstream)
        monkeypatch.setenv("http_proxy", proxy.url)
    assert mirror.run() == 0
    # A ghost (verify asks upstream's listing) and a lost file (--repair fetches the page and the file).
    shutil.copytree(mirror.web / "simple" / "beta", mirror.web / "simple" / "ghost")
    next(mirror.web.joinpath("packages").rglob("alpha-1.0.tar.gz")).unlink()
    upstream.reset_requests()
    before = len(proxy.carried)
    assert cli.main(["-c", str(mirror.config), "verify", "--repair"]) == 0
    assert_mirror_matches(upstream, mirror.web)
    forwarded = sorted((c.method, c.target.removeprefix(upstream.url)) for c in proxy.carried[before:])
    asked = sorted((r.method, r.path) for r in upstream.requests)
    assert ("POST", "/pypi") in asked and any(path.endswith("alpha-1.0.tar.gz") for _, path in asked)
    assert forwarded == asked
    assert {r.client_port for r in upstream.requests} <= proxy.upstream_ports


@pytest.mark.parametrize("no_proxy", ["127.0.0.1", "localhost,127.0.0.0/8", "*"])
def test_no_proxy_bypasses_the_proxy(
    tmp_path: Path, tls_upstream: Upstream, proxy: ForwardProxy, ca_file: Path,
    monkeypatch: pytest.MonkeyPatch, no_proxy: str,
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    monkeypatch.setenv("NO_PROXY", no_proxy)
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))
    mirror = mirror_of(tmp_path, tls_upstream)
    assert mirror.run() == 0
    assert_mirror_matches(tls_upstream, mirror.web)
    assert proxy.carried == []


def test_proxy_option_with_credentials_wins_over_the_environment_and_its_password_is_never_logged(
    tmp_path: Path, tls_upstream: Upstream, ca_file: Path,
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{closed_port()}")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(ca_file))
    with ForwardProxy(credentials=("mirror", PASSWORD)) as guarded:
        mirror = mirror_of(tmp_path, tls_upstream, proxy=guarded.url_with("mirror", PASSWORD))
        assert cli.main(["-v", "-c", str(mirror.config), "mirror"]) == 0
    assert_mirror_matches(tls_upstream, mirror.web)
    assert guarded.carried and {c.status for c in guarded.carried} == {200}
    assert {r.client_port for r in tls_upstream.requests} <= guarded.upstream_ports
    assert PASSWORD not in caplog.text
    assert f"through proxy {guarded.url} (from [mirror] proxy)" in caplog.text


@pytest.mark.parametrize("scheme", ["https", "http"])
def test_proxy_demanding_authentication_is_one_line_naming_the_proxy_and_407(
    tmp_path: Path, tls_upstream: Upstream, upstream: Upstream, ca_file: Path, no_backoff: None,
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, scheme: str,
) -> None:
    target = tls_upstream if scheme == "https" else upstream
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(ca_file))
    with ForwardProxy(credentials=("mirror", "right")) as guarded:
        mirror = mirror_of(tmp_path, target, proxy=guarded.url_with("mirror", PASSWORD))
        assert mirror.run() == 1
    assert target.requests == []
    [line] = errors(caplog)
    assert f"proxy {guarded.address} (for {host_of(target)}): authentication required (HTTP 407)" in line
    assert PASSWORD not in caplog.text


# ---------------------------------------------------------------- TLS


@pytest.mark.parametrize("variable", ["REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "CURL_CA_BUNDLE"])
def test_ca_bundle_variable_makes_an_https_master_with_a_private_ca_work(
    tmp_path: Path, tls_upstream: Upstream, ca_file: Path, monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    monkeypatch.setenv(variable, str(ca_file))
    mirror = mirror_of(tmp_path, tls_upstream)
    assert mirror.run() == 0
    assert_mirror_matches(tls_upstream, mirror.web)


def test_untrusted_certificate_fails_the_run_with_one_line_naming_host_and_cause(
    tmp_path: Path, tls_upstream: Upstream, no_backoff: None, caplog: pytest.LogCaptureFixture
) -> None:
    mirror = mirror_of(tmp_path, tls_upstream)
    assert mirror.run() == 1
    [line] = errors(caplog)
    assert "certificate verify failed" in line and host_of(tls_upstream) in line
    assert "REQUESTS_CA_BUNDLE" in line  # what to do about it


def test_certificate_failure_names_the_ca_bundle_in_use(
    tmp_path: Path, tls_upstream: Upstream, no_backoff: None,
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    other = trustme.CA()
    bundle = tmp_path / "other-ca.pem"
    other.cert_pem.write_to_path(str(bundle))
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    mirror = mirror_of(tmp_path, tls_upstream)
    assert mirror.run() == 1
    [line] = errors(caplog)
    assert "certificate verify failed" in line and f"checked against {bundle} (from SSL_CERT_FILE)" in line
    assert "Traceback" not in caplog.text and tls_upstream.requests == []


# ---------------------------------------------------------------- other failures, named


@pytest.fixture
def unresolvable(monkeypatch: pytest.MonkeyPatch) -> None:
    """``*.invalid`` names fail to resolve in-process; any other name but loopback fails the test.

    The real resolver is never asked: it may send the query off the machine.
    """
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(host, str) and host.endswith(".invalid"):
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        assert host in ("127.0.0.1", "localhost", "::1"), f"test tried to resolve {host!r}"
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.fixture
def silent_server() -> Iterator[str]:
    """``http://127.0.0.1:PORT`` of a server that accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.05)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    thread.join()
    for sock in accepted:
        sock.close()
    listener.close()


def failure_line(tmp_path: Path, master_url: str, caplog: pytest.LogCaptureFixture, **options: str) -> str:
    """Run a mirror against ``master_url``: it must fail with exit 1 and exactly one error line."""
    setup = write_config(tmp_path, master_url, **options)
    assert setup.run() == 1
    lines = errors(caplog)
    assert len(lines) == 1, lines
    assert "Traceback" not in caplog.text
    return lines[0]


def test_connection_refused_is_one_line_naming_host_and_cause(
    tmp_path: Path, no_backoff: None, caplog: pytest.LogCaptureFixture
) -> None:
    port = closed_port()
    line = failure_line(tmp_path, f"http://127.0.0.1:{port}", caplog)
    assert f"127.0.0.1:{port}: connection refused" in line


def test_unresolvable_host_is_one_line_naming_host_and_cause(
    tmp_path: Path, no_backoff: None, unresolvable: None, caplog: pytest.LogCaptureFixture
) -> None:
    line = failure_line(tmp_path, "https://nonexistent.invalid", caplog)
    assert "nonexistent.invalid:443: name not resolved" in line


def test_silent_upstream_is_one_line_naming_host_and_timeout(
    tmp_path: Path, no_backoff: None, silent_server: str, caplog: pytest.LogCaptureFixture
) -> None:
    line = failure_line(tmp_path, silent_server, caplog, timeout="0.2")
    assert f"{silent_server.removeprefix('http://')}: timed out (no answer within 0.2 s)" in line


def test_refusing_proxy_is_one_line_naming_proxy_and_target(
    tmp_path: Path, tls_upstream: Upstream, no_backoff: None,
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    port = closed_port()
    monkeypatch.setenv("HTTPS_PROXY", f"http://user:{PASSWORD}@127.0.0.1:{port}")
    line = failure_line(tmp_path, tls_upstream.url, caplog)
    assert f"proxy 127.0.0.1:{port} (for {host_of(tls_upstream)}): connection refused" in line
    assert PASSWORD not in caplog.text


def test_unresolvable_proxy_is_one_line_naming_proxy(
    tmp_path: Path, tls_upstream: Upstream, no_backoff: None, unresolvable: None,
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "proxy.nonexistent.invalid:3128")
    line = failure_line(tmp_path, tls_upstream.url, caplog)
    assert "proxy proxy.nonexistent.invalid:3128" in line and "name not resolved" in line


def test_proxy_forbidding_the_tunnel_is_named(
    tmp_path: Path, no_backoff: None, unresolvable: None, proxy: ForwardProxy,
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)  # the test proxy refuses anything off loopback
    line = failure_line(tmp_path, "https://pypi.example.invalid", caplog)
    assert f"proxy {proxy.address} (for pypi.example.invalid:443): refused the tunnel (HTTP 403" in line


def test_answerless_requests_counted_as_unreachable_name_the_last_cause(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    master = Master(url, timeout=5, workers=1, max_page_bytes=1 << 20, attempts=1,
                    policy=UrlPolicy.for_master(url, (), True), spool_dir=tmp_path)
    for _ in range(master.transport.unreachable_after - 1):
        with pytest.raises(UpstreamError, match="connection refused"):
            master.changelog_last_serial()
    last = r"in a row got no answer \(last: 127\.0\.0\.1:\d+: connection refused\)"
    with pytest.raises(UpstreamUnreachable, match=last):
        master.changelog_last_serial()
    master.close()


def test_read_timeouts_counted_as_unreachable_name_the_timeout(tmp_path: Path, silent_server: str) -> None:
    master = Master(silent_server, timeout=0.05, workers=1, max_page_bytes=1 << 20, attempts=1,
                    policy=UrlPolicy.for_master(silent_server, (), True), spool_dir=tmp_path)
    for _ in range(master.transport.unreachable_after - 1):
        with pytest.raises(UpstreamError, match=r"timed out \(no answer within 0\.05 s\)") as failed:
            master.changelog_last_serial()
        assert not isinstance(failed.value, UpstreamUnreachable)
    last = r"in a row got no answer \(last: 127\.0\.0\.1:\d+: timed out \(no answer within 0\.05 s\)\)"
    with pytest.raises(UpstreamUnreachable, match=last):
        master.changelog_last_serial()
    master.close()


def test_network_module_reads_no_environment_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://should-not-be-seen:1")
    assert from_environment({}) == Network()
    assert netsettings.from_environment({}, None).proxies == {}


# ---------------------------------------------------------------- the request as sent


@pytest.mark.parametrize(("method", "url", "headers", "data"), [
    ("GET", "http://127.0.0.1:9/simple/foo/", {"Accept": "application/vnd.pypi.simple.v1+json"}, None),
    ("GET", "https://pypi.example/simple/foo/?bandersnatch_serial=5-1", {"accept": "text/html"}, None),
    ("POST", "https://user:pw@pypi.example/pypi", {"Content-Type": "text/xml"}, b"<methodCall/>"),
])
def test_a_request_is_prepared_as_the_session_would_prepare_it(
    method: str, url: str, headers: dict[str, str], data: bytes | None,
) -> None:
    # The transport prepares requests itself (cheaper than Session.request): the same method, URL,
    # headers (User-Agent, Accept-Encoding, auth from the URL, cookies an upstream set) and body.
    master = Master("https://pypi.example", timeout=1, workers=1, max_page_bytes=1024,
                    policy=UrlPolicy.for_master("https://pypi.example", (), False),
                    spool_dir=Path("/nonexistent"))
    master.transport.session.cookies.set("sid", "abc", domain="pypi.example", path="/")
    try:
        ours = master.transport.prepare(method, url, headers, data)
        theirs = master.transport.session.prepare_request(
            requests.Request(method, url, headers=dict(headers), data=data))
        assert (ours.method, ours.url, ours.body) == (theirs.method, theirs.url, theirs.body)
        assert list(ours.headers.items()) == list(theirs.headers.items())
        assert (ours.hooks, dict(ours._cookies or {})) == (theirs.hooks, dict(theirs._cookies or {}))
    finally:
        master.close()
