"""End-to-end tests of the security milestone (M3) against the real
sluiced: STARTTLS and implicit TLS, SNI, certificate reload, AUTH, bans,
relay policy, sender rules, sending caps, per-IP limits, the tarpit and
the privilege drop.

SLUICE_BUILD (absolute) selects the build directory; default <repo>/build.
The daemon is started as the test runner's user; run as root (as CI
does) it forks a root parent and drops the sessions to user "sluice".

The factory fixture ``secd(**overrides)`` starts a Sluiced
(tests/helpers/sluiced.py) whose config is its DEFAULTS plus the
overrides.  Keywords beyond config keys:

    listeners = [{"role": "smtp"}, {"role": "submissions"}, ...]
        one listener per entry on its own free port of 127.0.0.1
        (d.ports[i]); the first is d.port.  Default: one "smtp".
    tls = True            tls_certificates = the default certificate
    passwd = True         passwd_file = a file with USERS (see below)

Lists become libconfig lists: a list of str is [ "a", "b" ], a list of
dict is ( { ... }, { ... } ).
"""
import base64
import os
import pwd
import socket
import ssl
import subprocess
import sys
import time

import pytest

from sluice_test_helpers import certs
from sluice_test_helpers.sluiced import (  # noqa: F401
    DEFAULTS, Sluiced, running_as_root)
from sluice_test_helpers.smtpclient import (  # noqa: F401
    RawClient, Closed, assert_reply, queued_id, TIMEOUT)

HOSTNAME = DEFAULTS["hostname"]          # "mx.test.example"
SNI_NAME = "mail.other.example"

# AUTH users in the passwd file made for passwd=True.
USERS = {
    "alice": "alice pw 1",
    "bob@example.org": "bob-pw-2",
    "carol": "carol-pw-3",
}


def sluice_ids():
    """(uid, gid) of the system user the daemon drops to."""
    pw = pwd.getpwnam("sluice")
    return pw.pw_uid, pw.pw_gid


# -- certificates

class PKI:
    def __init__(self, directory):
        self.dir = str(directory)
        self.ca = certs.make_ca(self.dir)
        self.ca_cert = self.ca[0]
        # The default certificate names the daemon's hostname, the other
        # one is chosen by SNI only.
        self.main = certs.make_cert(self.dir, self.ca, [HOSTNAME])
        self.other = certs.make_cert(self.dir, self.ca, [SNI_NAME])

    def context(self, **kw):
        """A client context that verifies against the test CA."""
        ctx = ssl.create_default_context(cafile=self.ca_cert)
        for k, v in kw.items():
            setattr(ctx, k, v)
        return ctx

    def cert_entry(self, pair):
        return {"cert": pair[0], "key": pair[1]}


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    return PKI(d)


# -- password files

def ctl_user(build, path, verb, name, password=None):
    r = subprocess.run([os.path.join(build, "sluicectl"), "-p", str(path),
                        "user", verb, name],
                       input=(password + "\n") if password is not None
                       else "", capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, "sluicectl user %s %s: %s" % (verb, name,
                                                           r.stderr)
    return r


def make_passwd(build, path, users):
    """A passwd file made with sluicectl, readable by the daemon's group
    and by no one else."""
    for name, pw in users.items():
        ctl_user(build, path, "add", name, pw)
    os.chmod(path, 0o640)
    if running_as_root():
        os.chown(path, 0, sluice_ids()[1])
    return str(path)


# -- the daemon factory

@pytest.fixture
def passwd_file(sluice_build, tmp_path):
    return make_passwd(sluice_build, tmp_path / "passwd", USERS)


@pytest.fixture
def secd(sluiced_daemons, request, pki):
    """Factory: secd(tls=False, passwd=False, **overrides), see the
    docstring of this module.  Each daemon is stopped and checked at the
    test's teardown."""
    sluiced_daemons.defer = False

    def factory(tls=False, passwd=False, **overrides):
        if tls and "tls_certificates" not in overrides:
            overrides["tls_certificates"] = [pki.cert_entry(pki.main)]
        if passwd and "passwd_file" not in overrides:
            overrides["passwd_file"] = request.getfixturevalue("passwd_file")
        return sluiced_daemons.start(**overrides)

    return factory


# -- clients

def raw(d, port=None, **kw):
    """A plain RawClient to d (on port, default the first listener)."""
    return RawClient(d.host, port or d.port, **kw)


def raw_from(d, src, port=None, greeting=True):
    """A RawClient to d from the local address src (another 127.x.y.z,
    so that per-IP counts start from zero whatever else connected from
    127.0.0.1, such as the readiness probe of start())."""
    c = RawClient.__new__(RawClient)
    c.host, c.port, c.timeout = d.host, port or d.port, TIMEOUT
    c.sock = socket.create_connection((c.host, c.port), timeout=TIMEOUT,
                                      source_address=(src, 0))
    c.sock.settimeout(TIMEOUT)
    c.buf = b""
    c.greeting = c.read_reply() if greeting else None
    return c


def wrap_tls(client, ctx, server_hostname=HOSTNAME):
    """Turn the RawClient's socket into TLS (after "220 Ready to start
    TLS", or at once for implicit TLS); returns the SSLSocket."""
    assert client.buf == b"", "clear text left over before TLS: %r" \
        % client.buf
    client.sock.settimeout(client.timeout)
    client.sock = ctx.wrap_socket(client.sock,
                                  server_hostname=server_hostname)
    return client.sock


def starttls(client, ctx, server_hostname=HOSTNAME):
    """EHLO, STARTTLS, handshake, EHLO again; returns the second EHLO."""
    client.ehlo()
    assert_reply(client.cmd("STARTTLS"), 220, "2.0.0")
    wrap_tls(client, ctx, server_hostname)
    return client.ehlo()


def tls_client(d, ctx, port=None, server_hostname=HOSTNAME):
    """A RawClient that has done STARTTLS and EHLO."""
    c = raw(d, port)
    assert c.greeting.code == 220, c.greeting
    starttls(c, ctx, server_hostname)
    return c


def implicit_tls_client(d, ctx, port, server_hostname=HOSTNAME):
    """A RawClient on a submissions listener: TLS, then the greeting."""
    c = RawClient(d.host, port, greeting=False)
    wrap_tls(c, ctx, server_hostname)
    c.greeting = c.read_reply()
    return c


def b64(s):
    if isinstance(s, str):
        s = s.encode("utf-8")
    return base64.b64encode(s).decode("ascii")


def plain_token(user, password):
    return b64("\0%s\0%s" % (user, password))


def auth_plain(client, user, password, timeout=None):
    return client.cmd("AUTH PLAIN " + plain_token(user, password), timeout)


def auth_login(client, user, password, timeout=None):
    r = client.cmd("AUTH LOGIN")
    assert_reply(r, 334)
    assert r.first == "VXNlcm5hbWU6", r
    r = client.cmd(b64(user))
    assert_reply(r, 334)
    assert r.first == "UGFzc3dvcmQ6", r
    return client.cmd(b64(password), timeout)


def ehlo_keywords(reply):
    """The EHLO reply's keywords (first word of each line after the
    first), upper case, with their parameters: {"AUTH": "PLAIN LOGIN"}."""
    out = {}
    for line in reply.lines[1:]:
        kw, _, params = line.partition(" ")
        out[kw.upper()] = params
    return out


def message_text(subject="test", body="hello"):
    return ("From: a@example.org\r\nTo: b@example.net\r\nSubject: %s\r\n"
            "\r\n%s\r\n" % (subject, body)).encode()


def wait_for(pred, timeout=10.0, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.0f s waiting for %s"
                                 % (timeout, what))
        time.sleep(0.05)


def tcp_connect(d, port=None, timeout=TIMEOUT):
    s = socket.create_connection((d.host, port or d.port), timeout=timeout)
    s.settimeout(timeout)
    return s


# Test modules import these helpers as "sluice_security_helpers" (a
# plain "import conftest" could find another directory's conftest).
sys.modules["sluice_security_helpers"] = sys.modules[__name__]
