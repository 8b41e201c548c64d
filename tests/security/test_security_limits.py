"""Per-IP connection limits, the tarpit for clients that keep failing,
and early talkers."""
import time

import sluice_security_helpers as h
from sluice_security_helpers import assert_reply


def refused(d, text, src="127.0.0.1"):
    """Connect from src, expect the 421 refusal and the close."""
    with h.raw_from(d, src, greeting=False) as c:
        r = c.read_reply()
        assert_reply(r, 421, "4.7.0", text)
        c.assert_closed(5)
    return r


# -- 12. Per-IP limits (relay_networks = [] so loopback is not exempt).
# The clients connect from 127.0.0.2 (and .3): start()'s readiness probe
# came from 127.0.0.1 and counts there.

def test_max_sessions_per_ip(secd):
    d = secd(relay_networks=[], max_sessions_per_ip=2)
    a, b = h.raw_from(d, "127.0.0.2"), h.raw_from(d, "127.0.0.2")
    try:
        assert a.greeting.code == 220 and b.greeting.code == 220
        refused(d, "too many connections from your address", "127.0.0.2")
        d.wait_log(r"reject: connect from unknown\[127\.0\.0\.2\]: too many"
                   r" connections from your address")
        # Another address is not affected.
        with h.raw_from(d, "127.0.0.3") as c:
            assert c.greeting.code == 220
            c.quit()
        # The two sessions are unharmed.
        assert_reply(a.cmd("NOOP"), 250)
        assert_reply(b.cmd("NOOP"), 250)
        b.quit()
    finally:
        b.close()

    # One slot free again once the server has seen b go.
    def third_ok():
        c = h.raw_from(d, "127.0.0.2")
        try:
            return c.greeting.code == 220
        finally:
            c.close()
    try:
        h.wait_for(third_ok, 5, "a session slot after a disconnect")
    finally:
        a.close()


def test_trusted_network_exempt_from_session_limit(secd):
    d = secd(max_sessions_per_ip=1)       # 127.0.0.0/8 trusted
    cs = [h.raw_from(d, "127.0.0.2") for _ in range(3)]
    try:
        assert [c.greeting.code for c in cs] == [220] * 3
    finally:
        for c in cs:
            c.close()


def test_max_connect_rate(secd):
    d = secd(relay_networks=[], max_connect_rate=5)
    for i in range(5):
        with h.raw_from(d, "127.0.0.2") as c:
            assert c.greeting.code == 220, "connection %d: %s" % (
                i + 1, c.greeting)
            c.quit()
    refused(d, "too many connection attempts from your address",
            "127.0.0.2")
    d.wait_log(r"reject: connect from unknown\[127\.0\.0\.2\]: too many "
               r"connection attempts from your address")
    with h.raw_from(d, "127.0.0.3") as c:
        assert c.greeting.code == 220
        c.quit()


# -- 13. Tarpit

def test_tarpit_then_close(secd):
    d = secd(soft_error_limit=3, error_delay=1, max_errors=6)
    with h.raw(d) as c:
        c.ehlo()
        for i in range(3):
            assert_reply(c.cmd("BOGUS%d" % i), 500, "5.5.2")
        # Three errors: every further reply waits error_delay.
        t = time.monotonic()
        r = c.cmd("BOGUS3")
        dt = time.monotonic() - t
        assert_reply(r, 500, "5.5.2")
        assert dt >= 0.9, "4th reply after %.2f s, error_delay 1 s" % dt
        # A good command waits too.
        t = time.monotonic()
        assert_reply(c.cmd("NOOP"), 250)
        dt = time.monotonic() - t
        assert dt >= 0.9, "NOOP reply after %.2f s in the tarpit" % dt
        assert_reply(c.cmd("BOGUS4"), 500)
        # The 6th error: 421 and close.
        replies = []
        c.send_line("BOGUS5")
        replies = c.read_until_closed(10)
        assert [r.code for r in replies] == [500, 421], replies
        assert_reply(replies[-1], 421, "4.7.0", "too many errors")
    d.wait_log(r"too many errors from unknown\[127\.0\.0\.1\]")


def test_errors_below_soft_limit_not_delayed(secd):
    """The control for the tarpit: below soft_error_limit, no pause."""
    d = secd(soft_error_limit=3, error_delay=2, max_errors=6)
    with h.raw(d) as c:
        c.ehlo()
        t = time.monotonic()
        for i in range(2):
            assert_reply(c.cmd("BOGUS%d" % i), 500)
        assert_reply(c.cmd("NOOP"), 250)
        assert time.monotonic() - t < 1.5
        c.quit()


# -- 14. Early talker

def test_early_talker_with_greeting_delay(secd):
    d = secd(greeting_delay=1)
    with h.raw(d, greeting=False) as c:
        c.send(b"EHLO eager.example\r\n")
        r = c.read_reply(timeout=5)
        assert_reply(r, 554, "5.5.0", "talking before the greeting")
        c.assert_closed(5)
    d.wait_log(r"early talker from unknown\[127\.0\.0\.1\]")
    # A patient client gets the greeting after the delay.
    t = time.monotonic()
    with h.raw(d) as c:
        assert c.greeting.code == 220
        assert time.monotonic() - t >= 0.9
        c.quit()
