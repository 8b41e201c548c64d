"""Recipient verification against the LMTP server at RCPT time: with
lmtp_address set, an unknown local mailbox is refused with 550 5.1.1 while
the client waits (no bounce to a possibly forged sender later); a server
that cannot answer gives 451 4.4.3; answers are cached.  The LMTP server
is tests/helpers/capture_smtp.py in LMTP mode; its RCPT replies stand for
Dovecot's userdb.  A probe is a session with MAIL FROM:<> and RSET."""
import threading
import time

import pytest

from relay_helpers import SENDER, SENDER_RECORDS, make_message, msgid_of
from sluice_test_helpers.smtpclient import RawClient, assert_reply
from test_relay_dovecot import dovecot, lmtp_relay  # noqa: F401 (fixtures)

DOMAIN = "example.org"
LMTP_IP = "127.0.0.8"
UNKNOWN_TEXT = "550 5.1.1 <%s> User doesn't exist: %s"


def _unknown(*users):
    return {"%s@%s" % (u, DOMAIN): UNKNOWN_TEXT % ("%s@%s" % (u, DOMAIN),
                                                    "%s@%s" % (u, DOMAIN))
            for u in users}


class RcptLog:
    """Every RCPT the capture server sees, as (mail_from, address)."""

    def __init__(self, srv):
        self.lock = threading.Lock()
        self.seen = []
        handler = srv.controller.handler
        orig = handler.handle_RCPT

        async def counting(server, session, envelope, address, options):
            with self.lock:
                self.seen.append((envelope.mail_from, address))
            return await orig(server, session, envelope, address, options)

        # aiosmtpd looks the hooks up on each new connection.
        handler.handle_RCPT = counting

    def probes(self, addr=None):
        with self.lock:
            return [a for f, a in self.seen
                    if f in ("", "<>") and (addr is None or a == addr)]


@pytest.fixture
def lmtp_setup(relay, dns, capture, tmp_path):
    """factory(rcpt_replies, aliases=None, down=False) -> (relay, lmtp,
    RcptLog); down: lmtp_address names a port nobody listens on."""
    def factory(rcpt_replies=None, aliases=None, down=False):
        lmtp = log = None
        if not down:
            lmtp = capture(LMTP_IP, lmtp=True,
                           rcpt_replies=dict(rcpt_replies or {}))
            log = RcptLog(lmtp)
        kw = {}
        if aliases is not None:
            p = tmp_path / "aliases"
            p.write_text(aliases)
            kw["aliases_file"] = str(p)
        port = lmtp.port if lmtp else capture_port_free()
        r = relay(dns=dns(SENDER_RECORDS), local_domains=[DOMAIN],
                  mailbox_root=str(tmp_path / "mail"),
                  lmtp_address="%s:%d" % (LMTP_IP, port), **kw)
        return r, lmtp, log
    return factory


def capture_port_free():
    import socket
    with socket.socket() as s:
        s.bind((LMTP_IP, 0))
        return s.getsockname()[1]


def _session(r):
    c = RawClient(r.host, r.port, timeout=30)
    assert c.greeting.code == 220, c.greeting
    c.send_line("EHLO client.test")
    rep = c.read_reply()
    assert rep.code == 250, rep
    return c


def test_unknown_user_refused_at_rcpt(lmtp_setup, sender_mx):
    r, lmtp, log = lmtp_setup(_unknown("nobody"))
    addr = "nobody@%s" % DOMAIN
    with _session(r) as c:
        c.expect("MAIL FROM:<%s>" % SENDER, 250)
        rep = c.cmd("RCPT TO:<%s>" % addr)
        assert_reply(rep, 550, "5.1.1")
        assert "User doesn't exist" in rep.text, rep
        c.expect("DATA", 503)
        c.expect("QUIT", 221)
    assert log.probes() == [addr]
    r.wait_all_log(r"reject: RCPT from \S+: 550 5\.1\.1 <nobody@example\.org>")
    time.sleep(1.0)
    assert r.queue_ids() == []
    assert sender_mx.messages == [], "a bounce was sent"
    assert lmtp.messages == []


def test_known_user_accepted_and_delivered(lmtp_setup, sender_mx):
    r, lmtp, log = lmtp_setup(_unknown("nobody"))
    addr = "user@%s" % DOMAIN
    msg = make_message(SENDER, [addr])
    qid = r.send(addr, msg)
    got = r.wait_msgs(lmtp, 1, 15)
    assert got[0].lmtp and got[0].rcpt_tos == [addr]
    assert got[0].mail_from == SENDER
    assert msgid_of(got[0].content) == msgid_of(msg)
    r.wait_removed(qid, timeout=15)
    assert log.probes() == [addr]
    assert sender_mx.messages == []


def test_lmtp_down_gives_451(lmtp_setup):
    r, _, _ = lmtp_setup(down=True)
    with _session(r) as c:
        c.expect("MAIL FROM:<%s>" % SENDER, 250)
        assert_reply(c.cmd("RCPT TO:<user@%s>" % DOMAIN), 451, "4.4.3",
                     "verification failed")
        # Role accounts need no verification (RFC 5321 4.5.1).
        c.expect("RCPT TO:<postmaster@%s>" % DOMAIN, 250)
        c.expect("RSET", 250)
        c.expect("QUIT", 221)
    assert r.queue_ids() == []


def test_lmtp_temporary_reply_gives_451_and_is_not_cached(lmtp_setup):
    addr = "busy@%s" % DOMAIN
    r, lmtp, log = lmtp_setup({addr: "450 4.2.1 <%s> try later" % addr})
    with _session(r) as c:
        c.expect("MAIL FROM:<%s>" % SENDER, 250)
        assert_reply(c.cmd("RCPT TO:<%s>" % addr), 451, "4.4.3")
        lmtp.opts["rcpt_replies"] = {}
        c.expect("RCPT TO:<%s>" % addr, 250)
        c.expect("RSET", 250)
    assert log.probes(addr) == [addr, addr]


def test_pipelined_rcpts_answered_in_order(lmtp_setup):
    r, lmtp, log = lmtp_setup(_unknown("nobody"))
    good = ["one@%s" % DOMAIN, "two@%s" % DOMAIN]
    bad = "nobody@%s" % DOMAIN
    msg = make_message(SENDER, good)
    with _session(r) as c:
        c.send("MAIL FROM:<%s>\r\nRCPT TO:<%s>\r\nRCPT TO:<%s>\r\n"
               "RCPT TO:<%s>\r\nDATA\r\n" % (SENDER, good[0], bad, good[1]))
        replies = c.read_replies(5)
        assert [x.code for x in replies] == [250, 250, 550, 250, 354], \
            replies
        assert_reply(replies[2], 550, "5.1.1")
        assert bad in replies[2].text, replies[2]
        c.send(msg + b".\r\n")
        assert_reply(c.read_reply(), 250, "2.0.0", "queued as")
        c.expect("QUIT", 221)
    got = r.wait_msgs(lmtp, 1, 15)
    assert sorted(got[0].rcpt_tos) == sorted(good)
    assert sorted(log.probes()) == sorted(good + [bad])


def test_cache_one_probe_for_two_messages(lmtp_setup):
    addr = "user@%s" % DOMAIN
    bad = "nobody@%s" % DOMAIN
    r, lmtp, log = lmtp_setup(_unknown("nobody"))
    r.send(addr)
    r.send(addr)
    r.wait_msgs(lmtp, 2, 15)
    assert log.probes(addr) == [addr], log.seen
    # Negative answers are cached too.
    for _ in range(2):
        with _session(r) as c:
            c.expect("MAIL FROM:<%s>" % SENDER, 250)
            assert_reply(c.cmd("RCPT TO:<%s>" % bad), 550, "5.1.1")
            c.expect("QUIT", 221)
    assert log.probes(bad) == [bad], log.seen


def test_alias_to_unknown_local_user_refused(lmtp_setup, sender_mx):
    r, lmtp, log = lmtp_setup(_unknown("ghost"),
                              aliases="sales: ghost\nteam: user, other\n")
    with _session(r) as c:
        c.expect("MAIL FROM:<%s>" % SENDER, 250)
        rep = c.cmd("RCPT TO:<sales@%s>" % DOMAIN)
        assert_reply(rep, 550, "5.1.1")
        assert "ghost" not in rep.text, "alias target disclosed: %s" % rep
        c.expect("RCPT TO:<team@%s>" % DOMAIN, 250)
        c.expect("RSET", 250)
        c.expect("QUIT", 221)
    assert sorted(log.probes()) == ["ghost@%s" % DOMAIN,
                                    "other@%s" % DOMAIN,
                                    "user@%s" % DOMAIN]
    time.sleep(0.5)
    assert r.queue_ids() == []
    assert sender_mx.messages == []


def test_dovecot_unknown_refused_at_rcpt(lmtp_relay, dovecot, sender_mx):
    """The probe against a real Dovecot (skipped without it, as in
    test_relay_dovecot.py): its userdb decides at RCPT time."""
    r = lmtp_relay
    known, unknown = "other@%s" % DOMAIN, "nobody@%s" % DOMAIN
    msg = make_message(SENDER, [known, unknown])
    with _session(r) as c:
        c.expect("MAIL FROM:<%s>" % SENDER, 250)
        c.expect("RCPT TO:<%s>" % known, 250)
        rep = c.cmd("RCPT TO:<%s>" % unknown)
        assert_reply(rep, 550, "5.1.1")
        assert unknown in rep.text, rep
        c.expect("DATA", 354)
        c.send(msg + b".\r\n")
        assert_reply(c.read_reply(), 250, "2.0.0", "queued as")
        c.expect("QUIT", 221)
    got = dovecot.messages("other", 1)
    assert msgid_of(got[0]) == msgid_of(msg)
    r.wait_queue_empty(15)
    time.sleep(0.5)
    assert sender_mx.messages == [], "a bounce was sent"
    assert len(dovecot.messages("other", 1)) == 1
