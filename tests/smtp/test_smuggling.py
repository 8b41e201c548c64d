"""SMTP smuggling (CVE-2023-51764 class): an end-of-data other than
CRLF.CRLF must never end the data, and a bare CR or LF is refused."""
import time

import pytest

from sluice_test_helpers.smtpclient import assert_reply, queued_id

PAYLOADS = {
    "LF.LF": b"\n.\n",
    "CR.CR": b"\r.\r",
    "LF.CRLF": b"\n.\r\n",
    "CRLF.LF": b"\r\n.\n",
    "CRLF.CR": b"\r\n.\r",
    "CR.CRLF": b"\r.\r\n",
    "CRLF.CRCRLF": b"\r\n.\r\r\n",
    "LF.CRCRLF": b"\n.\r\r\n",
    "CRLF.NUL.CRLF": b"\r\n\x00.\r\n",
}

SMUGGLED = (b"MAIL FROM:<evil@x.example>\r\n"
            b"RCPT TO:<victim@y.example>\r\n"
            b"DATA\r\n"
            b"From: ceo@y.example\r\n"
            b"Subject: smuggled\r\n"
            b"\r\n"
            b"smuggled\r\n")


def smuggle(daemon, payload, split):
    body = (b"From: a@example.com\r\nSubject: carrier\r\n\r\ncarrier\r\n"
            + payload + SMUGGLED)
    with daemon.connect() as c:
        c.ehlo()
        assert_reply(c.cmd("MAIL FROM:<a@example.com>"), 250)
        assert_reply(c.cmd("RCPT TO:<b@example.com>"), 250)
        assert_reply(c.cmd("DATA"), 354)
        tail = b"\r\n.\r\nQUIT\r\n"
        if split:
            # The suspicious sequence at a write (and likely read) boundary.
            cut = body.index(payload) + 1
            c.send(body[:cut])
            time.sleep(0.1)
            c.send(body[cut:] + tail)
        else:
            c.send(body + tail)
        replies = c.read_until_closed()
    return replies


@pytest.mark.parametrize("split", [False, True], ids=["one-write", "split"])
@pytest.mark.parametrize("name", list(PAYLOADS))
def test_smuggling(daemon, name, split):
    replies = smuggle(daemon, PAYLOADS[name], split)
    codes = [r.code for r in replies]
    ids = daemon.queue_ids()
    # Never a second message, never a reply to the smuggled commands.
    assert len(ids) <= 1, "%d messages stored: %s" % (len(ids), ids)
    assert codes.count(250) <= 1 and 354 not in codes, replies
    for qid in ids:
        m = daemon.message(qid)
        assert m.sender == "a@example.com", m.envelope
        assert "victim@y.example" not in m.rcpt_addresses
    if name != "CRLF.NUL.CRLF":
        # Bare CR/LF: refused after the real end of data, nothing stored,
        # and the QUIT after it is answered: the session stayed in sync.
        assert len(replies) == 2, replies
        assert replies[0].code // 100 == 5, \
            "bare CR/LF accepted: %s" % replies[0]
        assert_reply(replies[0], "5")
        assert_reply(replies[1], 221)
        assert ids == []
    else:
        # NUL: either refused, or stored as one message that contains
        # the would-be commands as text.
        assert len(replies) == 2 and replies[1].code == 221, replies
        if replies[0].code == 250:
            assert len(ids) == 1
            assert SMUGGLED in daemon.message(ids[0]).body
        else:
            assert replies[0].code // 100 == 5 and ids == [], replies
    daemon.wait_incoming_empty()


def test_crlf_dot_crlf_inside_bdat_is_data(daemon):
    """In BDAT there is no end-of-data marker: CRLF.CRLF and commands are
    just octets of the message."""
    msg = (b"Subject: carrier\r\n\r\ncarrier\r\n.\r\n" + SMUGGLED)
    with daemon.connect() as c:
        c.ehlo()
        assert_reply(c.cmd("MAIL FROM:<a@example.com>"), 250)
        assert_reply(c.cmd("RCPT TO:<b@example.com>"), 250)
        c.send(b"BDAT %d LAST\r\n" % len(msg) + msg + b"QUIT\r\n")
        qid = queued_id(c.read_reply())
        assert c.read_reply().code == 221
    assert daemon.queue_ids() == [qid]
    m = daemon.message(qid)
    assert m.body == msg
    assert m.rcpt_addresses == ["b@example.com"]


@pytest.mark.parametrize("name", ["LF.LF", "CRLF.LF", "LF.CRLF", "CR.CR"])
def test_smuggling_in_bdat(daemon, name):
    msg = (b"Subject: carrier\r\n\r\ncarrier\r\n" + PAYLOADS[name]
           + SMUGGLED)
    with daemon.connect() as c:
        c.ehlo()
        assert_reply(c.cmd("MAIL FROM:<a@example.com>"), 250)
        assert_reply(c.cmd("RCPT TO:<b@example.com>"), 250)
        c.send(b"BDAT %d LAST\r\n" % len(msg) + msg + b"QUIT\r\n")
        replies = c.read_until_closed()
    assert len(replies) == 2, replies
    assert replies[0].code // 100 == 5, replies
    assert replies[1].code == 221, replies
    assert daemon.queue_ids() == []


def test_legit_pipelined_second_message_is_two_messages(daemon):
    """The control case: a real CRLF.CRLF followed by commands is a
    second, legitimate transaction."""
    with daemon.connect() as c:
        c.ehlo()
        assert_reply(c.cmd("MAIL FROM:<a@example.com>"), 250)
        assert_reply(c.cmd("RCPT TO:<b@example.com>"), 250)
        assert_reply(c.cmd("DATA"), 354)
        c.send(b"first\r\n.\r\n" + SMUGGLED + b".\r\nQUIT\r\n")
        replies = c.read_until_closed()
    assert [r.code for r in replies] == [250, 250, 250, 354, 250, 221], \
        replies
    assert len(daemon.queue_ids()) == 2
