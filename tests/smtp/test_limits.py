"""Message size, recipient count and line length limits."""

from sluice_test_helpers.smtpclient import assert_reply, queued_id

LIMIT = 1048576


def test_size_param_over_limit(daemon):
    with daemon.connect() as c:
        c.ehlo()
        assert_reply(c.cmd("MAIL FROM:<a@example.com> SIZE=%d" % (LIMIT + 1)),
                     552, "5.3.4")
        assert_reply(c.cmd("MAIL FROM:<a@example.com> SIZE=99999999999999"),
                     552, "5.3.4")
        # No transaction was started.
        assert_reply(c.cmd("RCPT TO:<b@example.com>"), 503, "5.5.1")
        assert_reply(c.cmd("MAIL FROM:<a@example.com> SIZE=%d" % LIMIT), 250)


def test_size_param_absurd_value(daemon):
    with daemon.connect() as c:
        c.ehlo()
        r = c.cmd("MAIL FROM:<a@example.com> SIZE=" + "9" * 40)
        assert r.code in (501, 552), r
        assert_reply(r, (501, 552))


def test_data_over_limit(daemon):
    line = b"y" * 98 + b"\r\n"
    msg = b"Subject: too big\r\n\r\n" + line * (LIMIT // len(line) + 200)
    assert len(msg) > LIMIT + 10000
    with daemon.connect() as c:
        c.ehlo()
        # Lying SIZE: small announced, big sent.
        assert_reply(c.cmd("MAIL FROM:<a@example.com> SIZE=1000"), 250)
        assert_reply(c.cmd("RCPT TO:<b@example.com>"), 250)
        assert_reply(c.cmd("DATA"), 354)
        c.send(msg + b".\r\n")
        assert_reply(c.read_reply(timeout=30), 552, "5.3.4")
        # In sync, and the next message goes through.
        assert_reply(c.cmd("NOOP"), 250)
        qid = c.send_mail("a@example.com", ["b@example.com"], b"small\r\n")
        c.quit()
    assert daemon.queue_ids() == [qid]
    daemon.wait_incoming_empty()


def test_bdat_over_limit(daemon):
    chunk = (b"z" * 998 + b"\r\n") * 300          # 300 KB a chunk
    with daemon.connect() as c:
        c.ehlo()
        assert_reply(c.cmd("MAIL FROM:<a@example.com>"), 250)
        assert_reply(c.cmd("RCPT TO:<b@example.com>"), 250)
        codes = []
        for i in range(4):                         # 1.2 MB in all
            c.send(b"BDAT %d%s\r\n" % (len(chunk), b" LAST" if i == 3 else b"")
                   + chunk)
            codes.append(c.read_reply(timeout=30))
        assert codes[-1].code == 552, codes
        assert_reply(codes[-1], 552, "5.3.4")
        assert all(r.code in (250, 552) for r in codes), codes
        assert_reply(c.cmd("NOOP"), 250)
    assert daemon.queue_ids() == []
    daemon.wait_incoming_empty()


def exact_message(n):
    line = b"y" * 98 + b"\r\n"
    msg = line * (n // len(line))
    rest = n - len(msg)
    if rest:
        msg += b"z" * (rest - 2) + b"\r\n" if rest >= 2 else b""
    while len(msg) < n:                 # rest == 1: lengthen one line
        msg = b"w" + msg
    assert len(msg) == n
    return msg


def test_message_of_exactly_the_limit(daemon):
    """RFC 1870: the advertised SIZE is the largest message accepted,
    counted as the client sends it (CRLFs included, without the
    dot-stuffing and the final dot).  A client that announces SIZE=limit
    and sends that many octets must not be refused; one more is."""
    ok = exact_message(LIMIT)
    with daemon.connect() as c:
        c.ehlo()
        qid = c.send_mail("a@example.com", ["b@example.com"], ok,
                          mail_params=" SIZE=%d" % LIMIT)
        assert_reply(c.cmd("MAIL FROM:<a@example.com>"), 250)
        assert_reply(c.cmd("RCPT TO:<b@example.com>"), 250)
        assert_reply(c.cmd("DATA"), 354)
        c.send(exact_message(LIMIT + 1) + b".\r\n")
        assert_reply(c.read_reply(timeout=30), 552, "5.3.4")
    assert daemon.message(qid).body == ok
    assert daemon.queue_ids() == [qid]


def test_message_under_limit_accepted(daemon):
    line = b"y" * 98 + b"\r\n"
    msg = line * ((LIMIT - 20000) // len(line))
    with daemon.connect() as c:
        c.ehlo()
        qid = c.send_mail("a@example.com", ["b@example.com"], msg,
                          mail_params=" SIZE=%d" % len(msg))
    assert daemon.message(qid).body == msg


def test_max_recipients(sluiced):
    d = sluiced(max_recipients=100)
    with d.connect() as c:
        c.ehlo()
        assert_reply(c.cmd("MAIL FROM:<a@example.com>"), 250)
        c.send(b"".join(b"RCPT TO:<r%d@example.com>\r\n" % i
                        for i in range(100)))
        for i, r in enumerate(c.read_replies(100)):
            assert r.code == 250, "rcpt %d: %s" % (i, r)
        assert_reply(c.cmd("RCPT TO:<r100@example.com>"), 452, "4.5.3")
        assert_reply(c.cmd("RCPT TO:<r101@example.com>"), 452, "4.5.3")
        assert_reply(c.cmd("DATA"), 354)
        c.send(b"x\r\n.\r\n")
        qid = queued_id(c.read_reply())
    m = d.message(qid)
    assert m.rcpt_addresses == ["r%d@example.com" % i for i in range(100)]


def test_default_max_recipients_is_1000(daemon):
    with daemon.connect() as c:
        c.ehlo()
        assert_reply(c.cmd("MAIL FROM:<a@example.com>"), 250)
        c.send(b"".join(b"RCPT TO:<r%d@example.com>\r\n" % i
                        for i in range(1001)))
        replies = c.read_replies(1001)
        assert all(r.code == 250 for r in replies[:1000]), \
            [r for r in replies[:1000] if r.code != 250][:3]
        assert_reply(replies[1000], 452, "4.5.3")


def test_text_line_limit_data(daemon):
    """max_text_line = 1000 octets including CRLF (RFC 5321 4.5.3.1.6)."""
    ok = b"Subject: x\r\n\r\n" + b"a" * 998 + b"\r\n"
    bad = b"Subject: x\r\n\r\n" + b"a" * 999 + b"\r\n"
    with daemon.connect() as c:
        c.ehlo()
        q = c.send_mail("a@example.com", ["b@example.com"], ok)
        assert_reply(c.cmd("MAIL FROM:<a@example.com>"), 250)
        assert_reply(c.cmd("RCPT TO:<b@example.com>"), 250)
        assert_reply(c.cmd("DATA"), 354)
        c.send(bad + b".\r\n")
        r = c.read_reply()
        assert r.code // 100 == 5, "1001-octet line accepted: %s" % r
        assert_reply(r, "5")
        assert_reply(c.cmd("NOOP"), 250)
    assert daemon.queue_ids() == [q]
    assert daemon.message(q).body == ok


def test_text_line_limit_counts_unstuffed_or_stuffed(daemon):
    """A dot-stuffed line of 998 octets + its stuffing dot: 999 octets
    on the wire, 998 after unstuffing.  It must not be cut or merged; it
    is either stored intact or refused as a whole."""
    line = b"." + b"b" * 997 + b"\r\n"        # 1000 octets unstuffed
    with daemon.connect() as c:
        c.ehlo()
        assert_reply(c.cmd("MAIL FROM:<a@example.com>"), 250)
        assert_reply(c.cmd("RCPT TO:<b@example.com>"), 250)
        assert_reply(c.cmd("DATA"), 354)
        c.send(b"." + line + b".\r\n")
        r = c.read_reply()
        assert r.code in (250, 550, 552, 554, 500), r
    if r.code == 250:
        assert daemon.message(queued_id(r)).body == line


def test_text_line_limit_bdat(daemon):
    bad = b"a" * 1500 + b"\r\n"
    with daemon.connect() as c:
        c.ehlo()
        assert_reply(c.cmd("MAIL FROM:<a@example.com>"), 250)
        assert_reply(c.cmd("RCPT TO:<b@example.com>"), 250)
        c.send(b"BDAT %d LAST\r\n" % len(bad) + bad)
        r = c.read_reply()
        assert r.code // 100 == 5, r
        assert_reply(c.cmd("NOOP"), 250)
    assert daemon.queue_ids() == []


def test_text_line_limit_configurable(sluiced):
    d = sluiced(max_text_line=2000)
    msg = b"Subject: x\r\n\r\n" + b"a" * 1998 + b"\r\n"
    with d.connect() as c:
        c.ehlo()
        qid = c.send_mail("a@example.com", ["b@example.com"], msg)
    assert d.message(qid).body == msg


def test_client_disconnect_mid_data_leaves_nothing(daemon):
    c = daemon.connect()
    c.ehlo()
    assert_reply(c.cmd("MAIL FROM:<a@example.com>"), 250)
    assert_reply(c.cmd("RCPT TO:<b@example.com>"), 250)
    assert_reply(c.cmd("DATA"), 354)
    c.send(b"Subject: cut\r\n\r\n" + b"data\r\n" * 1000)
    c.close()
    daemon.wait_incoming_empty()
    assert daemon.queue_ids() == []
    # The daemon is fine.
    with daemon.connect() as c2:
        c2.ehlo()
        c2.send_mail("a@example.com", ["b@example.com"], b"x\r\n")
