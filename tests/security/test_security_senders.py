"""Sender rules for authenticated users and the sending caps (per user,
per trusted network), which survive a restart."""
import os
import re

import sluice_security_helpers as h
from sluice_security_helpers import assert_reply

# AUTH without TLS on a loopback listener keeps these tests about the
# rules, not about TLS (TLS + AUTH is covered in test_security_auth.py).
AUTH_LISTENER = [{"role": "smtp", "auth_cleartext": True}]
USER_RULES = [
    {"name": "alice",
     "senders": ["alice@example.org", "@sales.example.org"]},
    {"name": "carol", "senders": ["carol@example.org"],
     "allow_null_sender": True},
]


def login(d, user, port=None):
    c = h.raw(d, port)
    c.ehlo()
    assert_reply(h.auth_plain(c, user, h.USERS[user]), 235)
    return c


def mail(c, sender):
    r = c.cmd("MAIL FROM:<%s>" % sender)
    if r.code == 250:
        assert_reply(c.cmd("RSET"), 250)
    return r


# -- 10. Sender rules

def test_sender_rules(secd):
    d = secd(passwd=True, users=USER_RULES, listeners=AUTH_LISTENER,
             relay_networks=[])
    with login(d, "alice") as c:
        for ok in ("alice@example.org", "ALICE@example.org",
                   "alice@EXAMPLE.ORG", "x@sales.example.org",
                   "anyone@SALES.example.org"):
            assert_reply(mail(c, ok), 250, "2.1.0")
        for bad in ("bob@example.org", "alice@example.net",
                    "alice@example.org.evil.test", "x@evil.sales.example.org",
                    "x@sales.example.org.evil.test", "sales.example.org@evil.test",
                    "alice"):
            r = mail(c, bad)
            assert r.code in (553, 501), "%s: %s" % (bad, r)
            if r.code == 553:
                assert_reply(r, 553, "5.7.1")
                assert r.first == ("5.7.1 <%s>: Sender address rejected: "
                                   "not owned by user alice" % bad), r
        # The null sender needs allow_null_sender.
        assert_reply(mail(c, ""), 553, "5.7.1")
        c.quit()
    d.wait_log(r"reject: MAIL from unknown\[127\.0\.0\.1\]: 553 5\.7\.1 "
               r"<bob@example\.org>: sender not owned by user alice$")
    with login(d, "carol") as c:
        assert_reply(mail(c, ""), 250)
        assert_reply(mail(c, "carol@example.org"), 250)
        assert_reply(mail(c, "alice@example.org"), 553, "5.7.1")
        c.quit()


def test_login_address_sends_as_itself(secd):
    d = secd(passwd=True, users=USER_RULES, listeners=AUTH_LISTENER,
             relay_networks=[])
    # bob@example.org has no users entry: its own address only.
    with login(d, "bob@example.org") as c:
        assert_reply(mail(c, "bob@example.org"), 250)
        assert_reply(mail(c, "Bob@Example.Org"), 250)
        assert_reply(mail(c, "alice@example.org"), 553, "5.7.1")
        assert_reply(mail(c, "bob@example.org.evil.test"), 553, "5.7.1")
        assert_reply(mail(c, ""), 553, "5.7.1")
        qid = c.send_mail("bob@example.org", ["x@external.test"],
                          h.message_text())
        c.quit()
    assert d.message(qid).sender == "bob@example.org"
    # carol without an entry here (a login that is no address): nothing.
    d2 = secd(passwd=True, listeners=AUTH_LISTENER, relay_networks=[])
    with login(d2, "carol") as c:
        assert_reply(mail(c, "carol@example.org"), 553, "5.7.1")
        assert_reply(mail(c, ""), 553, "5.7.1")
        c.quit()


def test_unauthenticated_mail_not_restricted_on_smtp(secd):
    """On an MX (role smtp) MAIL FROM is free without AUTH; the rules
    bind authenticated users only."""
    d = secd(passwd=True, users=USER_RULES, listeners=AUTH_LISTENER,
             relay_networks=[])
    with h.raw(d) as c:
        c.ehlo()
        assert_reply(mail(c, "alice@example.org"), 250)
        assert_reply(mail(c, "bob@example.org"), 250)
        c.quit()


# -- 11. Caps

def send(c, sender, rcpt="x@external.test"):
    return c.send_mail(sender, [rcpt], h.message_text())


def test_hourly_cap_per_user_survives_restart(secd):
    users = [{"name": "alice", "senders": ["alice@example.org"],
              "max_msgs_per_hour": 3}]
    d = secd(passwd=True, users=users, listeners=AUTH_LISTENER,
             relay_networks=[])
    with login(d, "alice") as c:
        for _ in range(3):
            send(c, "alice@example.org")
        r = c.cmd("MAIL FROM:<alice@example.org>")
        assert_reply(r, 451, "4.7.1", "sending limit reached")
        # A temporary refusal: the session goes on.
        assert_reply(c.cmd("NOOP"), 250)
        c.quit()
    d.wait_log(r"reject: MAIL from unknown\[127\.0\.0\.1\]: 451 4\.7\.1 "
               r"sending limit reached for user:alice$")
    # Another user is not affected (the global cap is 0: none).
    with login(d, "bob@example.org") as c:
        for _ in range(4):
            send(c, "bob@example.org")
        c.quit()

    # SIGTERM writes the counters; a new daemon on the same spool reads
    # them back.
    d.stop()
    with open(d.counters_path) as f:
        counters = f.read()
    lines = counters.splitlines()
    assert lines[0] == "sluice-counters 1", counters
    alice = [l for l in lines if l.startswith("user:alice ")]
    assert len(alice) == 1, counters
    assert sum(int(x) for x in re.findall(r"\bh[0-9]+:([0-9]+)",
                                          alice[0])) == 3, alice
    assert sum(int(x) for x in re.findall(r"\bd[0-9]+:([0-9]+)",
                                          alice[0])) == 3, alice
    assert re.match(r"end [0-9]+$", lines[-1]), counters
    if h.running_as_root():
        assert os.stat(d.counters_path).st_uid == h.sluice_ids()[0]
    d.start()
    with login(d, "alice") as c:
        assert_reply(c.cmd("MAIL FROM:<alice@example.org>"), 451, "4.7.1")
        c.quit()
    with login(d, "bob@example.org") as c:
        send(c, "bob@example.org")
        c.quit()


def test_daily_cap_global(secd):
    d = secd(passwd=True, listeners=AUTH_LISTENER, relay_networks=[],
             max_msgs_per_day=2)
    with login(d, "bob@example.org") as c:
        send(c, "bob@example.org")
        send(c, "bob@example.org")
        assert_reply(c.cmd("MAIL FROM:<bob@example.org>"), 451, "4.7.1")
        c.quit()


def test_rcpt_cap_per_message(secd):
    d = secd(passwd=True, listeners=AUTH_LISTENER, relay_networks=[],
             max_rcpts_per_msg=2)
    with login(d, "bob@example.org") as c:
        assert_reply(c.cmd("MAIL FROM:<bob@example.org>"), 250)
        assert_reply(c.cmd("RCPT TO:<r1@external.test>"), 250)
        assert_reply(c.cmd("RCPT TO:<r2@external.test>"), 250)
        r = c.cmd("RCPT TO:<r3@external.test>")
        assert_reply(r, 451, "4.7.1", "too many recipients")
        assert_reply(c.cmd("DATA"), 354)
        c.send(h.message_text() + b".\r\n")
        qid = h.queued_id(c.read_reply())
        c.quit()
    assert d.message(qid).rcpt_addresses == ["r1@external.test",
                                             "r2@external.test"]
    d.wait_log(r"reject: RCPT from unknown\[127\.0\.0\.1\]: 451 4\.7\.1 "
               r"recipient limit 2 reached for user:bob@example\.org$")


def test_caps_for_trusted_network(secd):
    """Without AUTH, a trusted network is the key: the same caps."""
    d = secd(max_msgs_per_hour=2, max_rcpts_per_msg=2)
    with h.raw(d) as c:
        c.ehlo()
        assert_reply(c.cmd("MAIL FROM:<a@example.org>"), 250)
        assert_reply(c.cmd("RCPT TO:<r1@external.test>"), 250)
        assert_reply(c.cmd("RCPT TO:<r2@external.test>"), 250)
        assert_reply(c.cmd("RCPT TO:<r3@external.test>"), 451, "4.7.1")
        assert_reply(c.cmd("RSET"), 250)
        send(c, "a@example.org")
        send(c, "b@example.org")
        assert_reply(c.cmd("MAIL FROM:<c@example.org>"), 451, "4.7.1")
        c.quit()
    # A new connection from the same network: still capped.
    with h.raw(d) as c:
        c.ehlo()
        assert_reply(c.cmd("MAIL FROM:<a@example.org>"), 451, "4.7.1")
        c.quit()
    d.wait_log(r"451 4\.7\.1 sending limit reached for net:127\.0\.0\.0/8$")
    d.wait_log(r"451 4\.7\.1 recipient limit 2 reached for "
               r"net:127\.0\.0\.0/8$")
    # The counters file is written every few seconds (and at exit).
    h.wait_for(lambda: os.path.exists(d.counters_path) and
               "net:127.0.0.0/8 " in open(d.counters_path).read(), 10,
               "net:127.0.0.0/8 in %s" % d.counters_path)
