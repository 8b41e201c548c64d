"""Commands, replies and their order (RFC 5321, 2034, 1869)."""
import re
import socket
import time

import pytest

from sluice_test_helpers.smtpclient import (assert_reply, queued_id,
                                            Closed)

REQUIRED_EXTENSIONS = ["PIPELINING", "8BITMIME", "SMTPUTF8",
                       "ENHANCEDSTATUSCODES", "CHUNKING", "DSN"]


def ehlo_keywords(reply):
    """{KEYWORD: params} of an EHLO reply (lines after the first)."""
    out = {}
    for line in reply.lines[1:]:
        kw, _, params = line.partition(" ")
        out[kw.upper()] = params
    return out


def test_greeting(daemon):
    with daemon.connect() as c:
        g = c.greeting
        assert g.code == 220 and len(g.lines) == 1, g
        assert re.match(r"^mx\.test\.example ESMTP( |$)", g.first), g


def test_greeting_uses_configured_hostname(sluiced):
    d = sluiced(hostname="relay.other.example")
    with d.connect() as c:
        assert re.match(r"^relay\.other\.example ESMTP", c.greeting.first), \
            c.greeting
        r = c.ehlo()
        assert r.first.split()[0] == "relay.other.example", r


def test_ehlo_capabilities(daemon):
    with daemon.connect() as c:
        r = c.cmd("EHLO client.example")
        assert r.code == 250 and len(r.lines) > 1, \
            "EHLO reply must be multi-line: %s" % r
        assert r.first.split()[0] == "mx.test.example", r
        kws = ehlo_keywords(r)
        for ext in REQUIRED_EXTENSIONS:
            assert ext in kws, "%s not advertised: %s" % (ext, r)
        assert kws.get("SIZE") == "1048576", r
        # Not configured, so not offered.
        assert "STARTTLS" not in kws and "AUTH" not in kws, r
        c.quit()


def test_ehlo_size_follows_config(sluiced):
    d = sluiced(max_message_size="2M")
    with d.connect() as c:
        assert ehlo_keywords(c.ehlo()).get("SIZE") == "2097152"


def test_helo_has_no_extensions(daemon):
    with daemon.connect() as c:
        r = c.cmd("HELO client.example")
        assert r.code == 250 and len(r.lines) == 1, r
        assert r.first.split()[0] == "mx.test.example", r


@pytest.mark.parametrize("line", ["EHLO", "HELO", "EHLO ", "HELO  "])
def test_helo_ehlo_need_an_argument(daemon, line):
    with daemon.connect() as c:
        assert_reply(c.cmd(line), 501, ("5.5.2", "5.5.4"))
        # The session is still usable.
        c.ehlo()


def test_ehlo_accepts_address_literal(daemon):
    with daemon.connect() as c:
        assert c.cmd("EHLO [127.0.0.1]").code == 250


def test_noop_help_vrfy_expn_quit(daemon):
    with daemon.connect() as c:
        assert_reply(c.cmd("NOOP"), 250, "2.0.0")
        assert_reply(c.cmd("NOOP some argument"), 250, "2.0.0")
        assert_reply(c.cmd("HELP"), 214)
        assert_reply(c.cmd("HELP MAIL"), 214)
        assert_reply(c.cmd("VRFY postmaster"), 252)
        assert_reply(c.cmd("EXPN staff"), 502, "5.5.1")
        r = c.cmd("QUIT")
        assert_reply(r, 221, "2.0.0")
        c.assert_closed()


def test_commands_are_case_insensitive(daemon):
    with daemon.connect() as c:
        assert c.cmd("ehlo client.example").code == 250
        assert_reply(c.cmd("mail from:<a@example.com>"), 250)
        assert_reply(c.cmd("rCpT tO:<b@example.com>"), 250)
        assert_reply(c.cmd("data"), 354)
        c.send(b"Subject: x\r\n\r\nbody\r\n.\r\n")
        qid = queued_id(c.read_reply())
        c.quit()
    m = daemon.message(qid)
    assert m.sender == "a@example.com"
    assert m.rcpt_addresses == ["b@example.com"]


def test_rset_clears_the_transaction(daemon):
    with daemon.connect() as c:
        c.ehlo()
        assert_reply(c.cmd("MAIL FROM:<first@example.com>"), 250)
        assert_reply(c.cmd("RCPT TO:<first-rcpt@example.com>"), 250)
        assert_reply(c.cmd("RSET"), 250, "2.0.0")
        # No transaction any more.
        assert_reply(c.cmd("RCPT TO:<x@example.com>"), 503, "5.5.1")
        assert_reply(c.cmd("DATA"), 503, "5.5.1")
        # A new one, without a new EHLO.
        qid = c.send_mail("second@example.com", ["second-rcpt@example.com"],
                          b"Subject: after rset\r\n\r\nhello\r\n")
        c.quit()
    m = daemon.message(qid)
    assert m.sender == "second@example.com"
    assert m.rcpt_addresses == ["second-rcpt@example.com"]
    assert daemon.queue_ids() == [qid]


def test_ehlo_mid_transaction_resets_it(daemon):
    with daemon.connect() as c:
        c.ehlo()
        assert_reply(c.cmd("MAIL FROM:<a@example.com>"), 250)
        assert_reply(c.cmd("RCPT TO:<b@example.com>"), 250)
        c.ehlo("again.example")
        assert_reply(c.cmd("DATA"), 503, "5.5.1")
        qid = c.send_mail("c@example.com", ["d@example.com"], b"x\r\n")
    m = daemon.message(qid)
    assert (m.sender, m.rcpt_addresses) == ("c@example.com", ["d@example.com"])
    assert m.env["helo"] == "again.example"


def test_two_transactions_on_one_connection(daemon):
    with daemon.connect() as c:
        c.ehlo()
        q1 = c.send_mail("a@example.com", ["b@example.com"], b"one\r\n")
        q2 = c.send_mail("c@example.com", ["d@example.com"], b"two\r\n")
        c.quit()
    assert q1 != q2
    assert sorted(daemon.queue_ids()) == sorted([q1, q2])
    assert daemon.message(q1).body == b"one\r\n"
    assert daemon.message(q2).body == b"two\r\n"


# ---------------------------------------------------------------- sequence

def test_mail_before_helo(daemon):
    with daemon.connect() as c:
        assert_reply(c.cmd("MAIL FROM:<a@example.com>"), 503, "5.5.1")
        c.ehlo()
        assert_reply(c.cmd("MAIL FROM:<a@example.com>"), 250)


def test_rcpt_before_mail(daemon):
    with daemon.connect() as c:
        c.ehlo()
        assert_reply(c.cmd("RCPT TO:<b@example.com>"), 503, "5.5.1")


def test_data_before_mail_and_before_rcpt(daemon):
    with daemon.connect() as c:
        c.ehlo()
        assert_reply(c.cmd("DATA"), 503, "5.5.1")
        assert_reply(c.cmd("MAIL FROM:<a@example.com>"), 250)
        assert_reply(c.cmd("DATA"), 503, "5.5.1")
        # The transaction survives the refused DATA.
        assert_reply(c.cmd("RCPT TO:<b@example.com>"), 250)
        assert_reply(c.cmd("DATA"), 354)
        c.send(b"x\r\n.\r\n")
        queued_id(c.read_reply())


def test_nested_mail(daemon):
    with daemon.connect() as c:
        c.ehlo()
        assert_reply(c.cmd("MAIL FROM:<a@example.com>"), 250)
        assert_reply(c.cmd("MAIL FROM:<b@example.com>"), 503, "5.5.1")


def test_data_with_all_rcpts_refused(daemon):
    with daemon.connect() as c:
        c.ehlo()
        assert_reply(c.cmd("MAIL FROM:<a@example.com>"), 250)
        assert c.cmd("RCPT TO:<@@@>").code // 100 == 5
        assert_reply(c.cmd("DATA"), 503, "5.5.1")
    assert daemon.queue_ids() == []


@pytest.mark.parametrize("line", ["FOO", "XYZZY bar", "MAILFROM:<a@b>",
                                  "EHLOO x", "DATA2"])
def test_unknown_command(daemon, line):
    with daemon.connect() as c:
        assert_reply(c.cmd(line), 500, "5.5.2")
        assert_reply(c.cmd("NOOP"), 250)


@pytest.mark.parametrize("line", [
    "MAIL FROM:a@example.com",          # no angle brackets
    "MAIL TO:<a@example.com>",
    "MAIL FROM:<a@example.com",
    "MAIL",
    "MAIL FROM:<a@example.com> SIZE=abc",
])
def test_mail_syntax_errors(daemon, line):
    with daemon.connect() as c:
        c.ehlo()
        r = c.cmd(line)
        assert_reply(r, 501, ("5.5.2", "5.5.4", "5.1.7", "5.1.3"))
        # Still no transaction, still a usable session.
        assert_reply(c.cmd("MAIL FROM:<ok@example.com>"), 250)


def test_too_many_errors(daemon):
    """max_errors = 20: the 20th or 21st bad command gets 421 and the
    connection is closed."""
    with daemon.connect() as c:
        rejected = 0
        for i in range(30):
            try:
                r = c.cmd("BOGUS%d" % i)
            except Closed:
                pytest.fail("closed without a 421 after %d errors" % rejected)
            if r.code == 421:
                break
            assert_reply(r, 500, "5.5.2")
            rejected += 1
        else:
            pytest.fail("30 bad commands and no 421")
        assert r.enhanced is not None and r.enhanced.startswith("4."), r
        assert rejected in (19, 20), \
            "421 after %d rejected commands, max_errors is 20" % rejected
        c.assert_closed()


def test_error_delay_tarpit(sluiced):
    """Past soft_error_limit errors, each error reply waits error_delay."""
    d = sluiced(soft_error_limit=2, error_delay=1)
    with d.connect() as c:
        for _ in range(2):
            t = time.monotonic()
            assert_reply(c.cmd("BOGUS"), 500)
            assert time.monotonic() - t < 0.5
        t = time.monotonic()
        assert_reply(c.cmd("BOGUS"), 500)
        assert time.monotonic() - t >= 0.9


def test_errors_below_the_limit_are_tolerated(daemon):
    with daemon.connect() as c:
        for i in range(15):
            assert_reply(c.cmd("BOGUS"), 500)
        c.ehlo()
        qid = c.send_mail("a@example.com", ["b@example.com"], b"x\r\n")
        c.quit()
    assert daemon.queue_ids() == [qid]


def test_command_line_limit_boundary(daemon):
    """max_command_line = 512 octets including CRLF."""
    with daemon.connect() as c:
        ok = "NOOP " + "x" * (512 - 2 - 5)
        assert len(ok) + 2 == 512
        assert_reply(c.cmd(ok), 250)
        assert_reply(c.cmd(ok + "y"), 500, "5.5.6")
        assert_reply(c.cmd("NOOP"), 250)


def test_very_long_command_line(daemon):
    with daemon.connect() as c:
        c.ehlo()
        c.send(b"MAIL FROM:<" + b"a" * 200000 + b"@example.com>\r\n")
        assert_reply(c.read_reply(), 500, "5.5.6")
        # Nothing of it was taken as a command or a transaction.
        assert_reply(c.cmd("RCPT TO:<b@example.com>"), 503, "5.5.1")
        qid = c.send_mail("a@example.com", ["b@example.com"], b"x\r\n")
        c.quit()
    assert daemon.queue_ids() == [qid]


def test_command_after_overlong_line_in_the_same_segment(daemon):
    """The end of an overlong line and the next command in one TCP
    segment: the server must answer the command at once, not when the
    client happens to send more."""
    with daemon.connect() as c:
        c.ehlo()
        c.send(b"NOOP " + b"a" * 3000)            # no LF yet
        assert_reply(c.read_reply(), 500, "5.5.6")
        c.send(b"aaaa\r\nNOOP\r\n")             # tail + next command
        assert_reply(c.read_reply(timeout=5), 250)
        assert_reply(c.cmd("NOOP"), 250)


@pytest.mark.parametrize("request_line", [
    b"GET / HTTP/1.1\r\nHost: mx.test.example\r\n\r\n",
    b"POST /form HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
    b"CONNECT mx.test.example:25 HTTP/1.1\r\n\r\n",
])
def test_http_request_closes_connection(daemon, request_line):
    with daemon.connect() as c:
        c.send(request_line)
        replies = c.read_until_closed()
        assert len(replies) <= 1, replies
        if replies:
            assert replies[0].code in (421, 554), replies
    assert daemon.queue_ids() == []


def test_http_request_after_ehlo_closes(daemon):
    with daemon.connect() as c:
        c.ehlo()
        c.send(b"GET / HTTP/1.0\r\n\r\n")
        replies = c.read_until_closed()
        assert len(replies) <= 1 and all(r.code in (421, 554)
                                         for r in replies), replies


def test_quit_closes_promptly(daemon):
    with daemon.connect() as c:
        c.ehlo()
        t = time.monotonic()
        c.quit()
        assert time.monotonic() - t < 5


def test_quit_in_transaction_stores_nothing(daemon):
    with daemon.connect() as c:
        c.ehlo()
        assert_reply(c.cmd("MAIL FROM:<a@example.com>"), 250)
        assert_reply(c.cmd("RCPT TO:<b@example.com>"), 250)
        c.quit()
    assert daemon.queue_ids() == []


def test_many_concurrent_idle_sessions(daemon):
    """Sessions are independent: 50 open connections, then each one
    completes a transaction."""
    clients = [daemon.connect() for _ in range(50)]
    try:
        for c in clients:
            c.ehlo()
        ids = [c.send_mail("a@example.com", ["b@example.com"],
                           b"n%d\r\n" % i) for i, c in enumerate(clients)]
    finally:
        for c in clients:
            c.close()
    assert sorted(daemon.queue_ids()) == sorted(ids)
    assert len(set(ids)) == 50


# --------------------------------------------------------------- pipelining

def test_pipelining_after_ehlo(daemon):
    with daemon.connect() as c:
        c.send(b"EHLO client.example\r\n"
               b"MAIL FROM:<sender@example.com>\r\n"
               b"RCPT TO:<r1@example.com>\r\n"
               b"RCPT TO:<r2@example.com>\r\n"
               b"RCPT TO:<bad address>\r\n"
               b"RCPT TO:<r3@example.com>\r\n"
               b"DATA\r\n")
        r = c.read_reply()
        assert r.code == 250 and "PIPELINING" in ehlo_keywords(r), r
        assert_reply(c.read_reply(), 250)          # MAIL
        assert_reply(c.read_reply(), 250)          # r1
        assert_reply(c.read_reply(), 250)          # r2
        assert c.read_reply().code // 100 == 5     # bad address
        assert_reply(c.read_reply(), 250)          # r3
        assert_reply(c.read_reply(), 354)          # DATA
        c.send(b"Subject: pipelined\r\n\r\nbody\r\n.\r\n"
               b"MAIL FROM:<s2@example.com>\r\nRCPT TO:<r4@example.com>\r\n"
               b"NOOP\r\nRSET\r\nQUIT\r\n")
        qid = queued_id(c.read_reply())
        assert_reply(c.read_reply(), 250)          # MAIL
        assert_reply(c.read_reply(), 250)          # RCPT
        assert_reply(c.read_reply(), 250)          # NOOP
        assert_reply(c.read_reply(), 250)          # RSET
        assert_reply(c.read_reply(), 221)          # QUIT
        c.assert_closed()
    assert daemon.queue_ids() == [qid]
    m = daemon.message(qid)
    assert m.sender == "sender@example.com"
    assert m.rcpt_addresses == ["r1@example.com", "r2@example.com",
                                "r3@example.com"]
    assert m.body == b"Subject: pipelined\r\n\r\nbody\r\n"


def test_pipelining_two_whole_messages_in_one_write(daemon):
    """Everything after the 354 in one write, twice over: the second
    transaction's commands follow the first's final dot."""
    with daemon.connect() as c:
        c.ehlo()
        c.send(b"MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\n"
               b"DATA\r\n")
        assert [r.code for r in c.read_replies(3)] == [250, 250, 354]
        c.send(b"first\r\n.\r\nMAIL FROM:<c@example.com>\r\n"
               b"RCPT TO:<d@example.com>\r\nDATA\r\n")
        q1 = queued_id(c.read_reply())
        assert [r.code for r in c.read_replies(3)] == [250, 250, 354]
        c.send(b"second\r\n.\r\nQUIT\r\n")
        q2 = queued_id(c.read_reply())
        assert c.read_reply().code == 221
    assert daemon.message(q1).body == b"first\r\n"
    assert daemon.message(q2).body == b"second\r\n"
    assert daemon.message(q2).sender == "c@example.com"


def test_pipelining_after_helo(daemon):
    """PIPELINING is not advertised after HELO, but a client that
    pipelines anyway must still get its replies in order."""
    with daemon.connect() as c:
        c.send(b"HELO client.example\r\nMAIL FROM:<a@example.com>\r\n"
               b"RCPT TO:<b@example.com>\r\nRCPT TO:<c@example.com>\r\n"
               b"DATA\r\n")
        r = c.read_reply()
        assert r.code == 250 and len(r.lines) == 1, r
        assert [x.code for x in c.read_replies(4)] == [250, 250, 250, 354]
        c.send(b"hello\r\n.\r\nQUIT\r\n")
        qid = queued_id(c.read_reply())
        assert c.read_reply().code == 221
    m = daemon.message(qid)
    assert m.rcpt_addresses == ["b@example.com", "c@example.com"]
    assert m.env["proto"] == "SMTP"


def test_pipelined_commands_in_tiny_writes(daemon):
    """The same bytes split at every position: the parser must not
    depend on how the stream is cut."""
    payload = (b"EHLO client.example\r\nMAIL FROM:<a@example.com>\r\n"
               b"RCPT TO:<b@example.com>\r\nDATA\r\n")
    with daemon.connect() as c:
        c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(len(payload)):
            c.send(payload[i:i + 1])
        r = c.read_reply()
        assert r.code == 250
        assert [x.code for x in c.read_replies(3)] == [250, 250, 354]
        body = b"tiny\r\n.\r\n"
        for i in range(len(body)):
            c.send(body[i:i + 1])
        qid = queued_id(c.read_reply())
    assert daemon.message(qid).body == b"tiny\r\n"


def test_deep_pipeline_of_noops(daemon):
    """20000 pipelined commands sent without waiting: every reply comes
    back, in order, even though the client reads while it writes."""
    import threading
    n = 20000
    with daemon.connect() as c:
        c.ehlo()
        payload = b"".join(b"NOOP %d\r\n" % i for i in range(n)) + b"QUIT\r\n"
        t = threading.Thread(target=c.send, args=(payload,), daemon=True)
        t.start()
        for i in range(n):
            r = c.read_reply()
            assert r.code == 250, "reply %d: %s" % (i, r)
        assert c.read_reply().code == 221
        t.join(10)
        c.assert_closed()


def test_data_body_in_the_same_write_as_data(daemon):
    with daemon.connect() as c:
        c.ehlo()
        c.send(b"MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\n"
               b"DATA\r\nearly body\r\n.\r\nQUIT\r\n")
        assert [r.code for r in c.read_replies(3)] == [250, 250, 354]
        qid = queued_id(c.read_reply())
        assert c.read_reply().code == 221
    assert daemon.message(qid).body == b"early body\r\n"


# ------------------------------------------------------------ early talker

@pytest.mark.parametrize("early", [b"EHLO early.example\r\n", b"E",
                                   b"EHLO x\r\nMAIL FROM:<a@b.example>\r\n"])
def test_early_talker_rejected(sluiced, early):
    d = sluiced(greeting_delay=1)
    with d.connect(greeting=False) as c:
        c.send(early)
        replies = c.read_until_closed(timeout=10)
        assert replies, "connection closed without a reply"
        assert_reply(replies[0], 554, "5.5.0")
        assert all(r.code // 100 != 2 for r in replies), replies
    assert d.queue_ids() == []


def test_polite_client_waits_for_delayed_greeting(sluiced):
    d = sluiced(greeting_delay=1)
    t = time.monotonic()
    with d.connect() as c:
        waited = time.monotonic() - t
        assert c.greeting.code == 220, c.greeting
        assert waited >= 0.9, "greeting came after %.2f s, delay is 1 s" \
            % waited
        c.ehlo()
        qid = c.send_mail("a@example.com", ["b@example.com"], b"x\r\n")
        c.quit()
    assert d.queue_ids() == [qid]


# ---------------------------------------------------------------- timeouts

def test_command_timeout(sluiced):
    d = sluiced(command_timeout=2)
    with d.connect() as c:
        c.ehlo()
        t = time.monotonic()
        r = c.read_reply(timeout=15)
        waited = time.monotonic() - t
        assert_reply(r, 421, "4.4.2")
        assert 1.5 <= waited <= 10, "timed out after %.1f s" % waited
        c.assert_closed()


def test_command_timeout_string_value(sluiced):
    d = sluiced(command_timeout="2s")
    with d.connect() as c:
        t = time.monotonic()
        assert_reply(c.read_reply(timeout=15), 421, "4.4.2")
        assert time.monotonic() - t >= 1.5


def test_activity_resets_command_timeout(sluiced):
    d = sluiced(command_timeout=2)
    with d.connect() as c:
        for _ in range(4):
            time.sleep(1)
            assert_reply(c.cmd("NOOP"), 250)


def test_data_timeout_in_bdat_chunk(sluiced):
    d = sluiced(data_timeout=2)
    with d.connect() as c:
        c.ehlo()
        assert_reply(c.cmd("MAIL FROM:<a@example.com>"), 250)
        assert_reply(c.cmd("RCPT TO:<b@example.com>"), 250)
        c.send(b"BDAT 100 LAST\r\nonly part of the chunk")
        t = time.monotonic()
        assert_reply(c.read_reply(timeout=15), 421, "4.4.2")
        assert time.monotonic() - t >= 1.5
        c.assert_closed()
    assert d.queue_ids() == []
    d.wait_incoming_empty()


def test_data_timeout(sluiced):
    d = sluiced(data_timeout=2)
    with d.connect() as c:
        c.ehlo()
        assert_reply(c.cmd("MAIL FROM:<a@example.com>"), 250)
        assert_reply(c.cmd("RCPT TO:<b@example.com>"), 250)
        assert_reply(c.cmd("DATA"), 354)
        c.send(b"Subject: stalled\r\n\r\npart of a body")
        t = time.monotonic()
        r = c.read_reply(timeout=15)
        assert_reply(r, 421, "4.4.2")
        assert time.monotonic() - t >= 1.5
        c.assert_closed()
    assert d.queue_ids() == []
    d.wait_incoming_empty()
