"""End-to-end delivery tests of sluiced (milestone M2): the real daemon
relaying to capture servers on 127.0.0.x, resolving through a private
unbound, delivering to Maildirs and LMTP.  The helpers live in
relay_helpers.py; see its docstring for the fixtures.

SLUICE_BUILD (absolute) selects the build directory; default <repo>/build.
"""
import os
import socket
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

from relay_helpers import RELAY_DEFAULTS, SENDER_MX, Relay  # noqa: E402
from sluice_test_helpers import capture_smtp, dnsserver  # noqa: E402


@pytest.fixture
def dns():
    servers = []

    def factory(records, refuse=()):
        d = dnsserver.DnsServer(records, refuse=refuse)
        d.start()
        servers.append(d)
        return d

    yield factory
    for d in servers:
        d.stop()


def _port_free_everywhere(port, hosts):
    socks = []
    try:
        for h in hosts:
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            socks.append(s)
            s.bind((h, port))
        return True
    except OSError:
        return False
    finally:
        for s in socks:
            s.close()


@pytest.fixture
def mx_port():
    hosts = ["127.0.0.%d" % i for i in range(2, 21)]
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.2", 0))
            port = s.getsockname()[1]
        if _port_free_everywhere(port, hosts):
            return port
    pytest.fail("no port free on 127.0.0.2..20")


@pytest.fixture
def capture(mx_port):
    servers = []

    def factory(ip="127.0.0.2", port=None, **opts):
        srv = capture_smtp.CaptureServer(host=ip, port=port or mx_port,
                                         **opts)
        srv.start()
        servers.append(srv)
        return srv

    yield factory
    for s in servers:
        try:
            s.stop()
        except Exception:       # a stalled handler must not hide the result
            pass


@pytest.fixture
def sender_mx(capture):
    """The capture server behind snd.test (SENDER's domain): bounces."""
    return capture(SENDER_MX)


@pytest.fixture
def relay(sluiced_daemons, mx_port):
    """Factory: relay(dns=DnsServer or None, **overrides) starts sluiced
    with RELAY_DEFAULTS, smtp_port = mx_port and dns_forwarder pointing at
    dns.  Stopped at teardown; a crash, a bad exit, a sanitizer report or
    a recipient marked sent on a reply that is no delivery fails the test
    (Relay.teardown_errors)."""
    sluiced_daemons.defer = False

    def factory(dns=None, **overrides):
        settings = dict(RELAY_DEFAULTS)
        settings["smtp_port"] = mx_port
        if dns is not None:
            settings["dns_forwarder"] = dns.forwarder
        settings.update(overrides)
        return sluiced_daemons.start(Relay, **settings)

    return factory
