"""DATA and BDAT: what is stored is exactly what the client meant."""
import email.utils
import re
import time

import pytest

from sluice_test_helpers.smtpclient import (assert_reply, queued_id,
                                            dot_stuff)

DOT_LINES = (b"Subject: dots\r\n"
             b"\r\n"
             b".\r\n"
             b"..\r\n"
             b"...\r\n"
             b".leading dot\r\n"
             b"..two leading dots\r\n"
             b" .space then dot\r\n"
             b"middle . dot\r\n"
             b"last line\r\n")


def start_data(c, sender="a@example.com", rcpts=("b@example.com",)):
    assert_reply(c.cmd("MAIL FROM:<%s>" % sender), 250)
    for r in rcpts:
        assert_reply(c.cmd("RCPT TO:<%s>" % r), 250)
    assert_reply(c.cmd("DATA"), 354)


def test_dot_stuffing_round_trip_raw(daemon):
    with daemon.connect() as c:
        c.ehlo()
        start_data(c)
        stuffed = dot_stuff(DOT_LINES)
        assert b"\r\n..\r\n" in stuffed and b"\r\n...\r\n" in stuffed
        c.send(stuffed + b".\r\n")
        qid = queued_id(c.read_reply())
        c.quit()
    assert daemon.message(qid).body == DOT_LINES


def test_message_starting_with_a_dot(daemon):
    msg = b".first line is a dot line\r\n.\r\nend\r\n"
    with daemon.connect() as c:
        c.ehlo()
        qid = c.send_mail("a@example.com", ["b@example.com"], msg)
    assert daemon.message(qid).body == msg


@pytest.mark.parametrize("msg,expected", [
    (DOT_LINES, DOT_LINES),
    (b"Subject: inner dot\r\n\r\nbefore\r\n.\r\nafter\r\n", None),
    (b"Subject: no final newline\r\n\r\nno CRLF at the end",
     b"Subject: no final newline\r\n\r\nno CRLF at the end\r\n"),
    (b"Subject: ends with dot\r\n\r\n.", b"Subject: ends with dot\r\n\r\n.\r\n"),
    (b"Subject: 8bit\r\n\r\n\xc3\xa9t\xc3\xa9 \xff\xfe\x80\r\n", None),
])
def test_dot_stuffing_round_trip_smtplib(daemon, msg, expected):
    expected = expected or msg
    s = daemon.smtp()
    try:
        s.mail("a@example.com")
        s.rcpt("b@example.com")
        code, text = s.data(msg)
        assert code == 250, (code, text)
        m = re.match(rb"^2\.0\.0 Ok: queued as ([0-9A-Z]+)$", text)
        assert m, text
        qid = m.group(1).decode()
    finally:
        s.quit()
    assert daemon.message(qid).body == expected


def test_empty_message(daemon):
    with daemon.connect() as c:
        c.ehlo()
        start_data(c)
        c.send(b".\r\n")
        qid = queued_id(c.read_reply())
    m = daemon.message(qid)
    assert m.body == b""
    assert m.message == m.received


def test_end_of_data_split_across_writes(daemon):
    """CRLF.CRLF cut into single bytes with pauses: still one message,
    and nothing before the terminator is lost."""
    with daemon.connect() as c:
        c.ehlo()
        start_data(c)
        c.send(b"line one\r\nline two")
        for b in (b"\r", b"\n", b".", b"\r", b"\n"):
            time.sleep(0.05)
            c.send(b)
        qid = queued_id(c.read_reply())
        assert_reply(c.cmd("NOOP"), 250)
    assert daemon.message(qid).body == b"line one\r\nline two\r\n"


def test_dot_line_that_is_not_the_end(daemon):
    """'.x' after CRLF is a stuffed dot line, '..' + CRLF is a dot line:
    neither ends the data."""
    with daemon.connect() as c:
        c.ehlo()
        start_data(c)
        c.send(b"a\r\n.x\r\n..\r\n.. \r\nb\r\n.\r\n")
        qid = queued_id(c.read_reply())
    # ".x" is unstuffed to "x" (RFC 5321 4.5.2), ".." to ".".
    assert daemon.message(qid).body == b"a\r\nx\r\n.\r\n. \r\nb\r\n"


@pytest.mark.parametrize("name,data", [
    ("bare LF", b"Subject: x\r\n\r\nline\nmore\r\n"),
    ("bare CR", b"Subject: x\r\n\r\nline\rmore\r\n"),
    ("bare LF at start", b"\nSubject: x\r\n"),
    ("bare CR before CRLF", b"Subject: x\r\n\r\nline\r\r\n"),
    ("LF LF", b"Subject: x\r\n\r\nline\n\nmore\r\n"),
])
def test_bare_cr_lf_rejected(daemon, name, data):
    with daemon.connect() as c:
        c.ehlo()
        start_data(c)
        c.send(data + b".\r\n")
        r = c.read_reply()
        assert r.code // 100 == 5, "%s accepted: %s" % (name, r)
        assert_reply(r, "5")
        # The session continues and is in sync.
        assert_reply(c.cmd("NOOP"), 250)
        assert_reply(c.cmd("RCPT TO:<b@example.com>"), 503, "5.5.1")
        qid = c.send_mail("a@example.com", ["b@example.com"], b"good\r\n")
        c.quit()
    assert daemon.queue_ids() == [qid]
    assert daemon.message(qid).body == b"good\r\n"
    daemon.wait_incoming_empty()


def test_received_header(daemon):
    with daemon.connect() as c:
        c.ehlo("client.helo.example")
        before = time.time()
        qid = c.send_mail("a@example.com", ["rcpt@example.com"],
                          b"Subject: r\r\n\r\nx\r\n")
    m = daemon.message(qid)
    rec = m.received_unfolded
    # Every physical line ends with CRLF; continuation lines are folded.
    for line in m.received.split(b"\r\n")[1:-1]:
        assert line[:1] in (b" ", b"\t"), m.received
    assert re.match(r"^Received: from client\.helo\.example "
                    r"\(unknown \[127\.0\.0\.1\]\)", rec), rec
    assert re.search(r"\bby mx\.test\.example \(sluice\) with ESMTP id "
                     + qid + r"\b", rec), rec
    assert re.search(r"\bfor <rcpt@example\.com>", rec), rec
    date = rec.rsplit(";", 1)[1].strip()
    dt = email.utils.parsedate_to_datetime(date)
    assert dt.tzinfo is not None, "no zone in %r" % date
    assert abs(dt.timestamp() - before) < 120, date


def test_received_header_without_for_when_several_rcpts(daemon):
    with daemon.connect() as c:
        c.ehlo()
        qid = c.send_mail("a@example.com", ["r1@example.com", "r2@example.com"],
                          b"x\r\n")
    rec = daemon.message(qid).received_unfolded
    assert " for " not in rec and "r1@" not in rec and "r2@" not in rec, rec


def test_received_header_after_helo(daemon):
    with daemon.connect() as c:
        c.helo("old.example")
        qid = c.send_mail("a@example.com", ["b@example.com"], b"x\r\n")
    m = daemon.message(qid)
    assert re.search(r"\bwith SMTP id " + qid, m.received_unfolded), \
        m.received_unfolded
    assert m.env["proto"] == "SMTP"
    assert m.env["helo"] == "old.example"


def test_spool_envelope(daemon):
    with daemon.connect() as c:
        c.ehlo("env.example")
        before = time.time()
        qid = c.send_mail("sender@example.com",
                          ["r1@example.com", "R2@Example.COM"],
                          b"Subject: env\r\n\r\nhello\r\n",
                          mail_params=" BODY=8BITMIME")
        after = time.time()
    m = daemon.message(qid)
    assert m.id == qid
    assert m.env["client"] == "127.0.0.1"
    assert m.env["helo"] == "env.example"
    assert m.env["proto"] == "ESMTP"
    assert m.env["body"] == "8BITMIME"
    assert "smtputf8" not in m.env and "ret" not in m.env
    assert re.match(r"^[0-9]+\.[0-9]{6}$", m.env["arrival"]), m.env
    assert before - 1 <= float(m.env["arrival"]) <= after + 1
    assert m.sender == "sender@example.com"
    # Addresses are kept as sent.
    assert m.rcpt_addresses == ["r1@example.com", "R2@Example.COM"]
    assert m.body == b"Subject: env\r\n\r\nhello\r\n"
    assert m.msg_len == len(m.message)
    keys = [k for k, _ in m.envelope]
    assert keys[:6] == ["id", "arrival", "client", "helo", "proto", "from"], \
        keys


def test_large_message(daemon):
    line = b"x" * 76 + b"\r\n"
    msg = b"Subject: big\r\n\r\n" + line * 12000          # ~936 KB
    with daemon.connect() as c:
        c.ehlo()
        qid = c.send_mail("a@example.com", ["b@example.com"], msg)
    m = daemon.message(qid)
    assert len(m.body) == len(msg) and m.body == msg


# --------------------------------------------------------------------- BDAT

def bdat_begin(c, sender="a@example.com", rcpts=("b@example.com",)):
    c.ehlo()
    assert_reply(c.cmd("MAIL FROM:<%s>" % sender), 250)
    for r in rcpts:
        assert_reply(c.cmd("RCPT TO:<%s>" % r), 250)


def test_bdat_single_chunk_last(daemon):
    msg = b"Subject: bdat\r\n\r\nhello\r\n.\r\n..not stuffed\r\n"
    with daemon.connect() as c:
        bdat_begin(c)
        c.send(b"BDAT %d LAST\r\n" % len(msg) + msg)
        qid = queued_id(c.read_reply())
        c.quit()
    # BDAT data is not dot-stuffed: stored exactly as sent.
    assert daemon.message(qid).body == msg


def test_bdat_chunks_then_bdat_0_last(daemon):
    chunks = [b"Subject: chunks\r\n", b"\r\n", b"first line\r",
              b"\nsecond line\r\n.", b"\r\n", b"\xc3\xa9\xff\r\n"]
    with daemon.connect() as c:
        bdat_begin(c)
        for ch in chunks:
            c.send(b"BDAT %d\r\n" % len(ch) + ch)
            r = c.read_reply()
            assert_reply(r, 250)
        c.send(b"BDAT 0 LAST\r\n")
        qid = queued_id(c.read_reply())
        c.quit()
    assert daemon.message(qid).body == b"".join(chunks)


def test_bdat_pipelined_chunks(daemon):
    """All chunks and the commands around them in one write; chunk data
    that looks like commands must stay data."""
    chunks = [b"RSET\r\nQUIT\r\n", b"MAIL FROM:<evil@example.com>\r\n",
              b"BDAT 1000 LAST\r\n", (b"x" * 70 + b"\r\n") * 70]
    payload = b"".join(b"BDAT %d\r\n" % len(ch) + ch for ch in chunks)
    with daemon.connect() as c:
        c.ehlo()
        c.send(b"MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\n"
               + payload + b"BDAT 0 LAST\r\nQUIT\r\n")
        assert [r.code for r in c.read_replies(2 + len(chunks))] == \
            [250] * (2 + len(chunks))
        qid = queued_id(c.read_reply())
        assert c.read_reply().code == 221
    assert daemon.queue_ids() == [qid]
    assert daemon.message(qid).body == b"".join(chunks)


@pytest.mark.parametrize("sizes", [[1] * 40, [7, 13, 1, 4096, 3], [65536 + 5]])
def test_bdat_chunk_sizes(daemon, sizes):
    total = sum(sizes)
    line = b"0123456789abcdefghij\xe2\x82\xac klmnopq\r\n"
    data = (line * (total // len(line) + 1))[:total - 2] + b"\r\n"
    with daemon.connect() as c:
        bdat_begin(c)
        pos = 0
        for i, n in enumerate(sizes):
            last = i == len(sizes) - 1
            c.send(b"BDAT %d%s\r\n" % (n, b" LAST" if last else b"")
                   + data[pos:pos + n])
            pos += n
            r = c.read_reply()
            if last:
                qid = queued_id(r)
            else:
                assert_reply(r, 250)
    assert daemon.message(qid).body == data


def test_bdat_without_rcpt(daemon):
    with daemon.connect() as c:
        c.ehlo()
        c.send(b"BDAT 5 LAST\r\nhello")
        assert_reply(c.read_reply(), 503, "5.5.1")
        # The 5 octets were consumed, not taken as a command.
        assert_reply(c.cmd("NOOP"), 250)
        assert_reply(c.cmd("MAIL FROM:<a@example.com>"), 250)
        c.send(b"BDAT 4 LAST\r\nQUIT")
        assert_reply(c.read_reply(), 503, "5.5.1")
        assert_reply(c.cmd("NOOP"), 250)
    assert daemon.queue_ids() == []


def test_data_after_bdat_refused(daemon):
    with daemon.connect() as c:
        bdat_begin(c)
        c.send(b"BDAT 5\r\nabc\r\n")
        assert_reply(c.read_reply(), 250)
        assert_reply(c.cmd("DATA"), 503, "5.5.1")
        c.send(b"BDAT 5 LAST\r\ndef\r\n")
        qid = queued_id(c.read_reply())
    assert daemon.message(qid).body == b"abc\r\ndef\r\n"


@pytest.mark.parametrize("line", ["BDAT", "BDAT x", "BDAT -1", "BDAT 5 FIRST",
                                  "BDAT 1 LAST extra"])
def test_bdat_syntax_errors(daemon, line):
    """A BDAT whose chunk size can't be trusted leaves the server unable
    to find the next command: 501 5.5.4 and the connection is closed."""
    with daemon.connect() as c:
        bdat_begin(c)
        assert_reply(c.cmd(line), 501, "5.5.4")
        c.send(b"xxxxx")
        replies = c.read_until_closed()
        assert all(r.code == 421 for r in replies), replies
    assert daemon.queue_ids() == []


def test_bdat_bare_lf_rejected(daemon):
    with daemon.connect() as c:
        bdat_begin(c)
        data = b"Subject: x\r\n\r\nbare\nlf\r\n"
        c.send(b"BDAT %d LAST\r\n" % len(data) + data)
        r = c.read_reply()
        assert r.code // 100 == 5, r
        assert_reply(c.cmd("NOOP"), 250)
    assert daemon.queue_ids() == []


def test_bdat_last_without_final_crlf(daemon):
    """docs/spool.md: a BDAT message that does not end with CRLF gets
    one, so the stored message is always made of whole lines."""
    with daemon.connect() as c:
        bdat_begin(c)
        c.send(b"BDAT 7\r\nline\r\nx")
        assert_reply(c.read_reply(), 250)
        c.send(b"BDAT 2 LAST\r\nyz")
        qid = queued_id(c.read_reply())
    assert daemon.message(qid).body == b"line\r\nxyz\r\n"


def test_bdat_trailing_bare_cr_rejected(daemon):
    with daemon.connect() as c:
        bdat_begin(c)
        c.send(b"BDAT 5\r\nabc\r\n")
        assert_reply(c.read_reply(), 250)
        c.send(b"BDAT 4 LAST\r\ndef\r")
        r = c.read_reply()
        assert r.code // 100 == 5, r
        assert_reply(c.cmd("NOOP"), 250)
    assert daemon.queue_ids() == []


def test_bdat_cr_and_lf_in_separate_chunks(daemon):
    """A CR at the end of one chunk and the LF at the start of the next
    is a CRLF, not a bare CR plus a bare LF."""
    with daemon.connect() as c:
        bdat_begin(c)
        for ch in (b"a\r", b"\nb\r", b"\n"):
            c.send(b"BDAT %d\r\n" % len(ch) + ch)
            assert_reply(c.read_reply(), 250)
        c.send(b"BDAT 0 LAST\r\n")
        qid = queued_id(c.read_reply())
    assert daemon.message(qid).body == b"a\r\nb\r\n"


def test_rset_after_bdat_chunks(daemon):
    """RSET drops the chunks received so far: the next transaction's
    message holds only its own data, and no incoming file is left."""
    with daemon.connect() as c:
        bdat_begin(c)
        c.send(b"BDAT 9\r\nstale 1\r\n")
        assert_reply(c.read_reply(), 250)
        assert_reply(c.cmd("RSET"), 250)
        assert_reply(c.cmd("BDAT 0 LAST"), 503, "5.5.1")
        assert_reply(c.cmd("MAIL FROM:<new@example.com>"), 250)
        assert_reply(c.cmd("RCPT TO:<b@example.com>"), 250)
        c.send(b"BDAT 7 LAST\r\nfresh\r\n")
        qid = queued_id(c.read_reply())
        c.quit()
    assert daemon.queue_ids() == [qid]
    m = daemon.message(qid)
    assert m.body == b"fresh\r\n" and m.sender == "new@example.com"
    daemon.wait_incoming_empty()


def test_client_half_close_after_quit(daemon):
    """A client that sends its whole session and shuts down its side
    still gets every reply."""
    import socket
    with daemon.connect() as c:
        c.send(b"EHLO client.example\r\nMAIL FROM:<a@example.com>\r\n"
               b"RCPT TO:<b@example.com>\r\nDATA\r\n")
        assert [r.code for r in c.read_replies(4)] == [250, 250, 250, 354]
        c.send(b"half close\r\n.\r\nQUIT\r\n")
        c.sock.shutdown(socket.SHUT_WR)
        replies = c.read_until_closed()
    assert [r.code for r in replies] == [250, 221], replies
    qid = queued_id(replies[0])
    assert daemon.message(qid).body == b"half close\r\n"


def test_client_half_close_after_final_dot(daemon):
    """The final dot, then EOF (no QUIT).  The message is complete, so the
    server takes it, and its 250 must still go out: the client's side is
    only half-closed and is reading.  (Postfix answers the same way and
    logs "lost connection after END-OF-MESSAGE".)  A server that stores
    the message but drops the 250 makes the client send it again."""
    import socket
    with daemon.connect() as c:
        c.ehlo()
        assert_reply(c.cmd("MAIL FROM:<a@example.com>"), 250)
        assert_reply(c.cmd("RCPT TO:<b@example.com>"), 250)
        assert_reply(c.cmd("DATA"), 354)
        c.send(b"eof\r\n.\r\n")
        c.sock.shutdown(socket.SHUT_WR)
        replies = c.read_until_closed()
    stored = daemon.queue_ids()
    assert len(replies) == 1 and replies[0].code == 250, \
        "replies %s, stored %s" % (replies, stored)
    qid = queued_id(replies[0])
    assert stored == [qid]
    assert daemon.message(qid).body == b"eof\r\n"
    daemon.wait_incoming_empty()
