"""MAIL/RCPT paths and parameters, end to end into the spool."""
import pytest

from sluice_test_helpers.smtpclient import assert_reply, queued_id


def domain_of_length(n):
    """A syntactically valid domain of exactly n octets (labels <= 63)."""
    labels = []
    left = n
    while left > 0:
        take = min(63, left)
        if left - take == 1:      # avoid a trailing 1-octet remainder
            take -= 2             # ... which would need an empty label
        labels.append("d" * take)
        left -= take + 1          # the dot
    d = ".".join(labels)
    assert len(d) == n, (len(d), n)
    return d


def transaction(daemon, mail_line, rcpt_lines, data=b"x\r\n", ehlo=True):
    with daemon.connect() as c:
        if ehlo:
            c.ehlo()
        assert_reply(c.cmd(mail_line), 250)
        for line in rcpt_lines:
            assert_reply(c.cmd(line), 250)
        assert_reply(c.cmd("DATA"), 354)
        c.send(data + b".\r\n")
        qid = queued_id(c.read_reply())
        c.quit()
    return daemon.message(qid)


def test_quoted_local_part(daemon):
    m = transaction(daemon, 'MAIL FROM:<"john doe"@example.com>',
                    ['RCPT TO:<"jane \\"q\\" doe"@example.com>'])
    assert m.sender == '"john doe"@example.com'
    assert m.rcpt_addresses == ['"jane \\"q\\" doe"@example.com']


def test_address_literal(daemon):
    m = transaction(daemon, "MAIL FROM:<a@[192.0.2.1]>",
                    ["RCPT TO:<user@[127.0.0.1]>",
                     "RCPT TO:<user6@[IPv6:::1]>"])
    assert m.sender == "a@[192.0.2.1]"
    assert m.rcpt_addresses == ["user@[127.0.0.1]", "user6@[IPv6:::1]"]


def test_null_sender(daemon):
    m = transaction(daemon, "MAIL FROM:<>", ["RCPT TO:<b@example.com>"])
    assert m.sender == ""
    assert ("from", "") in m.envelope


def test_null_recipient_refused(daemon):
    with daemon.connect() as c:
        c.ehlo()
        assert_reply(c.cmd("MAIL FROM:<a@example.com>"), 250)
        r = c.cmd("RCPT TO:<>")
        assert r.code // 100 == 5, r
        assert_reply(r, "5")


def test_source_route_dropped(daemon):
    m = transaction(daemon, "MAIL FROM:<@x.example:s@y.example>",
                    ["RCPT TO:<@a.example,@b.example:user@c.example>"])
    assert m.sender == "s@y.example"
    assert m.rcpt_addresses == ["user@c.example"]


def test_postmaster_without_domain(daemon):
    """RFC 5321 4.1.1.3: <Postmaster> must be accepted."""
    m = transaction(daemon, "MAIL FROM:<a@example.com>",
                    ["RCPT TO:<Postmaster>"])
    assert m.rcpt_addresses[0].lower() == "postmaster" or \
        m.rcpt_addresses[0].lower().startswith("postmaster@"), m.rcpt_addresses


def test_mail_from_without_space_after_colon_and_with(daemon):
    m = transaction(daemon, "MAIL FROM: <a@example.com>",
                    ["RCPT TO: <b@example.com>"])
    assert (m.sender, m.rcpt_addresses) == ("a@example.com", ["b@example.com"])


def test_local_part_limit(daemon):
    with daemon.connect() as c:
        c.ehlo()
        assert_reply(c.cmd("MAIL FROM:<%s@example.com>" % ("l" * 64)), 250)
        assert_reply(c.cmd("RCPT TO:<%s@example.com>" % ("r" * 64)), 250)
        r = c.cmd("RCPT TO:<%s@example.com>" % ("r" * 65))
        assert_reply(r, (501, 553))
        assert_reply(c.cmd("RSET"), 250)
        assert_reply(c.cmd("MAIL FROM:<%s@example.com>" % ("l" * 65)),
                     (501, 553))


def test_path_limit(daemon):
    """256 octets including the angle brackets is the most (RFC 5321
    4.5.3.1.3)."""
    dom_ok = domain_of_length(256 - 2 - 1 - 10)
    ok = "u" * 10 + "@" + dom_ok
    assert len(ok) + 2 == 256
    too_long = "u" * 11 + "@" + dom_ok
    with daemon.connect() as c:
        c.ehlo()
        assert_reply(c.cmd("MAIL FROM:<%s>" % ok), 250)
        assert_reply(c.cmd("RCPT TO:<%s>" % ok), 250)
        assert_reply(c.cmd("RCPT TO:<%s>" % too_long), (501, 553))
        assert_reply(c.cmd("DATA"), 354)
        c.send(b"x\r\n.\r\n")
        qid = queued_id(c.read_reply())
        assert_reply(c.cmd("MAIL FROM:<%s>" % too_long), (501, 553))
    m = daemon.message(qid)
    assert m.sender == ok and m.rcpt_addresses == [ok]


def test_domain_limit(daemon):
    with daemon.connect() as c:
        c.ehlo()
        assert_reply(c.cmd("MAIL FROM:<a@example.com>"), 250)
        r = c.cmd("RCPT TO:<a@%s>" % domain_of_length(256))
        assert_reply(r, (501, 553))
        r = c.cmd("RCPT TO:<a@%s.example>" % ("x" * 64))   # label > 63
        assert_reply(r, (501, 553))


@pytest.mark.parametrize("addr", [
    "a b@example.com", "a@b@example.com", "a@", "@example.com",
    "a@example..com", "a@-example.com", ".a@example.com", "a.@example.com",
    "a..b@example.com", "a@[300.1.1.1]", "a@exa mple.com",
])
def test_bad_addresses_refused(daemon, addr):
    with daemon.connect() as c:
        c.ehlo()
        assert_reply(c.cmd("MAIL FROM:<a@example.com>"), 250)
        r = c.cmd("RCPT TO:<%s>" % addr)
        assert r.code in (501, 553), "RCPT TO:<%s> gave %s" % (addr, r)
        assert_reply(r, (501, 553))
        assert_reply(c.cmd("NOOP"), 250)


def test_control_characters_refused(daemon):
    with daemon.connect() as c:
        c.ehlo()
        assert_reply(c.cmd("MAIL FROM:<a@example.com>"), 250)
        c.send(b"RCPT TO:<a\x01b@example.com>\r\n")
        r = c.read_reply()
        assert r.code // 100 == 5, r
        c.send(b"RCPT TO:<a\x00b@example.com>\r\n")
        r = c.read_reply()
        assert r.code // 100 == 5, r
        assert_reply(c.cmd("NOOP"), 250)
    assert daemon.queue_ids() == []


def test_utf8_needs_smtputf8(daemon):
    with daemon.connect() as c:
        c.ehlo()
        assert_reply(c.cmd("MAIL FROM:<j\u00fcrgen@example.com>"), 553)
        assert_reply(c.cmd("MAIL FROM:<a@example.com>"), 250)
        assert_reply(c.cmd("RCPT TO:<\u7528\u6237@\u4f8b\u5b50.example>"),
                     553)
        assert_reply(c.cmd("RCPT TO:<user@b\u00fccher.example>"), 553)
    assert daemon.queue_ids() == []


def test_utf8_with_smtputf8(daemon):
    rcpt = "\u7528\u6237@\u4f8b\u5b50.example"
    body = "Subject: =?utf-8?q?x?=\r\n\r\nh\u00e9llo\r\n".encode()
    m = transaction(daemon,
                    "MAIL FROM:<j\u00fcrgen@example.com> SMTPUTF8",
                    ["RCPT TO:<%s>" % rcpt], data=body)
    assert m.sender == "j\u00fcrgen@example.com"
    assert m.rcpt_addresses == [rcpt]
    assert "smtputf8" in m.env
    assert m.body == body
    rec = m.received_unfolded
    assert " with UTF8SMTP id " + m.id in rec, rec
    assert m.env["proto"] in ("UTF8SMTP", "ESMTP"), m.env


@pytest.mark.parametrize("line", [
    "MAIL FROM:<a@example.com> FOO=bar",
    "MAIL FROM:<a@example.com> XYZZY",
    "MAIL FROM:<a@example.com> SIZE=10 X-UNKNOWN=1",
])
def test_unknown_mail_param(daemon, line):
    with daemon.connect() as c:
        c.ehlo()
        assert_reply(c.cmd(line), 555, "5.5.4")
        assert_reply(c.cmd("MAIL FROM:<a@example.com>"), 250)


def test_unknown_rcpt_param(daemon):
    with daemon.connect() as c:
        c.ehlo()
        assert_reply(c.cmd("MAIL FROM:<a@example.com>"), 250)
        assert_reply(c.cmd("RCPT TO:<b@example.com> FOO=bar"), 555, "5.5.4")
        assert_reply(c.cmd("RCPT TO:<b@example.com>"), 250)


@pytest.mark.parametrize("line", [
    "MAIL FROM:<a@example.com> BODY=9BIT",
    "MAIL FROM:<a@example.com> RET=MAYBE",
    "MAIL FROM:<a@example.com> RET=FULL RET=HDRS",
    "MAIL FROM:<a@example.com> SIZE=-5",
    "MAIL FROM:<a@example.com> ENVID=" + "x" * 101,
    "MAIL FROM:<a@example.com> ENVID=a+zz",
])
def test_bad_mail_param_values(daemon, line):
    with daemon.connect() as c:
        c.ehlo()
        r = c.cmd(line)
        assert r.code in (501, 555), "%r gave %s" % (line, r)
        assert_reply(r, (501, 555))


@pytest.mark.parametrize("line", [
    "RCPT TO:<b@example.com> NOTIFY=SOMETIMES",
    "RCPT TO:<b@example.com> NOTIFY=NEVER,SUCCESS",
    "RCPT TO:<b@example.com> ORCPT=nosemicolon",
])
def test_bad_rcpt_param_values(daemon, line):
    with daemon.connect() as c:
        c.ehlo()
        assert_reply(c.cmd("MAIL FROM:<a@example.com>"), 250)
        r = c.cmd(line)
        assert r.code in (501, 555), "%r gave %s" % (line, r)
        assert_reply(r, (501, 555))


def test_dsn_params_stored(daemon):
    m = transaction(
        daemon,
        "MAIL FROM:<a@example.com> RET=HDRS ENVID=QQ314159+2Bx",
        ["RCPT TO:<b@example.com> NOTIFY=SUCCESS,FAILURE "
         "ORCPT=rfc822;b+40example.com",
         "RCPT TO:<c@example.com>",
         "RCPT TO:<d@example.com> NOTIFY=NEVER",
         "RCPT TO:<e@example.com> ORCPT=rfc822;orig+2Be@example.com "
         "NOTIFY=delay"])
    assert m.env["ret"] == "HDRS"
    assert m.env["envid"] == "QQ314159+2Bx"
    assert [r["address"] for r in m.rcpts] == [
        "b@example.com", "c@example.com", "d@example.com", "e@example.com"]
    b, c, d, e = m.rcpts
    assert set(b["notify"].split(",")) == {"SUCCESS", "FAILURE"}
    assert b["orcpt"] == "rfc822;b+40example.com"
    assert "notify" not in c and "orcpt" not in c
    assert d["notify"] == "NEVER" and "orcpt" not in d
    assert e["notify"] == "DELAY"
    assert e["orcpt"] == "rfc822;orig+2Be@example.com"
    # Order: notify/orcpt lines follow their own rcpt line.
    keys = [k for k, _ in m.envelope if k in ("rcpt", "notify", "orcpt")]
    assert keys[0] == "rcpt" and keys.count("rcpt") == 4


def test_mail_params_are_case_insensitive(daemon):
    m = transaction(daemon,
                    "MAIL FROM:<a@example.com> size=100 body=8bitmime "
                    "ret=full",
                    ["RCPT TO:<b@example.com> notify=failure"])
    assert m.env["body"] == "8BITMIME"
    assert m.env["ret"] == "FULL"
    assert m.rcpts[0]["notify"] == "FAILURE"
