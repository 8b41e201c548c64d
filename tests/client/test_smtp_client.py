"""The delivery client against a capture server (and a few hostile
scripted peers): every scenario runs tests/tools/client_drive."""
import socket

import pytest

A, B, C = "a@example.net", "b@example.net", "c@example.net"
BODY = b"From: s@example.org\r\nSubject: test\r\n\r\nhello world\r\n"


def codes(res, msg=0):
    return {a: c for a, (c, _) in res.rcpts(msg).items()}


# -- plain delivery ----------------------------------------------------

def test_plain_pipelining(capture, drive):
    srv = capture()
    res = drive(srv.port, [A, B], content=BODY)
    assert codes(res) == {A: 250, B: 250}
    assert res.rcpts()[A][1].startswith("250 2.0.0 Ok")
    assert res.ready["tls"] is None
    assert res.closed["code"] == 221
    (m,) = srv.wait_for(1)
    assert m.mail_from == "sender@example.org"
    assert m.rcpt_tos == [A, B]
    assert "SIZE=%d" % len(BODY) in m.mail_options
    assert m.content == BODY
    assert not m.tls and m.auth_login is None


def test_no_pipelining(capture, drive):
    srv = capture(pipelining=False, rcpt_replies={B: "550 5.1.1 no such user"})
    res = drive(srv.port, [A, B, C], content=BODY)
    assert codes(res) == {A: 250, B: 550, C: 250}
    (m,) = srv.wait_for(1)
    assert m.rcpt_tos == [A, C] and m.content == BODY


def test_commands_one_at_a_time_without_pipelining(scripted, drive):
    srv = scripted([b"220 x ESMTP\r\n", b"250 x\r\n", b"250 ok\r\n",
                    b"250 ok\r\n", b"250 ok\r\n", b"354 go\r\n", 0.5,
                    b"250 queued\r\n221 bye\r\n"])
    res = drive(srv.port, [A, B])
    assert codes(res) == {A: 250, B: 250}
    turns = srv.received.split(b"|")
    assert turns[:5] == [b"EHLO client.test\r\n",
                         b"MAIL FROM:<sender@example.org>\r\n",
                         b"RCPT TO:<a@example.net>\r\n",
                         b"RCPT TO:<b@example.net>\r\n", b"DATA\r\n"]


def test_commands_in_one_group_with_pipelining(scripted, drive):
    srv = scripted([b"220 x ESMTP\r\n", b"250-x\r\n250 PIPELINING\r\n",
                    b"250 ok\r\n250 ok\r\n550 no\r\n354 go\r\n", 0.5,
                    b"250 queued\r\n221 bye\r\n"])
    res = drive(srv.port, [A, B])
    assert codes(res) == {A: 250, B: 550}
    turns = srv.received.split(b"|")
    # RFC 2920: MAIL, the RCPTs and DATA in one write.
    assert turns[1].startswith(b"MAIL FROM:<sender@example.org>\r\n"
                               b"RCPT TO:<a@example.net>\r\n"
                               b"RCPT TO:<b@example.net>\r\nDATA\r\n")


def test_null_sender_and_offset(capture, drive):
    srv = capture()
    res = drive(srv.port, [A], content=BODY, sender="",
                prefix=b"spool header junk\r\n.\r\n")
    assert codes(res) == {A: 250}
    (m,) = srv.wait_for(1)
    assert m.mail_from == "" and m.content == BODY


def test_dot_stuffing_round_trip(capture, drive):
    srv = capture()
    body = (b"Subject: dots\r\n\r\n.\r\n..\r\n.leading\r\nmid.dle\r\n"
            b". \r\n" + (b"x" * 997 + b"\r\n.\r\n") * 70 + b".end\r\n")
    res = drive(srv.port, [A], content=body)
    assert codes(res) == {A: 250}
    assert srv.wait_for(1)[0].content == body


def test_big_message_crosses_chunks(capture, drive):
    srv = capture()
    line = b"." + b"0123456789" * 7 + b"\r\n"
    body = b"Subject: big\r\n\r\n" + line * 40000     # ~2.9 MB
    res = drive(srv.port, [A], content=body)
    assert codes(res) == {A: 250}
    assert srv.wait_for(1)[0].content == body


def test_line_ends_fixed(capture, drive):
    srv = capture()
    res = drive(srv.port, [A], content=b"Subject: x\n\nbare lf\n.dot\nno eol")
    assert codes(res) == {A: 250}
    assert srv.wait_for(1)[0].content == (
        b"Subject: x\r\n\r\nbare lf\r\n.dot\r\nno eol\r\n")


def test_empty_message(capture, drive):
    srv = capture()
    res = drive(srv.port, [A], content=b"")
    assert codes(res) == {A: 250}
    assert srv.wait_for(1)[0].content == b""


# -- refusals ----------------------------------------------------------

def test_per_recipient_replies(capture, drive):
    srv = capture(rcpt_replies={B: "550 5.1.1 <b@example.net>: no such user",
                                C: "451 4.3.0 try later"})
    res = drive(srv.port, [A, B, C])
    r = res.rcpts()
    assert r[A][0] == 250
    assert r[B] == (550, "550 5.1.1 <b@example.net>: no such user")
    assert r[C] == (451, "451 4.3.0 try later")
    assert srv.wait_for(1)[0].rcpt_tos == [A]


def test_all_recipients_refused(capture, drive):
    srv = capture(rcpt_replies={A: "550 5.1.1 no", B: "550 5.1.1 no"})
    res = drive(srv.port, [A, B], args=["-n", "2"])
    for n in (0, 1):
        assert codes(res, n) == {A: 550, B: 550}
    assert res.closed["code"] == 221
    assert srv.messages == []


def test_mail_refused(capture, drive):
    srv = capture(mail_reply="451 4.3.0 sender deferred")
    res = drive(srv.port, [A, B], args=["-n", "2"])
    for n in (0, 1):
        assert res.rcpts(n) == {A: (451, "451 4.3.0 sender deferred"),
                                B: (451, "451 4.3.0 sender deferred")}
    assert res.closed["code"] == 221
    assert srv.connections == 1


def test_mail_refused_no_pipelining(capture, drive):
    srv = capture(pipelining=False, mail_reply="553 5.1.8 bad sender")
    res = drive(srv.port, [A, B], args=["-n", "2"])
    assert codes(res, 1) == {A: 553, B: 553}
    assert res.closed["code"] == 221


def test_data_refused(capture, drive):
    srv = capture(data_reply="554 5.7.1 content rejected")
    res = drive(srv.port, [A, B, C], args=["-n", "2"])
    assert res.rcpts(1)[B] == (554, "554 5.7.1 content rejected")
    assert res.closed["code"] == 221


def test_greeting_refused(capture, drive):
    srv = capture(greeting="554 5.7.1 go away")
    res = drive(srv.port, [A])
    assert res.ready is None and res.of("rcpt") == []
    assert res.closed["code"] == 554
    assert res.closed["reply"] == "5.7.1 go away"


def test_helo_fallback(capture, drive):
    srv = capture(ehlo_reply="502 5.5.1 EHLO not implemented")
    res = drive(srv.port, [A, B], content=BODY)
    assert codes(res) == {A: 250, B: 250}
    (m,) = srv.wait_for(1)
    assert m.mail_options == [] and m.content == BODY


def test_size_limit(capture, drive):
    srv = capture(size=100)
    res = drive(srv.port, [A], content=b"x" * 200 + b"\r\n")
    assert res.rcpts()[A] == (552, "552 5.3.4 message too big for host")
    assert srv.messages == []


def test_smtputf8_not_offered(capture, drive):
    srv = capture(smtputf8=False)
    res = drive(srv.port, [A, B], args=["-U"])
    assert res.rcpts()[A] == (
        550, "550 5.6.7 SMTPUTF8 required but not offered by host")
    assert codes(res) == {A: 550, B: 550}
    assert res.closed["code"] == 221
    assert srv.messages == []


def test_smtputf8_offered(capture, drive):
    srv = capture()
    res = drive(srv.port, ["j\u00f6rg@example.net"], args=["-U"])
    assert list(codes(res).values()) == [250]
    (m,) = srv.wait_for(1)
    assert "SMTPUTF8" in m.mail_options


def test_8bitmime_and_dsn(capture, drive):
    srv = capture()
    res = drive(srv.port, [A], args=["-8", "-D", "SUCCESS,FAILURE",
                                     "-R", "HDRS", "-E", "QID+2B1"])
    assert codes(res) == {A: 250}
    (m,) = srv.wait_for(1)
    assert "BODY=8BITMIME" in m.mail_options
    assert "RET=HDRS" in m.mail_options and "ENVID=QID+2B1" in m.mail_options
    assert m.rcpt_options == [["NOTIFY=SUCCESS,FAILURE"]]


def test_no_8bitmime_no_dsn(capture, drive):
    srv = capture(eightbitmime=False, dsn=False)
    res = drive(srv.port, [A], args=["-8", "-D", "NEVER", "-R", "FULL"])
    assert codes(res) == {A: 250}
    (m,) = srv.wait_for(1)
    assert m.mail_options == ["SIZE=%d" % len(b"Subject: t\r\n\r\nhello\r\n")]


# -- several messages, LMTP ---------------------------------------------

def test_several_messages_one_connection(capture, drive):
    srv = capture(rcpt_replies={B: "550 5.1.1 no"})
    res = drive(srv.port, [A, B], content=BODY, args=["-n", "3"])
    for n in range(3):
        assert codes(res, n) == {A: 250, B: 550}
    assert len(srv.wait_for(3)) == 3
    assert srv.connections == 1
    assert res.closed["code"] == 221


def test_lmtp_per_recipient(capture, drive):
    srv = capture(lmtp=True, lmtp_replies={B: "452 4.2.2 mailbox full"},
                  rcpt_replies={C: "550 5.1.1 unknown"})
    res = drive(srv.port, [A, B, C], args=["-l", "-n", "2"])
    for n in (0, 1):
        r = res.rcpts(n)
        assert r[A][0] == 250 and "<a@example.net> delivered" in r[A][1]
        assert r[B] == (452, "452 4.2.2 mailbox full")
        assert r[C] == (550, "550 5.1.1 unknown")
    (m, _) = srv.wait_for(2)
    assert m.lmtp and m.rcpt_tos == [A, B]


# -- TLS -----------------------------------------------------------------

def test_starttls_opportunistic(capture, drive):
    srv = capture(starttls=True)
    res = drive(srv.port, [A], content=BODY, args=["-t", "opportunistic"])
    assert codes(res) == {A: 250}
    assert res.ready["tls"].startswith("TLSv1.")
    assert "Untrusted TLS connection established to" in res.stderr
    (m,) = srv.wait_for(1)
    assert m.tls and m.content == BODY


def test_opportunistic_without_starttls(capture, drive):
    srv = capture()
    res = drive(srv.port, [A], args=["-t", "opportunistic"])
    assert codes(res) == {A: 250}
    assert res.ready["tls"] is None
    assert not srv.wait_for(1)[0].tls


def test_required_self_signed_fails(capture, drive):
    srv = capture(starttls=True)
    res = drive(srv.port, [A], args=["-t", "required", "-N", "localhost"])
    assert res.ready is None
    assert res.closed["code"] == 421
    assert res.closed["reply"].startswith("4.7.5 ")
    assert srv.messages == []


def test_required_not_offered(capture, drive):
    srv = capture()
    res = drive(srv.port, [A], args=["-t", "required"])
    assert res.closed["code"] == 421
    assert res.closed["reply"].startswith("4.7.5 TLS is required")


def test_required_trusted(capture, drive, certs):
    srv = capture(starttls=True)
    res = drive(srv.port, [A], args=["-t", "required", "-N", "localhost",
                                     "-C", srv.cert_file])
    assert codes(res) == {A: 250}
    assert "Trusted TLS connection established to localhost[127.0.0.1]" \
        in res.stderr
    assert srv.wait_for(1)[0].tls


def test_required_wrong_name(capture, drive):
    srv = capture(starttls=True)
    res = drive(srv.port, [A], args=["-t", "required", "-N", "mx.example.org",
                                     "-C", srv.cert_file])
    assert res.closed["code"] == 421
    assert "4.7.5" in res.closed["reply"]
    assert srv.messages == []


def test_implicit_tls(capture, drive):
    srv = capture(implicit_tls=True)
    res = drive(srv.port, [A], content=BODY, args=["-t", "implicit"])
    assert codes(res) == {A: 250}
    assert res.ready["tls"] is not None
    assert srv.wait_for(1)[0].tls


def test_implicit_tls_verify_mode(capture, drive):
    srv = capture(implicit_tls=True)
    res = drive(srv.port, [A], args=["-t", "implicit", "-V",
                                     "-N", "localhost"])
    assert res.closed["code"] == 421 and "4.7.5" in res.closed["reply"]


def test_tls_handshake_stall(scripted, drive):
    srv = scripted([b"220 x ESMTP\r\n", b"250-x\r\n250 STARTTLS\r\n",
                    b"220 2.0.0 go ahead\r\n"], hold=6)
    res = drive(srv.port, [A], args=["-t", "opportunistic", "-T", "1"])
    assert res.closed["code"] == 421
    assert res.closed["reply"].startswith("4.7.5 TLS handshake with ")
    assert res.elapsed < 4


def test_tls_handshake_garbage(scripted, drive):
    srv = scripted([b"220 x ESMTP\r\n", b"250-x\r\n250 STARTTLS\r\n",
                    b"220 2.0.0 go ahead\r\n", 0.3,
                    b"this is not TLS\r\n" * 100],
                   hold=6)
    res = drive(srv.port, [A], args=["-t", "opportunistic", "-T", "3"])
    assert res.closed["code"] == 421
    assert res.closed["reply"].startswith("4.7.5 TLS handshake with ")
    assert "timed out" not in res.closed["reply"]


def test_tls_handshake_to_plain_server(scripted, drive):
    srv = scripted(b"220 x ESMTP\r\n250-x\r\n250 STARTTLS\r\n"
                   b"220 go ahead\r\nnot TLS at all\r\n", hold=5)
    res = drive(srv.port, [A], args=["-t", "opportunistic"])
    assert res.closed["code"] == 421
    assert "4.5.0" in res.closed["reply"] or "4.7.5" in res.closed["reply"]


# -- AUTH ----------------------------------------------------------------

def test_auth_plain_over_starttls(capture, drive):
    srv = capture(starttls=True, auth=("joe", "s3cret"))
    res = drive(srv.port, [A], args=["-t", "opportunistic", "-u", "joe",
                                     "-p", "s3cret"])
    assert codes(res) == {A: 250}
    (m,) = srv.wait_for(1)
    assert m.tls and m.auth_login == "joe"
    assert "s3cret" not in res.stderr


def test_auth_bad_password(capture, drive):
    srv = capture(starttls=True, auth=("joe", "s3cret"))
    res = drive(srv.port, [A], args=["-t", "opportunistic", "-u", "joe",
                                     "-p", "wrong", "-v"])
    assert res.ready is None
    assert res.closed["code"] == 535
    assert res.closed["reply"].startswith("5.7.8")
    assert "wrong" not in res.stderr
    assert srv.messages == []


def test_auth_login(capture, drive):
    srv = capture(starttls=True, auth=("joe", "pw"),
                  auth_mechanisms=("LOGIN",))
    res = drive(srv.port, [A], args=["-t", "opportunistic", "-u", "joe",
                                     "-p", "pw"])
    assert codes(res) == {A: 250}
    assert srv.wait_for(1)[0].auth_login == "joe"


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_auth_cleartext_loopback(capture, drive):
    srv = capture(auth=("joe", "pw"), auth_require_tls=False)
    res = drive(srv.port, [A], args=["-u", "joe", "-p", "pw"])
    assert codes(res) == {A: 250}
    assert srv.wait_for(1)[0].auth_login == "joe"


def local_address():
    """A non-loopback address of this host, or None."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))     # no packet is sent
            ip = s.getsockname()[0]
        except OSError:
            return None
    return None if ip.startswith("127.") else ip


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_no_auth_in_cleartext_to_remote(capture, drive):
    ip = local_address()
    if ip is None:
        pytest.skip("no non-loopback address")
    srv = capture(host=ip, auth=("joe", "pw"), auth_require_tls=False)
    res = drive(srv.port, [A], args=["-u", "joe", "-p", "pw", "-v"], host=ip)
    assert res.closed["code"] == 421
    assert res.closed["reply"].startswith("4.7.0 refusing to send AUTH")
    assert "> AUTH" not in res.stderr
    assert srv.messages == []


def test_auth_not_offered(capture, drive):
    srv = capture()
    res = drive(srv.port, [A], args=["-u", "joe", "-p", "pw"])
    assert res.closed["code"] == 421
    assert "4.7.0" in res.closed["reply"] and "does not offer AUTH" in \
        res.closed["reply"]


# -- timeouts, lost connections, hostile peers --------------------------

def test_stall_at_end_of_data(capture, drive):
    srv = capture(stall={"dot": 6})
    res = drive(srv.port, [A, B], args=["-T", "1"])
    for code, reply in res.rcpts().values():
        assert code == 421
        assert reply.startswith("421 4.4.2 conversation with ")
        assert "timed out while sending end of data" in reply
    assert res.elapsed < 4
    assert res.closed["code"] == 421


def test_stall_greeting(capture, drive):
    srv = capture(stall={"greeting": 6})
    res = drive(srv.port, [A], args=["-T", "1"])
    assert res.closed["code"] == 421
    assert "timed out while receiving the initial server greeting" in \
        res.closed["reply"]
    assert res.elapsed < 4


def test_stall_rcpt(capture, drive):
    srv = capture(stall={"rcpt": 6}, pipelining=False)
    res = drive(srv.port, [A], args=["-T", "1"])
    assert "timed out while sending RCPT TO" in res.rcpts()[A][1]
    assert res.elapsed < 4


def test_drop_mid_data(capture, drive):
    srv = capture(drop="body")
    body = b"Subject: x\r\n\r\n" + b"line\r\n" * 200000
    res = drive(srv.port, [A, B], content=body)
    for code, reply in res.rcpts().values():
        assert code == 421
        assert reply.startswith("421 4.4.2 lost connection with ")
    assert srv.messages == []


def test_drop_after_dot(capture, drive):
    srv = capture(drop="dot")
    res = drive(srv.port, [A])
    code, reply = res.rcpts()[A]
    assert code == 421 and "lost connection" in reply
    assert "while sending end of data" in reply


def test_drop_at_mail(capture, drive):
    srv = capture(drop="mail")
    res = drive(srv.port, [A, B], args=["-n", "2"])
    assert codes(res, 0) == {A: 421, B: 421}
    assert codes(res, 1) == {A: 421, B: 421}   # reported, never sent
    assert res.closed["code"] == 421


def test_connection_refused(drive):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    res = drive(port, [A])
    assert res.closed["code"] == 421
    assert res.closed["reply"] == (
        "4.4.1 connect to 127.0.0.1[127.0.0.1]:%d: Connection refused" % port)


def test_server_421_mid_transaction(scripted, drive):
    srv = scripted(b"220 x ESMTP\r\n250-x\r\n250 PIPELINING\r\n"
                   b"250 ok\r\n421 4.4.2 x closing\r\n")
    res = drive(srv.port, [A, B])
    assert res.rcpts()[A] == (421, "421 4.4.2 x closing")
    assert res.closed["code"] == 421


def test_multiline_reply_joined(scripted, drive):
    srv = scripted(b"220 x ESMTP\r\n250 x\r\n250 ok\r\n"
                   b"550-5.1.1 first line\r\n550-5.1.1 second\r\n"
                   b"550 5.1.1 third\r\n250 ok\r\n221 bye\r\n")
    res = drive(srv.port, [A])
    assert res.rcpts()[A] == (
        550, "550 5.1.1 first line 5.1.1 second 5.1.1 third")


def test_endless_reply_lines(scripted, drive):
    srv = scripted(b"220-x\r\n" * 5000)
    res = drive(srv.port, [A])
    assert res.closed["code"] == 421 and "4.5.0" in res.closed["reply"]


def test_overlong_reply_line(scripted, drive):
    srv = scripted(b"220 " + b"x" * 100000)
    res = drive(srv.port, [A])
    assert res.closed["code"] == 421 and "4.5.0" in res.closed["reply"]


def test_garbage_reply(scripted, drive):
    srv = scripted(b"HTTP/1.1 400 Bad Request\r\n\r\n")
    res = drive(srv.port, [A])
    assert res.closed["code"] == 421 and "4.5.0" in res.closed["reply"]


def test_control_characters_sanitized(scripted, drive):
    srv = scripted(b"220 x\r\n250 x\r\n250 ok\r\n550 5.1.1 a\x1b[31m\x00b"
                   b"\xff\r\n250 ok\r\n221 bye\r\n")
    res = drive(srv.port, [A])
    assert res.rcpts()[A] == (550, "550 5.1.1 a?[31m?b?")


def test_starttls_injection_refused(scripted, drive):
    srv = scripted(b"220 x\r\n250-x\r\n250 STARTTLS\r\n"
                   b"220 go ahead\r\n250 injected\r\n")
    res = drive(srv.port, [A], args=["-t", "opportunistic"])
    assert res.closed["code"] == 421
    assert "after the STARTTLS reply" in res.closed["reply"]


# -- memory stays bounded ------------------------------------------------

@pytest.mark.parametrize("tls", [False, True])
def test_big_message_memory_bounded(capture, client_drive, tmp_path, tls):
    """A 40 MB message must not be buffered whole, in clear or in TLS
    (the TLS filter once encrypted all of it into the socket buffer)."""
    import os
    import subprocess
    if not os.access("/usr/bin/time", os.X_OK):
        pytest.fail("/usr/bin/time is missing (package time, "
                    "scripts/install-deps)")
    srv = capture(size=0, starttls=tls)
    line = b"0123456789" * 7 + b"\r\n"
    f = tmp_path / "big"
    f.write_bytes(b"Subject: big\r\n\r\n" + line * (40 * 1024 * 1024 // 72))
    env = dict(os.environ, ASAN_OPTIONS="quarantine_size_mb=1")
    args = ["-t", "opportunistic"] if tls else []
    p = subprocess.run(["/usr/bin/time", "-f", "maxrss=%M", client_drive,
                        "-T", "30"] + args + ["127.0.0.1", str(srv.port),
                                              str(f), A],
                       capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 0, p.stderr
    assert '"code":250' in p.stdout
    rss = int(p.stderr.strip().splitlines()[-1].split("=")[1])
    assert rss < 40 * 1024, "max RSS %d kB" % rss
    assert srv.wait_for(1)[0].tls == tls
