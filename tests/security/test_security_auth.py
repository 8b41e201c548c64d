"""SMTP AUTH (RFC 4954) with PLAIN (RFC 4616) and LOGIN on the real
daemon, and the ban of clients that keep failing."""
import os
import re
import time

import sluice_security_helpers as h
from sluice_security_helpers import assert_reply

FAIL_REPLY = "5.7.8 Error: authentication failed"
CLEARTEXT_SUBMISSION = [{"role": "smtp"},
                        {"role": "submission", "auth_cleartext": True}]


def timed(fn, *a, **kw):
    t = time.monotonic()
    r = fn(*a, **kw)
    return r, time.monotonic() - t


# -- 6. AUTH

def test_auth_plain_and_login_over_tls(secd, pki):
    d = secd(tls=True, passwd=True, auth_fail_delay=1)
    with h.tls_client(d, pki.context()) as c:
        assert_reply(h.auth_plain(c, "alice", h.USERS["alice"]), 235,
                     "2.7.0")
        # AUTH twice: 503.
        assert_reply(h.auth_plain(c, "alice", h.USERS["alice"]), 503,
                     "5.5.1", "already authenticated")
        c.close()
    with h.tls_client(d, pki.context()) as c:
        assert_reply(h.auth_login(c, "carol", h.USERS["carol"]), 235,
                     "2.7.0")
        c.close()
    # PLAIN with the response on its own line (after "334 ").
    with h.tls_client(d, pki.context()) as c:
        r = c.cmd("AUTH PLAIN")
        assert r.code == 334 and r.first == "", r
        assert_reply(c.cmd(h.plain_token("bob@example.org",
                                         h.USERS["bob@example.org"])),
                     235, "2.7.0")
        c.close()
    d.wait_log(r"unknown\[127\.0\.0\.1\]: sasl_method=PLAIN, "
               r"sasl_username=alice$")
    d.wait_log(r"unknown\[127\.0\.0\.1\]: sasl_method=LOGIN, "
               r"sasl_username=carol$")
    for pw in h.USERS.values():
        assert pw not in d.log_text(), "a password is in the log"


def test_auth_failures_delayed_same_reply(secd, pki):
    d = secd(tls=True, passwd=True, auth_fail_delay=1)
    with h.tls_client(d, pki.context()) as c:
        r, dt = timed(h.auth_plain, c, "alice", "wrong password")
        assert_reply(r, 535, "5.7.8")
        assert r.first == FAIL_REPLY, r
        assert dt >= 0.9, "535 after %.2f s, auth_fail_delay is 1 s" % dt
        # Unknown user: the same reply, the same code path (timing is
        # not asserted).
        r = h.auth_plain(c, "nosuchuser", "whatever")
        assert_reply(r, 535, "5.7.8")
        assert r.first == FAIL_REPLY, r
        r = h.auth_login(c, "nosuchuser", "whatever")
        assert r.code == 535 and r.first == FAIL_REPLY, r
        r = h.auth_login(c, "alice", "wrong again")
        assert r.code == 535 and r.first == FAIL_REPLY, r
        # The session goes on: a right password still works.
        assert_reply(h.auth_plain(c, "alice", h.USERS["alice"]), 235)
        c.close()
    log = d.log_text()
    for mech, user in (("PLAIN", "alice"), ("PLAIN", "nosuchuser"),
                       ("LOGIN", "nosuchuser"), ("LOGIN", "alice")):
        assert re.search(r"unknown\[127\.0\.0\.1\]: SASL %s authentication "
                         r"failed, sasl_username=%s$" % (mech, user), log,
                         re.M), "no failure line for %s %s:\n%s" % (
                             mech, user, log)
    assert "wrong password" not in log and "whatever" not in log


def test_auth_refused_in_cleartext(secd, pki):
    d = secd(tls=True, passwd=True)
    with h.raw(d) as c:
        kw = h.ehlo_keywords(c.ehlo())
        assert "AUTH" not in kw, kw
        r = h.auth_plain(c, "alice", h.USERS["alice"])
        assert_reply(r, (538, 503))
        assert r.code == 538 and r.enhanced == "5.7.11", r
        r = c.cmd("AUTH LOGIN")
        assert r.code == 538, r
        # MAIL ... AUTH=<> is not accepted where AUTH is not offered.
        r = c.cmd("MAIL FROM:<a@example.org> AUTH=<>")
        assert_reply(r, 555, "5.5.4")
        c.quit()
    # Without a passwd_file AUTH is off everywhere, TLS or not.
    d2 = secd(tls=True)
    with h.tls_client(d2, pki.context()) as c:
        assert "AUTH" not in h.ehlo_keywords(c.ehlo())
        assert_reply(h.auth_plain(c, "alice", "x"), 503, "5.5.1")
        c.close()


def test_auth_cleartext_listener(secd):
    d = secd(passwd=True, listeners=CLEARTEXT_SUBMISSION)
    # The smtp listener (auth_cleartext false): no AUTH.
    with h.raw(d) as c:
        assert "AUTH" not in h.ehlo_keywords(c.ehlo())
        assert h.auth_plain(c, "alice", h.USERS["alice"]).code == 538
        c.quit()
    # The submission listener with auth_cleartext = true: AUTH without
    # TLS (and no STARTTLS: there are no certificates).
    with h.raw(d, d.port_of("submission")) as c:
        kw = h.ehlo_keywords(c.ehlo())
        assert kw.get("AUTH", "").split() == ["PLAIN", "LOGIN"], kw
        assert "STARTTLS" not in kw
        assert_reply(c.cmd("MAIL FROM:<bob@example.org>"), 530, "5.7.0")
        assert_reply(h.auth_login(c, "bob@example.org",
                                  h.USERS["bob@example.org"]), 235)
        qid = c.send_mail("bob@example.org", ["x@external.test"],
                          h.message_text())
        c.quit()
    msg = d.message(qid)
    assert msg.env["proto"] == "ESMTPA", msg.envelope


def test_auth_syntax_and_abort(secd):
    d = secd(passwd=True, listeners=[{"role": "smtp",
                                      "auth_cleartext": True}])
    with h.raw(d) as c:
        # Before EHLO.
        assert_reply(h.auth_plain(c, "alice", "x"), 503, "5.5.1")
        c.ehlo()
        assert_reply(c.cmd("AUTH CRAM-MD5"), 504, "5.5.4")
        # Malformed base64, inline and as a response.
        assert_reply(c.cmd("AUTH PLAIN !!!notbase64!!!"), 501, "5.5.2")
        r = c.cmd("AUTH PLAIN")
        assert r.code == 334
        assert_reply(c.cmd("%%%%"), 501, "5.5.2")
        # Well-formed base64 that is not a PLAIN message (no NULs).
        assert_reply(c.cmd("AUTH PLAIN " + h.b64("alice")), 501, "5.5.2")
        r = c.cmd("AUTH LOGIN")
        assert r.code == 334
        assert_reply(c.cmd("@@@@"), 501, "5.5.2")
        # "*" cancels (RFC 4954 4): 501.
        assert c.cmd("AUTH PLAIN").code == 334
        assert_reply(c.cmd("*"), 501, "5.0.0", "aborted")
        assert c.cmd("AUTH LOGIN").code == 334
        assert c.cmd(h.b64("alice")).code == 334
        assert_reply(c.cmd("*"), 501, "5.0.0", "aborted")
        # After all that, the exchange is closed and commands work.
        assert_reply(c.cmd("NOOP"), 250)
        assert_reply(h.auth_plain(c, "alice", h.USERS["alice"]), 235)
        assert_reply(c.cmd("AUTH LOGIN"), 503, "5.5.1",
                     "already authenticated")
        c.quit()


def test_auth_inside_transaction_refused(secd):
    d = secd(passwd=True, listeners=[{"role": "smtp",
                                      "auth_cleartext": True}])
    with h.raw(d) as c:
        c.ehlo()
        assert_reply(c.cmd("MAIL FROM:<a@example.org>"), 250)
        assert_reply(h.auth_plain(c, "alice", h.USERS["alice"]), 503,
                     "5.5.1", "transaction")
        c.quit()


def test_passwd_change_without_restart(secd, sluice_build, passwd_file):
    d = secd(passwd=True, auth_fail_delay=0,
             listeners=[{"role": "smtp", "auth_cleartext": True}])

    def try_login(pw):
        with h.raw(d) as c:
            c.ehlo()
            r = h.auth_plain(c, "alice", pw)
            c.quit()
        return r

    assert try_login(h.USERS["alice"]).code == 235
    st = os.stat(passwd_file)
    h.ctl_user(sluice_build, passwd_file, "passwd", "alice", "brand new pw")
    st2 = os.stat(passwd_file)
    # sluicectl keeps the file readable by the daemon's group only.
    assert (st2.st_mode & 0o777) == 0o640, oct(st2.st_mode)
    assert (st2.st_uid, st2.st_gid) == (st.st_uid, st.st_gid), \
        "sluicectl changed the owner of %s: %d:%d -> %d:%d" % (
            passwd_file, st.st_uid, st.st_gid, st2.st_uid, st2.st_gid)
    # The daemon looks at the file at most once a second.
    r = h.wait_for(lambda: (lambda r: r if r.code == 235 else None)(
        try_login("brand new pw")), 6, "the new password to work")
    assert r.code == 235
    r = try_login(h.USERS["alice"])
    assert r.code == 535, "the old password still works: %s" % r
    # Other users are untouched.
    with h.raw(d) as c:
        c.ehlo()
        assert h.auth_plain(c, "carol", h.USERS["carol"]).code == 235
        c.quit()
    # A deleted user can no longer log in.
    h.ctl_user(sluice_build, passwd_file, "del", "carol")
    time.sleep(1.1)

    def carol_fails():
        with h.raw(d) as c:
            c.ehlo()
            r = h.auth_plain(c, "carol", h.USERS["carol"])
            c.quit()
        return r.code == 535
    h.wait_for(carol_fails, 6, "carol's login to be refused")


# -- 7. Brute force: bans

BAN = dict(auth_fail_max=3, auth_fail_window=60, auth_ban_time=30,
           auth_fail_delay=0, relay_networks=[],
           listeners=[{"role": "smtp", "auth_cleartext": True}])


def test_ban_after_repeated_failures(secd):
    d = secd(passwd=True, **BAN)
    # A session opened before the ban, used after it.
    early = h.raw(d)
    early.ehlo()
    with h.raw(d) as c:
        c.ehlo()
        assert h.auth_plain(c, "alice", "guess 1").code == 535
        assert h.auth_login(c, "alice", "guess 2").code == 535
        r = h.auth_plain(c, "alice", "guess 3")
        assert_reply(r, 421, "4.7.0", "too many failed logins")
        c.assert_closed(5)
    d.wait_log(r"unknown\[127\.0\.0\.1\]: banned for 30s after repeated "
               r"AUTH failures")
    # New connections are refused at once.
    with h.raw(d, greeting=False) as c:
        r = c.read_reply()
        assert_reply(r, 421, "4.7.0", "too many failed logins")
        c.assert_closed(5)
    d.wait_log(r"reject: connect from unknown\[127\.0\.0\.1\]: too many "
               r"failed logins from your address")
    # The earlier session is refused at AUTH, even with the right
    # password.
    try:
        r = h.auth_plain(early, "alice", h.USERS["alice"])
        assert_reply(r, 421, "4.7.0", "too many failed logins")
        early.assert_closed(5)
    finally:
        early.close()


def test_ban_is_per_window_and_trusted_exempt(secd):
    # Trusted networks (the default relay_networks has 127.0.0.0/8) are
    # never banned.
    opts = dict(BAN)
    opts.pop("relay_networks")
    d = secd(passwd=True, **opts)
    with h.raw(d) as c:
        c.ehlo()
        for i in range(5):
            r = h.auth_plain(c, "alice", "guess %d" % i)
            assert_reply(r, 535, "5.7.8")
        assert_reply(h.auth_plain(c, "alice", h.USERS["alice"]), 235)
        c.quit()
    with h.raw(d) as c:
        assert c.greeting.code == 220
        c.quit()
    assert "banned" not in d.log_text()


def test_successes_do_not_ban(secd):
    d = secd(passwd=True, **BAN)
    for _ in range(4):
        with h.raw(d) as c:
            c.ehlo()
            assert h.auth_plain(c, "alice", h.USERS["alice"]).code == 235
            c.quit()
    # Two failures stay under auth_fail_max = 3.
    with h.raw(d) as c:
        c.ehlo()
        assert h.auth_plain(c, "alice", "bad").code == 535
        assert h.auth_plain(c, "alice", "bad").code == 535
        assert h.auth_plain(c, "alice", h.USERS["alice"]).code == 235
        c.quit()
    with h.raw(d) as c:
        assert c.greeting.code == 220
        c.quit()


def test_ban_inside_tls(secd, pki):
    """The same ban over STARTTLS: the 421 arrives through TLS and the
    daemon lives on."""
    opts = dict(BAN)
    opts.pop("listeners")
    d = secd(tls=True, passwd=True, **opts)
    with h.tls_client(d, pki.context()) as c:
        assert h.auth_plain(c, "alice", "guess 1").code == 535
        assert h.auth_plain(c, "alice", "guess 2").code == 535
        c.send_line("AUTH PLAIN " + h.plain_token("alice", "guess 3"))
        try:
            replies = c.read_until_closed(5)
        except h.Closed as e:
            replies = ["<%s>" % e]
        assert [getattr(r, "code", r) for r in replies] == [421], \
            "expected 421 and the close, got %s" % replies
    d.wait_log(r"unknown\[127\.0\.0\.1\]: banned for 30s")
    time.sleep(0.5)
    d.assert_alive()
    with h.raw(d, greeting=False) as c:
        assert_reply(c.read_reply(), 421, "4.7.0")
