"""TLS on the real daemon: STARTTLS (RFC 3207) and its command injection
(CVE-2011-0411), implicit TLS (RFC 8314), SNI (RFC 6066) and the reload
of certificates on SIGHUP."""
import os
import re
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess
import time
import warnings

import pytest

import sluice_security_helpers as h
from sluice_security_helpers import assert_reply, queued_id

SWAKS = "/usr/bin/swaks"


class LoopbackSMTP(smtplib.SMTP):
    """smtplib.SMTP that is told the server's name (for STARTTLS's
    server_hostname) but always connects to 127.0.0.1."""

    def _get_socket(self, host, port, timeout):
        return socket.create_connection(("127.0.0.1", port), timeout)


class LoopbackSMTP_SSL(smtplib.SMTP_SSL):
    def _get_socket(self, host, port, timeout):
        s = socket.create_connection(("127.0.0.1", port), timeout)
        return self.context.wrap_socket(s, server_hostname=self._host)


def peer_names(cert):
    """(subject CN, [SAN DNS names]) of ssl.getpeercert()."""
    cn = [v for rdn in cert["subject"] for k, v in rdn if k == "commonName"]
    san = [v for k, v in cert.get("subjectAltName", ()) if k == "DNS"]
    return (cn[0] if cn else None), san


def send_message(client, sender, rcpts, subject="tls test"):
    return client.send_mail(sender, rcpts, h.message_text(subject))


# -- 1. STARTTLS

def test_starttls_advertised_and_auth_only_inside(secd, pki):
    d = secd(tls=True, passwd=True)
    with h.raw(d) as c:
        kw = h.ehlo_keywords(c.ehlo())
        assert "STARTTLS" in kw, kw
        assert "AUTH" not in kw, \
            "AUTH offered before TLS with auth_cleartext = false: %s" % kw
        inner = h.ehlo_keywords(h.starttls(c, pki.context()))
        assert inner.get("AUTH", "").split() == ["PLAIN", "LOGIN"], inner
        assert "STARTTLS" not in inner, \
            "STARTTLS offered again inside TLS: %s" % inner
        # A second STARTTLS inside TLS is refused.
        assert_reply(c.cmd("STARTTLS"), 554, "5.5.1")
        assert c.sock.version() == "TLSv1.3"
        c.close()   # QUIT inside TLS: see test_quit_inside_tls
    d.wait_log(r"TLS connection established from unknown\[127\.0\.0\.1\]:"
               r" TLSv1\.3")


def test_smtplib_starttls_verifies(secd, pki):
    d = secd(tls=True, passwd=True)
    s = LoopbackSMTP(h.HOSTNAME, d.port, timeout=10)
    try:
        code, _ = s.ehlo("client.example")
        assert code == 250
        assert s.has_extn("starttls")
        assert not s.has_extn("auth")
        code, msg = s.starttls(context=pki.context())
        assert code == 220, msg
        s.ehlo("client.example")
        assert s.has_extn("auth")
        assert set(s.esmtp_features["auth"].split()) == {"PLAIN", "LOGIN"}
        cert = s.sock.getpeercert()
        assert peer_names(cert) == (h.HOSTNAME, [h.HOSTNAME])
        s.close()
    finally:
        s.close()


def test_starttls_wrong_name_fails_verification(secd, pki):
    """The check above is real: a client expecting another name fails."""
    d = secd(tls=True)
    with h.raw(d) as c:
        c.ehlo()
        assert_reply(c.cmd("STARTTLS"), 220)
        with pytest.raises(ssl.SSLCertVerificationError):
            h.wrap_tls(c, pki.context(), server_hostname="wrong.example")


def test_swaks_tls_received_header(secd, pki):
    d = secd(tls=True)
    token = os.urandom(6).hex()
    cmd = [SWAKS, "--server", "%s:%d" % (d.host, d.port), "--tls",
           "--tls-verify", "--tls-ca-path", pki.ca_cert,
           "--tls-sni", h.HOSTNAME,
           "--to", "someone@external.test", "--from", "me@example.org",
           "--helo", "swaks.example", "--timeout", "10",
           "--header", "Subject: tls " + token]
    p = subprocess.run(cmd, capture_output=True, timeout=60,
                       stdin=subprocess.DEVNULL)
    out = (p.stdout + p.stderr).decode("utf-8", "replace")
    assert re.search(r"<-\s+220 2\.0\.0 Ready to start TLS", out), out
    assert "=== TLS started" in out, out
    m = re.findall(r"<~\s+250 2\.0\.0 Ok: queued as ([0-9A-Z]+)", out)
    assert len(m) == 1, "no queued reply inside TLS:\n" + out
    msg = d.message(m[0])
    rcv = msg.received_unfolded
    assert re.search(r"\bwith ESMTPS\b", rcv), rcv
    assert re.search(r"\(using TLSv1\.3 with cipher [A-Z0-9_-]+", rcv), rcv
    assert msg.env["proto"] == "ESMTPS", msg.envelope
    assert ("Subject: tls " + token).encode() in msg.body
    # Last, so that the checks above run whatever swaks thought of the
    # end of the session (QUIT inside TLS, see test_quit_inside_tls).
    assert p.returncode == 0, "swaks --tls failed (%d):\n%s" % (p.returncode,
                                                                 out)


def test_tls_1_1_refused(secd, pki):
    d = secd(tls=True)
    # The client side must really offer TLS 1.1 (OpenSSL 3 turns it off
    # at the default security level), so that the refusal is the
    # server's.
    ctx = pki.context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_1
        ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    with h.raw(d) as c:
        c.ehlo()
        assert_reply(c.cmd("STARTTLS"), 220)
        with pytest.raises(ssl.SSLError) as ei:
            h.wrap_tls(c, ctx, server_hostname=None)
        err = str(ei.value)
        assert "NO_PROTOCOLS_AVAILABLE" not in err.upper() and \
            "no protocols available" not in err, \
            "the client could not offer TLS 1.1 at all: %s" % err
        # A protocol_version alert, or (as sluiced does) a close without
        # one: either way no TLS 1.1 session.
        assert re.search(r"protocol.version|unsupported.protocol|"
                         r"wrong.version|EOF|closed", err, re.I), err
    # TLS 1.2 is still fine.
    ctx12 = pki.context()
    ctx12.maximum_version = ssl.TLSVersion.TLSv1_2
    with h.raw(d) as c:
        h.starttls(c, ctx12)
        assert c.sock.version() == "TLSv1.2"
        c.close()   # QUIT inside TLS: see test_quit_inside_tls
    d.wait_log(r"TLS handshake failed with unknown\[127\.0\.0\.1\]")


def test_auth_over_tls_proto_esmtpsa(secd, pki):
    d = secd(tls=True, passwd=True)
    with h.tls_client(d, pki.context()) as c:
        assert_reply(h.auth_plain(c, "bob@example.org",
                                  h.USERS["bob@example.org"]), 235, "2.7.0")
        qid = send_message(c, "bob@example.org", ["x@external.test"])
        c.close()   # QUIT inside TLS: see test_quit_inside_tls
    msg = d.message(qid)
    assert msg.env["proto"] == "ESMTPSA", msg.envelope
    assert re.search(r"\bwith ESMTPSA\b", msg.received_unfolded), \
        msg.received_unfolded
    assert "(using TLSv1.3 with cipher" in msg.received_unfolded
    # The login never appears in the stored message (only the proto).
    assert b"bob-pw" not in msg.raw


def test_quit_inside_tls(secd, pki):
    """QUIT after STARTTLS gets its 221 before the close (RFC 5321
    4.1.1.10), as it does in clear text."""
    d = secd(tls=True)
    with h.tls_client(d, pki.context()) as c:
        assert_reply(c.cmd("NOOP"), 250)
        r = c.cmd("QUIT")
        assert_reply(r, 221, "2.0.0")
        c.assert_closed(5)
    d.wait_log(r"disconnect from unknown\[127\.0\.0\.1\] ehlo=2 "
               r"starttls=1 noop=1 quit=1 commands=5$")


def test_421_inside_tls_and_daemon_survives(secd, pki):
    """A session closed by the server inside STARTTLS (here: max_errors)
    gets its 421, and the daemon lives on for the next client."""
    d = secd(tls=True, max_errors=3, soft_error_limit=0)
    with h.tls_client(d, pki.context()) as c:
        assert_reply(c.cmd("BOGUS1"), 500)
        assert_reply(c.cmd("BOGUS2"), 500)
        c.send_line("BOGUS3")
        try:
            replies = c.read_until_closed(5)
        except h.Closed as e:          # reset
            replies = ["<%s>" % e]
        assert [getattr(r, "code", r) for r in replies] == [500, 421], \
            "expected 500 then 421 and the close, got %s" % replies
    time.sleep(0.5)
    d.assert_alive()
    with h.tls_client(d, pki.context()) as c:
        assert_reply(c.cmd("NOOP"), 250)
        c.close()


# -- 2. STARTTLS command injection (CVE-2011-0411)

def test_starttls_injection_discarded(secd, pki):
    d = secd(tls=True)
    with h.raw(d) as c:
        c.ehlo()
        c.send(b"STARTTLS\r\nRSET\r\n")       # one write, one segment
        r = c.read_reply()
        assert_reply(r, 220, "2.0.0")
        assert c.buf == b"", \
            "server answered the injected RSET in clear text: %r" % c.buf
        h.wrap_tls(c, pki.context())
        # The first reply inside TLS must be the one to our EHLO, not a
        # "250 2.0.0 Ok" to the injected RSET.
        r = c.cmd("EHLO client.example")
        assert r.code == 250 and r.first == h.HOSTNAME, \
            "first reply inside TLS is not the EHLO reply: %s" % r
        r = c.cmd("NOOP")
        assert_reply(r, 250, "2.0.0")
        # Nothing else is owed: no late reply to the injected RSET.
        c.sock.settimeout(1.0)
        try:
            extra = c.sock.recv(4096)
        except socket.timeout:
            extra = b""
        assert extra == b"" and c.buf == b"", \
            "reply to an injected command: %r" % (c.buf + extra)
        c.close()   # QUIT inside TLS: see test_quit_inside_tls
    d.wait_log(r"unknown\[127\.0\.0\.1\]: discarded 6 octets pipelined "
               r"after STARTTLS")
    # Only EHLO, STARTTLS, EHLO, NOOP were taken: no rset.
    m = d.wait_log(r"disconnect from unknown\[127\.0\.0\.1\](.*)")
    assert "rset" not in m.group(1), m.group(0)


def test_state_reset_after_starttls(secd, pki):
    d = secd(tls=True)
    with h.raw(d) as c:
        c.ehlo()
        assert_reply(c.cmd("STARTTLS"), 220)
        h.wrap_tls(c, pki.context())
        # RFC 3207 4.2: the client must EHLO again; nothing carried over.
        assert_reply(c.cmd("MAIL FROM:<a@example.org>"), 503, "5.5.1")
        c.ehlo()
        assert_reply(c.cmd("MAIL FROM:<a@example.org>"), 250)
        c.close()   # QUIT inside TLS: see test_quit_inside_tls


# -- 3. Implicit TLS (RFC 8314)

SUBMISSIONS = [{"role": "smtp"}, {"role": "submissions"}]


def test_submissions_implicit_tls(secd, pki):
    d = secd(tls=True, passwd=True, listeners=SUBMISSIONS)
    port = d.port_of("submissions")
    s = LoopbackSMTP_SSL(h.HOSTNAME, port, timeout=10,
                         context=pki.context())
    try:
        # The 220 came through TLS: the socket is an SSLSocket that
        # verified the certificate before smtplib read the greeting.
        assert isinstance(s.sock, ssl.SSLSocket)
        assert peer_names(s.sock.getpeercert())[0] == h.HOSTNAME
        code, _ = s.ehlo("client.example")
        assert code == 250
        assert s.has_extn("auth"), s.esmtp_features
        assert not s.has_extn("starttls"), s.esmtp_features
        code, msg = s.mail("alice@example.org")
        assert (code, msg[:5]) == (530, b"5.7.0"), (code, msg)
        code, msg = s.rcpt("x@external.test")
        assert code == 503, (code, msg)
        s.login("bob@example.org", h.USERS["bob@example.org"])
        code, msg = s.mail("bob@example.org")
        assert code == 250, (code, msg)
        code, msg = s.rcpt("x@external.test")
        assert code == 250, (code, msg)
        s.close()
    finally:
        s.close()


def test_submissions_no_cleartext_greeting(secd, pki):
    d = secd(tls=True, listeners=SUBMISSIONS)
    port = d.port_of("submissions")
    with socket.create_connection((d.host, port), timeout=5) as s:
        s.settimeout(1.5)
        try:
            data = s.recv(100)
        except socket.timeout:
            data = None
        assert not data or not data.startswith(b"220"), \
            "greeting sent in clear text on a submissions listener: %r" \
            % data
    # The same through TLS works.
    c = h.implicit_tls_client(d, pki.context(), port)
    try:
        assert c.greeting.code == 220, c.greeting
        assert c.greeting.first.startswith(h.HOSTNAME)
        c.close()   # QUIT inside TLS: see test_quit_inside_tls
    finally:
        c.close()


# -- 4. SNI

def test_sni_selects_certificate(secd, pki):
    d = secd(tls_certificates=[pki.cert_entry(pki.main),
                               pki.cert_entry(pki.other)])

    def cert_for(sni, check=True):
        ctx = pki.context()
        if not check:
            ctx.check_hostname = False
        with h.raw(d) as c:
            c.ehlo()
            assert_reply(c.cmd("STARTTLS"), 220)
            h.wrap_tls(c, ctx, server_hostname=sni)
            cert = c.sock.getpeercert()
            c.close()   # QUIT inside TLS: see test_quit_inside_tls
        return peer_names(cert)

    assert cert_for(h.SNI_NAME) == (h.SNI_NAME, [h.SNI_NAME])
    assert cert_for(h.HOSTNAME) == (h.HOSTNAME, [h.HOSTNAME])
    # No SNI at all (server_hostname None sends none): the first one.
    assert cert_for(None, check=False) == (h.HOSTNAME, [h.HOSTNAME])
    # A name neither certificate has: the first one.
    assert cert_for("nobody.example", check=False) == (h.HOSTNAME,
                                                       [h.HOSTNAME])


# -- 5. SIGHUP reloads certificates, sessions survive

def _serial(c):
    return c.sock.getpeercert()["serialNumber"]


def test_sighup_reloads_certificates(secd, pki, tmp_path):
    live = tmp_path / "live"
    live.mkdir()
    cert, key = str(live / "server.crt"), str(live / "server.key")
    shutil.copy(pki.main[0], cert)
    shutil.copy(pki.main[1], key)
    os.chmod(key, 0o600)
    d = secd(tls_certificates=[{"cert": cert, "key": key}])

    old = h.tls_client(d, pki.context())
    try:
        old_serial = _serial(old)
        # A new certificate for the same name, written over the files.
        newdir = tmp_path / "new"
        newdir.mkdir()
        ncert, nkey = h.certs.make_cert(str(newdir), pki.ca, [h.HOSTNAME])
        with open(ncert, "rb") as f:
            new_pem = f.read()
        new_serial_hex = subprocess.run(
            ["openssl", "x509", "-noout", "-serial", "-in", ncert],
            capture_output=True, text=True, check=True).stdout
        shutil.copy(nkey, key)
        os.chmod(key, 0o600)
        with open(cert, "wb") as f:
            f.write(new_pem)
        n_before = d.log_text().count("reload: TLS certificates reloaded")
        os.kill(d.daemon_pid(), signal.SIGHUP)
        h.wait_for(lambda: d.log_text().count(
            "reload: TLS certificates reloaded") > n_before, 10,
            "the reload log line")
        d.assert_alive()

        with h.tls_client(d, pki.context()) as new:
            new_serial = _serial(new)
            new.close()
        assert new_serial != old_serial
        assert new_serial.lstrip("0").upper() in \
            new_serial_hex.upper().replace("SERIAL=", ""), \
            (new_serial, new_serial_hex)

        # The session opened before the reload still works, with the
        # certificate it started with.
        assert _serial(old) == old_serial
        qid = send_message(old, "a@example.org", ["x@external.test"],
                           "after reload")
        assert d.message(qid).env["proto"] == "ESMTPS"
    finally:
        old.close()


def test_sighup_with_broken_key_keeps_old_certificate(secd, pki, tmp_path):
    live = tmp_path / "live"
    live.mkdir()
    cert, key = str(live / "server.crt"), str(live / "server.key")
    shutil.copy(pki.main[0], cert)
    shutil.copy(pki.main[1], key)
    os.chmod(key, 0o600)
    d = secd(tls_certificates=[{"cert": cert, "key": key}])
    with h.tls_client(d, pki.context()) as c:
        serial = _serial(c)
        c.close()   # QUIT inside TLS: see test_quit_inside_tls
    with open(key, "w") as f:
        f.write("not a key\n")
    os.kill(d.daemon_pid(), signal.SIGHUP)
    d.wait_log(r"tls: certificate 1 \(mx\.test\.example\): bad private key")
    d.assert_alive()
    with h.tls_client(d, pki.context()) as c:
        assert _serial(c) == serial
        c.close()   # QUIT inside TLS: see test_quit_inside_tls


# -- Odds and ends

def test_no_certificates_no_starttls(secd):
    d = secd()
    with h.raw(d) as c:
        assert "STARTTLS" not in h.ehlo_keywords(c.ehlo())
        assert_reply(c.cmd("STARTTLS"), 502, "5.5.1")
        assert_reply(c.cmd("NOOP"), 250)
        c.quit()


def test_client_certificate_logged_grants_nothing(secd, pki, tmp_path):
    """tls_request_client_cert: the certificate is logged, never
    trusted: it does not open relaying."""
    d = secd(tls=True, tls_request_client_cert=True, relay_networks=[])
    cdir = tmp_path / "client"
    cdir.mkdir()
    ccert, ckey = h.certs.make_cert(str(cdir), pki.ca, ["client.example"])
    ctx = pki.context()
    ctx.load_cert_chain(ccert, ckey)
    with h.tls_client(d, ctx) as c:
        assert_reply(c.cmd("MAIL FROM:<a@example.org>"), 250)
        assert_reply(c.cmd("RCPT TO:<x@external.test>"), 554, "5.7.1")
        c.close()
    m = d.wait_log(r"Untrusted TLS connection established from "
                   r"unknown\[127\.0\.0\.1\]: TLSv1\.3 .*client "
                   r"certificate (.*)")
    assert "client.example" in m.group(1), m.group(0)
