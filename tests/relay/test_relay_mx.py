"""MX delivery: preference and fallback, implicit MX, null MX, NXDOMAIN,
loops (tests 1, 2, 12 of the M2 brief)."""
import re

from relay_helpers import (SENDER, SENDER_RECORDS, Report, make_message,
                      msgid_of)


def test_mx_fallback_when_first_mx_refuses_connections(dns, capture, relay,
                                                       mx_port):
    # 127.0.0.2 (MX 10) has nothing listening on mx_port: connection refused.
    d = dns(["dst.test MX 10 a.dst.test", "dst.test MX 20 b.dst.test",
             "a.dst.test A 127.0.0.2", "b.dst.test A 127.0.0.3"]
            + SENDER_RECORDS)
    good = capture("127.0.0.3")
    r = relay(dns=d)
    msg = make_message(SENDER, ["user@dst.test"])
    qid = r.send("user@dst.test", msg)
    got = r.wait_msgs(good, 1, 15)
    assert len(got) == 1
    assert got[0].rcpt_tos == ["user@dst.test"]
    assert msgid_of(got[0].content) == msgid_of(msg)
    r.wait_removed(qid)
    line = r.wait_all_log(r"%s: to=<user@dst.test>, relay=[^,]*127\.0\.0\.3"
                          r".*status=sent" % qid)
    assert "dsn=2." in line.string


def test_mx_fallback_when_first_mx_says_421(dns, capture, relay):
    d = dns(["dst.test MX 10 a.dst.test", "dst.test MX 20 b.dst.test",
             "a.dst.test A 127.0.0.2", "b.dst.test A 127.0.0.3"]
            + SENDER_RECORDS)
    busy = capture("127.0.0.2", greeting="421 4.3.2 busy, try later")
    good = capture("127.0.0.3")
    r = relay(dns=d)
    qid = r.send("user@dst.test")
    got = r.wait_msgs(good, 1, 15)
    assert got[0].rcpt_tos == ["user@dst.test"]
    assert busy.connections >= 1, "the preferred MX was never tried"
    assert busy.messages == []
    r.wait_removed(qid)
    r.wait_all_log(r"%s: to=<user@dst.test>, relay=[^,]*127\.0\.0\.3.*"
                   r"status=sent" % qid)


def test_lower_preference_is_tried_first(dns, capture, relay):
    # Both MX hosts work: every message must go to the preferred one.
    d = dns(["dst.test MX 20 b.dst.test", "dst.test MX 10 a.dst.test",
             "a.dst.test A 127.0.0.2", "b.dst.test A 127.0.0.3"]
            + SENDER_RECORDS)
    first = capture("127.0.0.2")
    second = capture("127.0.0.3")
    r = relay(dns=d)
    for _ in range(3):
        r.send("user@dst.test")
    r.wait_msgs(first, 3, 15)
    r.wait_queue_empty()
    assert second.messages == []


def test_implicit_mx_from_a_record(dns, capture, relay):
    d = dns(["amx.test A 127.0.0.4"] + SENDER_RECORDS)
    srv = capture("127.0.0.4")
    r = relay(dns=d)
    qid = r.send("who@amx.test")
    got = r.wait_msgs(srv, 1, 15)
    assert got[0].rcpt_tos == ["who@amx.test"]
    r.wait_removed(qid)


def _bounce_for(r, sender_mx, timeout=15):
    got = r.wait_msgs(sender_mx, 1, timeout)
    assert got[0].mail_from == "", \
        "notice not sent from <>: MAIL FROM:<%s>" % got[0].mail_from
    assert got[0].rcpt_tos == [SENDER]
    return Report(got[0].content)


def test_null_mx_bounces_at_once(dns, capture, relay, sender_mx):
    d = dns(["null.test MX 0 ."] + SENDER_RECORDS)
    r = relay(dns=d, retry_min="10s", retry_max="10s")
    qid = r.send("x@null.test")
    rep = _bounce_for(r, sender_mx, timeout=8)     # no retry in between
    rc = rep.rcpt("x@null.test")
    assert rc["action"].lower() == "failed"
    assert rc["status"] == "5.1.10"
    r.wait_removed(qid)
    assert not [l for l in r.lines_of(qid) if "deferred" in l], \
        r.lines_of(qid)


def test_nxdomain_bounces(dns, capture, relay, sender_mx):
    d = dns(["other.test A 127.0.0.5"] + SENDER_RECORDS)
    r = relay(dns=d, retry_min="10s", retry_max="10s")
    qid = r.send("x@nowhere.test")
    rep = _bounce_for(r, sender_mx, timeout=8)
    rc = rep.rcpt("x@nowhere.test")
    assert rc["action"].lower() == "failed"
    assert rc["status"].startswith("5."), rc
    r.wait_removed(qid)


def _received_hops(n):
    """n Received: header fields, as n earlier relays would add them."""
    return ["Received: from hop%d.test by hop%d.test; "
            "Sun, 29 Nov 2026 06:00:00 +0000" % (i, i + 1) for i in range(n)]


def test_mail_loop_bounces_with_5_4_6(dns, capture, relay, sender_mx):
    d = dns(["dst.test MX 10 a.dst.test", "a.dst.test A 127.0.0.2"]
            + SENDER_RECORDS)
    dst = capture("127.0.0.2")
    r = relay(dns=d)
    # 50 Received: in the message + the one sluiced adds = 51 > 50.
    extra = _received_hops(50)
    qid = r.send("user@dst.test",
                 make_message(SENDER, ["user@dst.test"], extra=extra))
    rep = _bounce_for(r, sender_mx)
    rc = rep.rcpt("user@dst.test")
    assert rc["action"].lower() == "failed"
    assert rc["status"] == "5.4.6"
    r.wait_removed(qid)
    assert dst.messages == [], "a looping message was delivered"


def test_49_received_is_not_a_loop(dns, capture, relay, sender_mx):
    d = dns(["dst.test MX 10 a.dst.test", "a.dst.test A 127.0.0.2"]
            + SENDER_RECORDS)
    dst = capture("127.0.0.2")
    r = relay(dns=d)
    extra = _received_hops(49)
    qid = r.send("user@dst.test",
                 make_message(SENDER, ["user@dst.test"], extra=extra))
    got = r.wait_msgs(dst, 1, 15)
    n = len(re.findall(rb"(?im)^Received:", got[0].content))
    assert n == 50
    r.wait_removed(qid)
    assert sender_mx.messages == []
