"""Per-recipient replies, retries, backoff, expiry, bounces, delay and
success notices, DSN parameters (tests 4 to 7 of the M2 brief)."""
import re
import time

import pytest

from relay_helpers import (SENDER, SENDER_RECORDS, Report, make_message,
                           msgid_of)

DST = ["dst.test MX 10 a.dst.test", "a.dst.test A 127.0.0.2"] \
    + SENDER_RECORDS


def notices(sender_mx):
    """Every notice the sender's MX got, as Reports; each must come from
    <> to SENDER."""
    out = []
    for m in sender_mx.messages:
        assert m.mail_from == "", "notice from <%s>, not <>" % m.mail_from
        assert m.rcpt_tos == [SENDER], m.rcpt_tos
        out.append(Report(m.content))
    return out


def wait_notices(r, sender_mx, n, timeout=15):
    r.wait_msgs(sender_mx, n, timeout)
    return notices(sender_mx)


# --- test 4: per-recipient replies ------------------------------------

def test_one_recipient_refused_one_bounce_for_it_only(dns, capture, relay,
                                                      sender_mx):
    d = dns(DST)
    dst = capture("127.0.0.2", rcpt_replies={
        "bad@dst.test": "550 5.1.1 <bad@dst.test>: no such user here"})
    r = relay(dns=d)
    msg = make_message(SENDER, ["good@dst.test", "bad@dst.test"])
    qid = r.send(["good@dst.test", "bad@dst.test"], msg)
    got = r.wait_msgs(dst, 1, 15)
    assert got[0].rcpt_tos == ["good@dst.test"]
    reps = wait_notices(r, sender_mx, 1)
    r.wait_removed(qid)
    time.sleep(0.5)
    assert len(dst.messages) == 1, "good recipient delivered twice"
    assert len(sender_mx.messages) == 1, "more than one bounce"
    rep = reps[0]
    assert rep.final_recipients() == ["bad@dst.test"]
    rc = rep.rcpts[0]
    assert rc["action"].lower() == "failed"
    assert rc["status"] == "5.1.1"
    assert "no such user here" in rc["diagnostic-code"], rc
    assert rc["diagnostic-code"].lower().startswith("smtp;"), rc
    assert "127.0.0.2" in rc.get("remote-mta", "") or \
        "a.dst.test" in rc.get("remote-mta", ""), rc
    assert rep.fields.get("reporting-mta", "").lower().startswith("dns;")
    assert "arrival-date" in rep.fields, rep.fields
    assert "last-attempt-date" in rc, rc
    # The original comes back in full by default (RFC 3461 4.3).
    assert rep.returned is not None
    assert rep.returned.get_content_type() == "message/rfc822"
    assert msgid_of(rep.returned.as_bytes()) == msgid_of(msg)
    assert b"Hello from the relay tests" in rep.returned.as_bytes()
    r.wait_all_log(r"%s: to=<bad@dst\.test>.*dsn=5\.1\.1, status=bounced"
                   % qid)
    r.wait_all_log(r"%s: sender non-delivery notification: \S+" % qid)


def test_451_recipient_is_retried_and_delivered(dns, capture, relay,
                                                sender_mx):
    d = dns(DST)
    dst = capture("127.0.0.2", rcpt_replies={
        "later@dst.test": "451 4.2.0 <later@dst.test>: try again later"})
    r = relay(dns=d)
    qid = r.send(["now@dst.test", "later@dst.test"])
    r.wait_all_log(r"%s: to=<later@dst\.test>.*status=deferred" % qid,
                   timeout=15)
    first = r.wait_msgs(dst, 1, 15)
    assert first[0].rcpt_tos == ["now@dst.test"]
    dst.opts["rcpt_replies"] = {}
    got = r.wait_msgs(dst, 2, 15)
    assert got[1].rcpt_tos == ["later@dst.test"], \
        "the retry went to %s" % got[1].rcpt_tos
    r.wait_removed(qid)
    time.sleep(0.3)
    assert len(dst.messages) == 2
    assert sender_mx.messages == [], "a notice was sent for a retried rcpt"


# --- test 5: backoff and expiry ---------------------------------------

def _deferred_delays(r, qid):
    out = []
    for line in r.lines_of(qid):
        if "status=deferred" in line:
            m = re.search(r"delay=([0-9.]+)", line)
            out.append(float(m.group(1)))
    return out


def test_backoff_delay_notice_and_expiry(dns, capture, relay, sender_mx):
    d = dns(DST)
    capture("127.0.0.2", rcpt_replies={
        "slow@dst.test": "451 4.3.0 <slow@dst.test>: always later"})
    r = relay(dns=d, retry_min="1s", retry_max="2s", queue_lifetime="7s",
              delay_warning="2s")
    t0 = time.monotonic()
    qid = r.send("slow@dst.test")
    r.wait_removed(qid, timeout=20)
    elapsed = time.monotonic() - t0
    assert elapsed >= 6, "gave up after %.1fs, lifetime 7s" % elapsed
    delays = _deferred_delays(r, qid)
    assert len(delays) >= 4, "only %d attempts: %s" % (len(delays), delays)
    gaps = [b - a for a, b in zip(delays, delays[1:])]
    assert all(g >= 0.8 for g in gaps), "retried too soon: %s" % gaps
    assert gaps[1] >= gaps[0] + 0.5, "no backoff: gaps %s" % gaps
    assert max(gaps) <= 3.0, "retry_max 2s not honoured: %s" % gaps
    reps = wait_notices(r, sender_mx, 2, timeout=5)
    time.sleep(0.5)
    reps = notices(sender_mx)
    actions = [rep.actions() for rep in reps]
    assert actions == [["delayed"], ["failed"]], actions
    delayed, failed = reps
    assert delayed.rcpt("slow@dst.test")["status"].startswith("4.")
    assert "always later" in failed.rcpt("slow@dst.test")["diagnostic-code"]
    # a delay notice returns headers only (RFC 3461 4.3 leaves it to us,
    # but a full copy of a message still being retried is pointless)
    assert r.queue_ids() == []


# --- test 6: the null sender ------------------------------------------

def test_no_bounce_for_null_sender(dns, capture, relay, sender_mx):
    d = dns(DST)
    dst = capture("127.0.0.2", rcpt_replies={
        "bad@dst.test": "550 5.1.1 no such user"})
    r = relay(dns=d)
    msg = make_message("", ["bad@dst.test"], subject="a bounce itself")
    qid = r.send("bad@dst.test", msg, sender="")
    r.wait_removed(qid, timeout=15)
    r.wait_all_log(r"%s: to=<bad@dst\.test>.*status=bounced" % qid)
    time.sleep(1.0)
    assert sender_mx.messages == []
    assert dst.messages == []
    assert not [l for l in r.all_lines() if "notification" in l], \
        r.log_tail()
    assert r.queue_ids() == [], "a notice to <> was queued"


def test_no_delay_notice_or_expiry_bounce_for_null_sender(dns, capture,
                                                          relay, sender_mx):
    d = dns(DST)
    capture("127.0.0.2", rcpt_replies={"slow@dst.test": "451 4.3.0 later"})
    r = relay(dns=d, queue_lifetime="3s", delay_warning="1s")
    qid = r.send("slow@dst.test", make_message("", ["slow@dst.test"]),
                 sender="")
    r.wait_removed(qid, timeout=15)
    time.sleep(0.5)
    assert sender_mx.messages == []
    assert r.queue_ids() == []


# --- test 7: DSN parameters -------------------------------------------

def test_notify_never_no_bounce(dns, capture, relay, sender_mx):
    d = dns(DST)
    capture("127.0.0.2", rcpt_replies={"bad@dst.test": "550 5.1.1 no"})
    r = relay(dns=d)
    qid = r.send("bad@dst.test", rcpt_options={
        "bad@dst.test": ["NOTIFY=NEVER"]})
    r.wait_removed(qid, timeout=15)
    time.sleep(1.0)
    assert sender_mx.messages == []


def test_notify_success_to_a_server_without_dsn(dns, capture, relay,
                                                sender_mx):
    d = dns(DST)
    dst = capture("127.0.0.2", dsn=False)
    r = relay(dns=d)
    qid = r.send(["ok@dst.test", "quiet@dst.test"], rcpt_options={
        "ok@dst.test": ["NOTIFY=SUCCESS", "ORCPT=rfc822;orig-ok@x.test"]})
    r.wait_msgs(dst, 1, 15)
    reps = wait_notices(r, sender_mx, 1)
    r.wait_removed(qid)
    time.sleep(0.5)
    assert len(sender_mx.messages) == 1
    rep = reps[0]
    # Only ok@ asked for it (quiet@ has the default FAILURE,DELAY).
    assert rep.final_recipients() == ["ok@dst.test"]
    rc = rep.rcpt("ok@dst.test")
    # RFC 3461 6.2.1: "relayed" to a server that does not do DSN;
    # "delivered" is tolerated here.
    assert rc["action"].lower() in ("relayed", "delivered"), rc
    assert rc["status"].startswith("2."), rc
    assert "orig-ok@x.test" in rc.get("original-recipient", ""), rc
    # A success notice returns headers only, never the body.
    if rep.returned is not None:
        assert b"Hello from the relay tests" not in rep.returned.as_bytes()


def test_notify_success_passed_on_to_a_dsn_server(dns, capture, relay,
                                                  sender_mx):
    """RFC 3461 5.2.1: relaying to a server that supports DSN, the
    parameters are passed on and this MTA issues no success notice (the
    next hop does)."""
    d = dns(DST)
    dst = capture("127.0.0.2", dsn=True)
    r = relay(dns=d)
    qid = r.send("ok@dst.test", mail_options=["RET=HDRS", "ENVID=env+2D42"],
                 rcpt_options={"ok@dst.test": [
                     "NOTIFY=SUCCESS,FAILURE",
                     "ORCPT=rfc822;orig-ok@x.test"]})
    got = r.wait_msgs(dst, 1, 15)
    r.wait_removed(qid)
    m = got[0]
    assert "RET=HDRS" in m.mail_options, m.mail_options
    assert "ENVID=env+2D42" in m.mail_options, m.mail_options
    opts = [o.upper() for o in m.rcpt_options[0]]
    assert "NOTIFY=SUCCESS,FAILURE" in opts, m.rcpt_options
    assert "ORCPT=RFC822;ORIG-OK@X.TEST" in opts, m.rcpt_options
    time.sleep(1.0)
    assert sender_mx.messages == [], \
        "success notice issued although the next hop took the DSN request"


def test_notify_delay_and_failure_combinations(dns, capture, relay,
                                               sender_mx):
    d = dns(DST)
    capture("127.0.0.2", rcpt_replies={
        a: "451 4.3.0 <%s>: always later" % a
        for a in ("d@dst.test", "f@dst.test", "df@dst.test", "n@dst.test")})
    r = relay(dns=d, queue_lifetime="5s", delay_warning="2s")
    qid = r.send(["d@dst.test", "f@dst.test", "df@dst.test", "n@dst.test"],
                 rcpt_options={"d@dst.test": ["NOTIFY=DELAY"],
                               "f@dst.test": ["NOTIFY=FAILURE"],
                               "df@dst.test": ["NOTIFY=DELAY,FAILURE"],
                               "n@dst.test": ["NOTIFY=NEVER"]})
    r.wait_removed(qid, timeout=20)
    time.sleep(1.0)
    reps = notices(sender_mx)
    kinds = {}
    for rep in reps:
        acts = set(rep.actions())
        assert len(acts) == 1, "mixed notice: %s" % rep.rcpts
        kinds.setdefault(acts.pop(), []).append(rep)
    assert sorted(kinds) == ["delayed", "failed"], \
        [rep.rcpts for rep in reps]
    assert len(kinds["delayed"]) == 1 and len(kinds["failed"]) == 1
    assert kinds["delayed"][0].final_recipients() == \
        ["d@dst.test", "df@dst.test"]
    assert kinds["failed"][0].final_recipients() == \
        ["df@dst.test", "f@dst.test"]


def test_orcpt_envid_and_ret_hdrs_in_bounce(dns, capture, relay, sender_mx):
    d = dns(DST)
    capture("127.0.0.2", rcpt_replies={"bad@dst.test": "550 5.1.1 gone"})
    r = relay(dns=d)
    body = "SECRET-BODY-LINE must not come back with RET=HDRS\r\n"
    msg = make_message(SENDER, ["bad@dst.test"], body=body)
    qid = r.send("bad@dst.test", msg,
                 mail_options=["RET=HDRS", "ENVID=QQ314159"],
                 rcpt_options={"bad@dst.test": [
                     "ORCPT=rfc822;Original+2BTag@orig.test"]})
    rep = wait_notices(r, sender_mx, 1)[0]
    r.wait_removed(qid)
    assert rep.fields.get("original-envelope-id") == "QQ314159", rep.fields
    rc = rep.rcpt("bad@dst.test")
    # xtext decoded: "+2B" is "+"
    assert rc.get("original-recipient", "").replace(" ", "").lower() == \
        "rfc822;original+tag@orig.test", rc
    assert rep.returned is not None, "nothing returned"
    assert rep.returned.get_content_type() == "text/rfc822-headers"
    raw = rep.content
    assert b"SECRET-BODY-LINE" not in raw, "RET=HDRS returned the body"
    assert msgid_of(msg).encode() in raw


def test_ret_full_returns_body(dns, capture, relay, sender_mx):
    d = dns(DST)
    capture("127.0.0.2", rcpt_replies={"bad@dst.test": "550 5.1.1 gone"})
    r = relay(dns=d)
    body = "FULL-BODY-LINE should come back with RET=FULL\r\n"
    msg = make_message(SENDER, ["bad@dst.test"], body=body)
    qid = r.send("bad@dst.test", msg, mail_options=["RET=FULL"])
    rep = wait_notices(r, sender_mx, 1)[0]
    r.wait_removed(qid)
    assert rep.returned.get_content_type() == "message/rfc822"
    assert b"FULL-BODY-LINE" in rep.returned.as_bytes()
    assert "original-envelope-id" not in rep.fields


@pytest.mark.parametrize("limit", ["10K"])
def test_bounce_of_large_message_returns_headers_only(dns, capture, relay,
                                                      sender_mx, limit):
    d = dns(DST)
    capture("127.0.0.2", rcpt_replies={"bad@dst.test": "550 5.1.1 gone"})
    r = relay(dns=d, bounce_return_max=limit)
    body = ("BIG-BODY " + "x" * 70 + "\r\n") * 400     # ~32K
    msg = make_message(SENDER, ["bad@dst.test"], body=body)
    qid = r.send("bad@dst.test", msg)
    rep = wait_notices(r, sender_mx, 1)[0]
    r.wait_removed(qid)
    assert b"BIG-BODY" not in rep.content
    assert msgid_of(msg).encode() in rep.content
