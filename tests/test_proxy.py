"""proxy.py's routing rules, and fetching and webhooks through a real forward proxy.

The proxy (tests/servers.py) relays whatever host a request names to 127.0.0.1 at that
port, so the sources here live at news.example, a name this machine cannot resolve (as
behind many office proxies; the resolver is the one thing replaced, so no query leaves):
a fetch that skipped the proxy would fail.
"""

from __future__ import annotations

import base64
import ssl
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harvester.config import HttpConfig, load_config
from harvester.devserver import FixtureServer, Response
from harvester.errors import ConfigError, FetchError, PolicyError
from harvester.fetch import Fetcher
from harvester.netpolicy import NetworkPolicy
from harvester.notify import Message, OutcomeKind, make_channel
from harvester.proxy import ProxyRoutes, bypasses, parse_proxy, routes
from harvester.transport import PolicyRefusal, check_proxied

from .conftest import feed_bytes, feed_source, free_port, http_fast, make_config, redirect, run_cli
from .servers import ForwardProxy, Receiver

CORP = "http://proxy.corp:3128"


@pytest.mark.parametrize(("environ", "url", "expected"), [
    ({"https_proxy": CORP}, "https://example.org/rss", CORP),
    ({"https_proxy": CORP}, "http://example.org/rss", None),
    ({"HTTP_PROXY": "proxy.corp:3128"}, "http://example.org/rss", CORP),  # scheme optional
    ({"http_proxy": CORP, "HTTP_PROXY": "http://other:1"}, "http://example.org/", CORP),
    ({"ALL_PROXY": CORP}, "https://example.org/", CORP),
    ({"https_proxy": "http://p:1", "all_proxy": CORP}, "https://example.org/", "http://p:1"),
    ({"https_proxy": CORP, "no_proxy": "example.org"}, "https://news.example.org/", None),
    ({"https_proxy": CORP, "NO_PROXY": ".corp, 10.0.0.0/8"}, "https://10.1.2.3/", None),
    ({"https_proxy": CORP, "no_proxy": "example.org"}, "https://badexample.org/", CORP),
    ({"https_proxy": "https://proxy.corp"}, "https://example.org/", "https://proxy.corp:443"),
    ({"https_proxy": "  "}, "https://example.org/", None),
    ({"http_proxy": CORP}, "http://127.0.0.1:8080/", None),  # loopback: always direct
    ({"http_proxy": CORP}, "http://localhost/", None),
    ({"http_proxy": CORP}, "http://feeds.localhost/", None),
    ({"http_proxy": CORP}, "http://[::1]/", None),
    ({}, "https://example.org/", None),
])
def test_the_environment_chooses_the_proxy_as_curl_does(environ, url, expected):
    proxy = routes(None, (), environ).for_url(url)
    assert (proxy.url if proxy else None) == expected


def test_the_config_wins_over_the_environment_and_empty_turns_it_off():
    environ = {"https_proxy": "http://env:1", "no_proxy": "*"}
    configured = routes("http://cfg:2", ("intranet.corp",), environ)
    assert configured.for_url("https://example.org/").url == "http://cfg:2"
    assert configured.for_url("http://example.org/").url == "http://cfg:2"
    assert configured.for_url("https://wiki.intranet.corp/") is None
    assert configured.for_url("https://example.org/").origin == "[http] proxy"
    assert routes("", (), environ) == ProxyRoutes()
    assert routes("", (), environ).describe() == "none, requests go direct"
    assert routes("http://me:hunter2@cfg:2", ("intranet.corp",), {}).describe() == (
        "http://cfg:2 (from [http] proxy); direct for intranet.corp")  # no password shown


@pytest.mark.parametrize(("host", "port", "entry", "direct"), [
    ("example.org", None, "*", True),
    ("example.org", None, "example.org", True),
    ("a.b.example.org", None, ".example.org", True),
    ("a.example.org", None, "*.example.org", True),
    ("example.org.", None, "EXAMPLE.org", True),
    ("notexample.org", None, "example.org", False),
    ("example.org", 8080, "example.org:8080", True),
    ("example.org", 443, "example.org:8080", False),
    ("10.9.8.7", None, "10.0.0.0/8", True),
    ("10.9.8.7", None, "10.9.8.7", True),
    ("11.0.0.1", None, "10.0.0.0/8", False),
    ("[::1]", None, "::1", True),
    ("::1", 8080, "[::1]:8080", True),
    ("example.org", None, " , ", False),
    ("example.org", 2, "example.org:\u00b2", False),  # "²": no port, though isdigit() says so
    ("::1", 2, "[::1]:\u00b2", False),
])
def test_no_proxy_entries(host, port, entry, direct):
    assert bypasses(host, port, [entry]) is direct


def test_a_proxy_url_keeps_its_credentials_out_of_what_is_shown():
    p = parse_proxy("http://me:p%40ss@proxy.corp:3128")
    assert (str(p), p.auth) == (CORP, "me:p@ss")
    assert p.url_with_auth() == "http://me:p%40ss@proxy.corp:3128"
    assert "p@ss" not in repr(p) and "p@ss" not in repr(routes(p.url_with_auth(), (), {}))


def test_a_wrong_proxy_variable_is_named():
    with pytest.raises(ConfigError) as e:
        routes(None, (), {"HTTPS_PROXY": "socks5h://me:hunter2@proxy.corp:1080"})
    assert str(e.value) == ("environment variable HTTPS_PROXY: socks5h proxies are not supported,"
                            " only http:// and https:// ones: 'socks5h://me:***@proxy.corp:1080'")


URLISH = st.text(st.sampled_from("htps:/@[]%.:1a9-_*, \u00e9\x00"), max_size=40)


@given(proxy=URLISH, no_proxy=URLISH, url=URLISH)
def test_any_proxy_setting_is_read_or_named_and_any_url_routed(proxy, no_proxy, url):
    """Whatever the environment holds: routes or a ConfigError naming the variable; and
    whatever URL a feed links to: a route, never an exception."""
    try:
        r = routes(None, (), {"https_proxy": proxy, "http_proxy": proxy, "no_proxy": no_proxy})
    except ConfigError as e:
        assert str(e).startswith("environment variable ")
        return
    for u in (url, "https://" + url, "http://" + url):
        r.for_url(u)
    r.describe()


@pytest.fixture
def proxy(no_public_dns):
    p = ForwardProxy()
    yield p
    p.stop()


def behind(server: FixtureServer, path: str, host: str = "news.example") -> str:
    """The URL the proxy relays to `server`'s `path`."""
    return f"{server.scheme}://{host}:{server.port}{path}"


def test_a_feed_is_fetched_through_the_configured_proxy(server, proxy):
    body = feed_bytes("icmpd-2020-05-a.rss")
    server.route("/rss", Response(body))
    url = behind(server, "/rss")
    fetcher = Fetcher(HttpConfig(timeout=2, retries=0, proxy=proxy.url))
    first = fetcher.fetch(url)
    again = fetcher.fetch(url, etag=first.etag)  # conditional GET works through it too
    assert (first.status, first.body, again.status) == (200, body, 304)
    assert proxy.seen == [("GET", url, None), ("GET", url, None)]
    assert [r.headers.get("If-None-Match") for r in server.hits("/rss")] == [None, first.etag]


def test_loopback_and_no_proxy_hosts_go_direct(server, proxy):
    server.route("/rss", Response(b"<rss/>"))
    fetcher = Fetcher(HttpConfig(timeout=2, retries=0, proxy=proxy.url,
                                 no_proxy=("news.example",)))
    assert fetcher.fetch(server.url("/rss")).body == b"<rss/>"
    with pytest.raises(FetchError):  # direct, so the name is not found
        fetcher.fetch(behind(server, "/rss"))
    assert proxy.seen == []


def test_the_proxy_gets_the_credentials_of_its_url(server, no_public_dns):
    server.route("/rss", Response(b"<rss/>"))
    office = ForwardProxy(credentials="me:p@ss")
    try:
        port = office.port
        with_auth = Fetcher(HttpConfig(timeout=2, retries=0,
                                       proxy=f"http://me:p%40ss@127.0.0.1:{port}"))
        assert with_auth.fetch(behind(server, "/rss")).body == b"<rss/>"
        assert office.seen[-1][2] == "Basic " + base64.b64encode(b"me:p@ss").decode()
        with pytest.raises(FetchError) as e:
            Fetcher(HttpConfig(timeout=2, retries=0, proxy=office.url)).fetch(
                behind(server, "/rss"))
        assert (e.value.url, str(e.value)) == (behind(server, "/rss"), (
            "HTTP 407 Proxy Authentication Required (the proxy wants credentials: "
            "http://user:password@host:port)"))
    finally:
        office.stop()


@pytest.fixture
def tls_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_public_dns):
    """An HTTPS server whose certificate names news.example, from a CA the client trusts
    (through SSL_CERT_FILE, as a TLS-inspecting office proxy's CA would be)."""
    import trustme

    ca = trustme.CA()
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("news.example").configure_cert(ctx)
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "ca.pem"))
    with FixtureServer(tls=ctx) as srv:
        yield srv


def test_https_goes_through_a_connect_tunnel_with_credentials(tls_server):
    body = feed_bytes("icmpd-2020-05-a.rss")
    tls_server.route("/rss", Response(body))
    office = ForwardProxy(credentials="me:secret")
    try:
        port = office.port
        url = behind(tls_server, "/rss")
        fetched = Fetcher(HttpConfig(timeout=2, retries=0,
                                     proxy=f"http://me:secret@127.0.0.1:{port}")).fetch(url)
        assert (fetched.status, fetched.body) == (200, body)
        assert office.seen == [("CONNECT", f"news.example:{tls_server.port}",
                                "Basic " + base64.b64encode(b"me:secret").decode())]
        with pytest.raises(FetchError) as e:
            Fetcher(HttpConfig(timeout=2, retries=0, proxy=office.url)).fetch(url)
        assert str(e.value) == (f"cannot connect through the proxy {office.url} ([http] proxy): "
                                "Tunnel connection failed: 407 Proxy Authentication Required")
    finally:
        office.stop()


def test_a_proxy_that_is_down_is_named(no_public_dns):
    dead = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(FetchError) as e:
        Fetcher(HttpConfig(timeout=2, retries=0, proxy=dead)).fetch("http://news.example/rss")
    assert str(e.value).startswith(f"cannot connect through the proxy {dead} ([http] proxy): ")
    assert str(e.value).endswith("Connection refused")


@pytest.mark.parametrize(("target", "resolved"), [
    ("http://10.1.2.3/secret", "10.1.2.3 resolves to 10.1.2.3"),
    ("http://167838211/secret", "167838211 resolves to 10.1.2.3"),
    ("http://[::ffff:10.1.2.3]/secret", "::ffff:10.1.2.3 resolves to ::ffff:10.1.2.3"),
])
def test_the_network_policy_still_judges_address_literals(server, proxy, target, resolved):
    """A feed behind the proxy redirects into a private range, however spelt: refused
    before the proxy is asked for it."""
    server.route("/feed", redirect(302, target))
    fetcher = Fetcher(HttpConfig(timeout=2, retries=0, proxy=proxy.url))
    with pytest.raises(PolicyError) as e:
        fetcher.fetch(behind(server, "/feed"))
    assert str(e.value).startswith(f"refused by the network policy: {resolved} (a private "
                                   "range); ")
    assert proxy.seen == [("GET", behind(server, "/feed"), None)]  # not the redirect


@pytest.mark.parametrize(("host", "refused"), [
    ("0x7f.1", True), ("10.1.2.3", True), ("[fe80::1]", True), ("203.0.113.9", False),
    ("news.example", False),  # a name: the proxy resolves it (asking here would fail)
])
def test_what_the_policy_judges_of_a_proxied_target(host, refused, no_public_dns):
    if refused:
        with pytest.raises(PolicyRefusal):
            check_proxied(host, 80, NetworkPolicy())
    else:
        check_proxied(host, 80, NetworkPolicy())  # nothing to refuse here


def test_once_and_check_use_the_proxy_of_the_environment(server, proxy, tmp_path):
    """The real CLI in a process whose environment names a proxy, as a container's would.
    The source is an address the documentation ranges keep off the internet: only the
    proxy (which relays it to loopback) can reach it, and no DNS is asked."""
    server.route("/rss", Response(feed_bytes("icmpd-2020-05-a.rss")))
    url = behind(server, "/rss", host="192.0.2.10")
    cfg = make_config(tmp_path, http_fast() + feed_source("icmpd", url), rules=False)
    env = {"HTTP_PROXY": proxy.url, "NO_PROXY": "intranet.corp"}
    checked = run_cli("--config", str(cfg), "check", cwd=tmp_path, env=env)
    assert (f"proxy: http:// URLs via {proxy.url} (from environment variable HTTP_PROXY); "
            "https:// URLs direct; direct for intranet.corp") in checked.stdout.splitlines()
    r = run_cli("--config", str(cfg), "once", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stderr
    assert r.stderr.startswith("icmpd: baseline: 7 items stored silently (HTTP 200"), r.stderr
    assert proxy.seen == [("GET", url, None)]


@pytest.mark.parametrize("command", ["once", "check"])
def test_a_bad_proxy_variable_stops_the_command_with_its_name(server, tmp_path, command):
    cfg = make_config(tmp_path, http_fast() + feed_source("icmpd", server.url("/rss")),
                      rules=False)
    r = run_cli("--config", str(cfg), command, cwd=tmp_path,
                env={"https_proxy": "socks5://proxy.corp:1080"})
    assert (r.returncode, r.stdout, r.stderr.strip()) == (
        2, "", "harvester: error: environment variable https_proxy: socks5 proxies are not "
               "supported, only http:// and https:// ones: 'socks5://proxy.corp:1080'")


def send_test_hook(tmp_path: Path, proxy_url: str, hook_url: str):
    """`notify test` for a webhook at hook_url, with [http] proxy = proxy_url."""
    cfg = load_config(make_config(tmp_path, http_fast().replace(
        "[http]\n", f'[http]\nproxy = "{proxy_url}"\n')
        + f'[[notifiers]]\nname = "hook"\nkind = "webhook"\nurl = "{hook_url}"\n', rules=False))
    msg = Message(id="test_1", notifier="hook", event="test", source="harvester",
                  created_at="2020-05-28T08:00:00Z", data={"url": "", "error": "", "since": ""})
    return make_channel(cfg.notifiers[0], cfg).send([msg], digest=False)


def test_a_webhook_goes_through_the_proxy(proxy, tmp_path):
    receiver = Receiver()
    try:
        hook = f"http://hooks.example:{receiver.port}/hook"
        assert send_test_hook(tmp_path, proxy.url, hook).kind is OutcomeKind.SENT
        assert [d.id for d in receiver.deliveries] == ["test_1"]
        assert proxy.seen == [("POST", hook, None)]
    finally:
        receiver.stop()


def test_a_webhook_whose_proxy_is_down_waits_to_retry_naming_it(tmp_path, no_public_dns):
    dead = f"http://127.0.0.1:{free_port()}"
    outcome = send_test_hook(tmp_path, dead, "https://hooks.example/h")
    assert outcome.kind is OutcomeKind.RETRY
    assert outcome.detail.startswith(f"POST https://hooks.example/h: cannot connect through the "
                                     f"proxy {dead} ([http] proxy): "), outcome.detail
    assert outcome.detail.endswith("Connection refused"), outcome.detail
