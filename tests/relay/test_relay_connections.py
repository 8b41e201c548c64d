"""Connections: reuse, per-destination limits and head-of-line blocking,
idle connections, kill -9 during delivery (tests 10, 11 and 13 of the M2
brief)."""
import collections
import smtplib
import time

import pytest

from relay_helpers import SENDER, SENDER_RECORDS, make_message, msgid_of

DST = ["dst.test MX 10 a.dst.test", "a.dst.test A 127.0.0.2"] \
    + SENDER_RECORDS


def send_many(r, rcpt, n, timeout=60, prefix="m"):
    """n messages over one SMTP session; returns {Message-ID: bytes}."""
    sent = {}
    with smtplib.SMTP(r.host, r.port, timeout=timeout) as s:
        s.ehlo("client.test")
        for i in range(n):
            mid = "<%s%d.%f@client.test>" % (prefix, i, time.time())
            msg = make_message(SENDER, [rcpt], msgid=mid,
                               body="body of %s %s\r\n" % (mid, "x" * (i % 97)))
            s.sendmail(SENDER, [rcpt], msg)     # raises unless accepted
            sent[mid] = msg
    return sent


def wait_count(r, srv, n, timeout):
    return r.wait_msgs(srv, n, timeout)


def test_connection_reuse_200_messages(dns, capture, relay):
    d = dns(DST)
    dst = capture("127.0.0.2")
    conc = 4
    r = relay(dns=d, dest_concurrency=conc)
    sent = send_many(r, "user@dst.test", 200)
    got = wait_count(r, dst, 200, timeout=60)
    r.wait_queue_empty(timeout=20)
    time.sleep(0.5)
    got = dst.messages
    by_id = collections.Counter(msgid_of(m.content) for m in got)
    assert set(by_id) == set(sent), "missing: %s" % (set(sent) - set(by_id))
    assert max(by_id.values()) == 1, "duplicates: %s" % [
        k for k, v in by_id.items() if v > 1]
    for m in got:
        orig = sent[msgid_of(m.content)]
        assert m.content.endswith(orig), "altered in transit"
        assert m.rcpt_tos == ["user@dst.test"] and m.mail_from == SENDER
    # 200 messages, at most 4 at a time, 100 per connection: a few
    # connections, not one per message.
    assert dst.connections <= conc * 3, \
        "%d connections for 200 messages" % dst.connections


def test_max_messages_per_connection(dns, capture, relay):
    d = dns(DST)
    dst = capture("127.0.0.2")
    r = relay(dns=d, dest_concurrency=1, max_messages_per_connection=5)
    send_many(r, "user@dst.test", 20)
    wait_count(r, dst, 20, timeout=30)
    r.wait_queue_empty()
    assert dst.connections >= 4, \
        "%d connections carried 20 messages at 5 per connection" \
        % dst.connections


def test_dest_concurrency_is_a_limit(dns, capture, relay):
    # Each message takes 0.3 s at the server: with a limit of 2 the server
    # never sees more than 2 connections at once (counted by arrival
    # times: 10 messages cannot all land in under 1.2 s).
    d = dns(DST)
    dst = capture("127.0.0.2", stall={"dot": 0.3})
    r = relay(dns=d, dest_concurrency=2)
    send_many(r, "user@dst.test", 10)
    t0 = time.monotonic()
    wait_count(r, dst, 10, timeout=30)
    assert time.monotonic() - t0 >= 1.2 - 0.1
    r.wait_queue_empty()
    assert dst.connections <= 2 * 2, dst.connections


@pytest.mark.parametrize("stage", ["greeting", "dot"])
def test_head_of_line_slow_destination_does_not_block_others(dns, capture,
                                                             relay, stage):
    d = dns(["slow.test MX 10 a.slow.test", "a.slow.test A 127.0.0.2",
             "fast.test MX 10 a.fast.test", "a.fast.test A 127.0.0.3"]
            + SENDER_RECORDS)
    slow = capture("127.0.0.2", stall={stage: 20})
    fast = capture("127.0.0.3")
    r = relay(dns=d, dest_concurrency=4, outbound_concurrency=8,
              smtp_done_timeout="30s", smtp_greeting_timeout="30s",
              smtp_command_timeout="30s", smtp_data_timeout="30s")
    send_many(r, "u@slow.test", 10, prefix="slow")
    time.sleep(0.5)     # let the slow destination take its connections
    t0 = time.monotonic()
    sent = send_many(r, "u@fast.test", 20, prefix="fast")
    got = wait_count(r, fast, 20, timeout=10)
    took = time.monotonic() - t0
    assert took < 8, "20 messages to a healthy destination took %.1fs" % took
    assert {msgid_of(m.content) for m in got} == set(sent)
    assert slow.messages == [], "the stalled server answered?"
    assert slow.connections <= 4, \
        "dest_concurrency 4 exceeded: %d" % slow.connections


def test_job_for_a_connection_closing_after_idle(dns, capture, relay):
    """A connection left idle is closed with QUIT after a short time; a
    message for the destination that arrives while that QUIT is still
    unanswered must go over a new connection (the daemon must not hand it
    to the closing one)."""
    d = dns(DST)
    dst = capture("127.0.0.2", stall={"quit": 4})
    r = relay(dns=d)
    q1 = r.send("user@dst.test")
    wait_count(r, dst, 1, timeout=15)
    r.wait_removed(q1)
    time.sleep(2.6)     # the idle timer (2 s) has sent QUIT; no 221 yet
    q2 = r.send("user@dst.test")
    wait_count(r, dst, 2, timeout=15)
    r.wait_removed(q2)
    r.assert_alive()


def test_kill9_during_delivery_loses_nothing(dns, capture, relay):
    d = dns(DST)
    conc = 2
    dst = capture("127.0.0.2", stall={"dot": 0.05})
    r = relay(dns=d, dest_concurrency=conc)
    sent = send_many(r, "user@dst.test", 300, timeout=120)
    n_before = len(dst.messages)
    # Kill mid-way: some delivered, many not yet.
    deadline = time.monotonic() + 30
    while len(dst.messages) < max(n_before, 30) + 10 \
            and time.monotonic() < deadline:
        time.sleep(0.02)
    r.kill9()
    at_kill = len(dst.messages)
    assert 0 < at_kill < 300, \
        "not killed mid-way (%d of 300 delivered)" % at_kill
    r.start()
    wait_count(r, dst, 300, timeout=90)
    r.wait_queue_empty(timeout=30)
    time.sleep(0.5)
    seen = collections.Counter(msgid_of(m.content) for m in dst.messages)
    missing = set(sent) - set(seen)
    assert not missing, "%d acknowledged messages lost" % len(missing)
    dups = {k: v for k, v in seen.items() if v > 1}
    assert sum(v - 1 for v in dups.values()) <= conc, \
        "%d duplicates (only messages in flight may repeat): %s" \
        % (sum(v - 1 for v in dups.values()), dups)
    for m in dst.messages:
        assert m.content.endswith(sent[msgid_of(m.content)])
