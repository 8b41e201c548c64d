"""BDAT (RFC 3030 CHUNKING) in the delivery client, against servers that
have it: sluiced itself (its inbound side implements CHUNKING and
PIPELINING; the message it spools is compared byte for byte with what was
sent) and a strict scripted BDAT server (tests/client/test_smtp_client.py's
capture server has no BDAT)."""
import os
import re
import select
import socket
import subprocess
import threading

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

from sluice_test_helpers.sluiced import Sluiced  # loaded by tests/conftest.py

A, B, C = "a@example.net", "b@example.net", "c@example.net"
CHUNK = 64 * 1024       # CLIENT_CHUNK in src/smtp_client.c
BDAT_LOG = re.compile(r"> BDAT (\d+)( LAST)?$", re.M)


def build_dir():
    return os.environ.get("SLUICE_BUILD") or os.path.join(REPO, "build")


@pytest.fixture
def sluice(tmp_path):
    """Factory: a running sluiced (config overrides as keywords)."""
    daemons = []
    if not os.access(os.path.join(build_dir(), "sluiced"), os.X_OK):
        pytest.fail("sluiced is missing in %s" % build_dir(), pytrace=False)

    def factory(**overrides):
        d = Sluiced(build_dir(), tmp_path / ("d%d" % len(daemons)),
                    **overrides)
        daemons.append(d)
        d.start()
        return d

    yield factory
    for d in daemons:
        d.stop()


def chunks_sent(res):
    """[(size, last)] as the client logged them (driver run with -v)."""
    return [(int(n), bool(last)) for n, last in BDAT_LOG.findall(res.stderr)]


def expected_chunks(n):
    if n == 0:
        return [(0, True)]
    k = (n + CHUNK - 1) // CHUNK
    return [(CHUNK, False)] * (k - 1) + [(n - CHUNK * (k - 1), True)]


def body_of(n):
    """An n-octet message of CRLF lines (so sending changes nothing)."""
    if n == 0:
        return b""
    line = b"0123456789abcdefghijklmnopqrstuvwxyz" * 2 + b"\r\n"
    head = b"Subject: bdat %d\r\n\r\n" % n
    out = (head + line * (n // len(line) + 1))[:n - 2]
    if out.endswith(b"\r"):
        out = out[:-1] + b"z"
    return out + b"\r\n"


def stored(srv):
    """The body of the one message sluiced queued (after its Received)."""
    ids = srv.queue_ids()
    assert len(ids) == 1, ids
    return srv.message(ids[0])


def codes(res, msg=0):
    return {a: c for a, (c, _) in res.rcpts(msg).items()}


# -- against sluiced -------------------------------------------------------

@pytest.mark.parametrize("n", [0, 40, CHUNK - 2, CHUNK, CHUNK + 2,
                               2 * CHUNK, 2 * CHUNK + 100, 3 * CHUNK - 2,
                               3 * CHUNK])
def test_sizes_round_trip(sluice, drive, n):
    srv = sluice()
    body = body_of(n)
    assert len(body) == n
    res = drive(srv.port, [A, B], content=body, args=["-v"])
    assert codes(res) == {A: 250, B: 250}, res.events
    assert res.rcpts()[A][1].startswith("250 2.0.0 Ok: queued as ")
    assert res.closed["code"] == 221
    assert chunks_sent(res) == expected_chunks(n)
    assert "> DATA" not in res.stderr
    m = stored(srv)
    assert m.body == body
    assert m.rcpt_addresses == [A, B]


def test_dots_not_stuffed(sluice, drive):
    srv = sluice()
    body = (b"Subject: dots\r\n\r\n.\r\n..\r\n.leading\r\n. \r\n" +
            (b"x" * 997 + b"\r\n.\r\n") * 70 + b".end\r\n")
    res = drive(srv.port, [A], content=body, args=["-v"])
    assert codes(res) == {A: 250}
    assert stored(srv).body == body
    # Exactly the spooled octets went out: no dot was added.
    assert sum(n for n, _ in chunks_sent(res)) == len(body)


def test_eight_bit_content(sluice, drive):
    srv = sluice()
    octets = bytes(b for b in range(256) if b not in (10, 13))
    body = b"Subject: 8bit\r\n\r\n" + (octets + b"\r\n") * 600
    res = drive(srv.port, [A], content=body, args=["-v", "-8"])
    assert codes(res) == {A: 250}
    assert stored(srv).body == body
    assert len(chunks_sent(res)) == 3


def test_bare_lf_sizes_count_normalised_octets(sluice, drive):
    srv = sluice()
    # 62 octets + LF: 2048 lines are 129024 octets as spooled and exactly
    # two chunks once each LF is CRLF -- the second one LAST.
    raw = b"y" * 62 + b"\n"
    res = drive(srv.port, [A], content=raw * 2048, args=["-v"])
    assert codes(res) == {A: 250}
    assert chunks_sent(res) == [(CHUNK, False), (CHUNK, True)]
    assert stored(srv).body == (b"y" * 62 + b"\r\n") * 2048


def test_missing_final_crlf_added(sluice, drive):
    srv = sluice()
    body = b"Subject: x\n\nbare lf\n.dot\nno eol"
    res = drive(srv.port, [A], content=body, args=["-v"])
    assert codes(res) == {A: 250}
    want = b"Subject: x\r\n\r\nbare lf\r\n.dot\r\nno eol\r\n"
    assert chunks_sent(res) == [(len(want), True)]
    assert stored(srv).body == want


def test_several_messages_one_connection(sluice, drive):
    srv = sluice()
    body = body_of(CHUNK + 500)
    res = drive(srv.port, [A], content=body, args=["-n", "3"])
    for i in range(3):
        assert codes(res, i) == {A: 250}
    ids = srv.queue_ids()
    assert len(ids) == 3
    assert all(srv.message(q).body == body for q in ids)


def test_refused_mid_way(sluice, drive):
    """552 for the chunk that crosses max_message_size: every recipient
    gets it, the client stops and sends RSET.  (SIZE= counts the spooled
    octets: "x LF" lines grow by half on the wire, so the client's own
    SIZE check passes and sluiced's limit is crossed in the 2nd chunk.)"""
    srv = sluice(max_message_size=100000)
    res = drive(srv.port, [A, B, C], content=b"x\n" * 47000,
                args=["-v", "-n", "2"])
    for i in range(2):
        r = res.rcpts(i)
        assert set(r) == {A, B, C}
        for code, reply in r.values():
            assert (code, reply) == (
                552, "552 5.3.4 Error: message size exceeds fixed limit")
    assert res.stderr.count("> RSET") == 2
    assert res.closed["code"] == 221
    assert srv.queue_ids() == []


def test_big_message_memory_bounded(sluice, client_drive, tmp_path):
    if not os.access("/usr/bin/time", os.X_OK):
        pytest.fail("/usr/bin/time is missing (package time, "
                    "scripts/install-deps)")
    srv = sluice(max_message_size=8 * 1024 * 1024)
    line = b"." + b"0123456789" * 7 + b"\r\n"
    body = b"Subject: big\r\n\r\n" + line * (5 * 1024 * 1024 // len(line))
    f = tmp_path / "big"
    f.write_bytes(body)
    env = dict(os.environ, ASAN_OPTIONS="quarantine_size_mb=1")
    p = subprocess.run(["/usr/bin/time", "-f", "maxrss=%M", client_drive,
                        "-T", "30", "127.0.0.1", str(srv.port), str(f), A],
                       capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 0, p.stderr
    assert '"code":250' in p.stdout, p.stdout
    rss = int(p.stderr.strip().splitlines()[-1].split("=")[1])
    assert rss < 40 * 1024, "max RSS %d kB" % rss
    assert stored(srv).body == body


# -- against a strict scripted BDAT server ---------------------------------

class BdatServer:
    """One connection: EHLO/LHLO, MAIL, RCPT, BDAT (reads exactly n
    octets), RSET, QUIT.  Without PIPELINING it records every command that
    arrived before the reply to the previous one was sent (early)."""

    def __init__(self, pipelining=True, lmtp=False, rcpt_replies=None,
                 chunk_replies=None, last_replies=None):
        self.pipelining, self.lmtp = pipelining, lmtp
        self.rcpt_replies = rcpt_replies or {}
        self.chunk_replies = chunk_replies or {}   # chunk index -> reply
        self.last_replies = last_replies            # LMTP: per rcpt
        self.commands, self.early, self.messages = [], [], []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1)
        self.port = self.sock.getsockname()[1]
        self.buf = b""
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _fill(self, conn):
        b = conn.recv(65536)
        if not b:
            raise EOFError
        self.buf += b

    def _line(self, conn):
        while b"\r\n" not in self.buf:
            self._fill(conn)
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line.decode("latin-1")

    def _octets(self, conn, n):
        while len(self.buf) < n:
            self._fill(conn)
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def _reply(self, conn, text):
        if not self.pipelining:
            r, _, _ = select.select([conn], [], [], 0.05)
            if self.buf or r:
                self.early.append(self.commands[-1])
        conn.sendall(text.encode() + b"\r\n")

    def _run(self):
        self.sock.settimeout(10)
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        conn.settimeout(10)
        with conn:
            try:
                self._session(conn)
            except (EOFError, OSError):
                pass

    def _session(self, conn):
        conn.sendall(b"220 bdat.test ESMTP\r\n")
        rcpts, chunk, content, failed = [], 0, b"", False
        while True:
            cmd = self._line(conn)
            self.commands.append(cmd)
            verb = cmd.split(" ")[0].upper()
            if verb in ("EHLO", "LHLO"):
                self._reply(conn, "250-bdat.test\r\n%s250 CHUNKING" % (
                    "250-PIPELINING\r\n" if self.pipelining else ""))
            elif verb == "MAIL":
                rcpts, chunk, content, failed = [], 0, b"", False
                self._reply(conn, "250 2.1.0 ok")
            elif verb == "RCPT":
                addr = cmd[cmd.index("<") + 1:cmd.index(">")]
                r = self.rcpt_replies.get(addr, "250 2.1.5 ok")
                if r.startswith("2"):
                    rcpts.append(addr)
                self._reply(conn, r)
            elif verb == "BDAT":
                arg = cmd.split(" ")
                content += self._octets(conn, int(arg[1]))
                last = len(arg) > 2
                r = self.chunk_replies.get(chunk)
                chunk += 1
                if failed or not rcpts:
                    r = "503 5.5.1 no valid recipients"
                elif r is None and last:
                    self.messages.append((list(rcpts), content))
                    if self.lmtp:
                        r = "\r\n".join(
                            (self.last_replies or {}).get(a, "250 2.0.0 "
                                                          "<%s> ok" % a)
                            for a in rcpts)
                    else:
                        r = "250 2.0.0 queued"
                elif r is None:
                    r = "250 2.0.0 %d octets" % len(content)
                failed = failed or not r.startswith("2")
                self._reply(conn, r)
            elif verb == "RSET":
                rcpts, content, failed = [], b"", False
                self._reply(conn, "250 2.0.0 ok")
            elif verb == "QUIT":
                self._reply(conn, "221 2.0.0 bye")
                return
            else:
                self._reply(conn, "502 5.5.2 not here")

    def close(self):
        self.sock.close()
        self.thread.join(timeout=11)


@pytest.fixture
def bdat_server():
    servers = []

    def factory(**kw):
        s = BdatServer(**kw)
        servers.append(s)
        return s

    yield factory
    for s in servers:
        s.close()


def bdat_commands(srv):
    return [c for c in srv.commands if c.startswith(("BDAT", "DATA"))]


def test_without_pipelining_one_chunk_at_a_time(bdat_server, drive):
    srv = bdat_server(pipelining=False)
    body = body_of(3 * CHUNK + 10)
    res = drive(srv.port, [A, B], content=body)
    assert codes(res) == {A: 250, B: 250}
    assert srv.messages == [([A, B], body)]
    assert bdat_commands(srv) == ["BDAT 65536", "BDAT 65536", "BDAT 65536",
                                  "BDAT 10 LAST"]
    assert srv.early == []


def test_pipelined_small_message_one_write(scripted, drive):
    # RFC 3030 4.2: MAIL, RCPTs and the whole (one-chunk) message at once.
    body = b"Subject: x\r\n\r\nhi\r\n"
    srv = scripted([b"220 x\r\n", b"250-x\r\n250-PIPELINING\r\n"
                    b"250 CHUNKING\r\n",
                    b"250 ok\r\n250 ok\r\n250 ok\r\n250 queued\r\n",
                    b"221 bye\r\n"])
    res = drive(srv.port, [A, B], content=body)
    assert codes(res) == {A: 250, B: 250}
    turns = srv.received.split(b"|")
    assert turns[1] == (b"MAIL FROM:<sender@example.org>\r\n"
                        b"RCPT TO:<a@example.net>\r\n"
                        b"RCPT TO:<b@example.net>\r\n"
                        b"BDAT 18 LAST\r\n" + body)
    assert turns[2] == b"QUIT\r\n"


def test_no_recipient_accepted_pipelined(bdat_server, drive):
    srv = bdat_server(rcpt_replies={A: "550 5.1.1 no", B: "450 4.2.0 later"})
    res = drive(srv.port, [A, B], content=body_of(5 * CHUNK),
                args=["-n", "2"])
    for i in range(2):
        assert res.rcpts(i) == {A: (550, "550 5.1.1 no"),
                                B: (450, "450 4.2.0 later")}
    # Only the chunk that went with the RCPTs, then RSET, each time.
    assert bdat_commands(srv) == ["BDAT 65536"] * 2
    assert srv.commands.count("RSET") == 2
    assert res.closed["code"] == 221


def test_no_recipient_accepted_without_pipelining(bdat_server, drive):
    srv = bdat_server(pipelining=False, rcpt_replies={A: "550 5.1.1 no"})
    res = drive(srv.port, [A])
    assert codes(res) == {A: 550}
    assert bdat_commands(srv) == [] and "RSET" in srv.commands


@pytest.mark.parametrize("pipelining", [True, False])
def test_chunk_refused(bdat_server, drive, pipelining):
    srv = bdat_server(pipelining=pipelining, rcpt_replies={
        C: "550 5.1.1 unknown"}, chunk_replies={1: "452 4.3.1 disk full"})
    res = drive(srv.port, [A, B, C], content=body_of(6 * CHUNK),
                args=["-n", "2"])
    for i in range(2):
        assert res.rcpts(i) == {A: (452, "452 4.3.1 disk full"),
                                B: (452, "452 4.3.1 disk full"),
                                C: (550, "550 5.1.1 unknown")}
    assert srv.messages == []
    assert srv.commands.count("RSET") == 2
    if not pipelining:
        # Chunk 0 (250), chunk 1 (452), then only RSET: twice.
        assert bdat_commands(srv) == ["BDAT 65536"] * 4
        assert srv.early == []
    assert res.closed["code"] == 221


def test_last_refused(bdat_server, drive):
    srv = bdat_server(chunk_replies={1: "554 5.7.1 content rejected"})
    res = drive(srv.port, [A, B], content=body_of(CHUNK + 10))
    assert res.rcpts() == {A: (554, "554 5.7.1 content rejected"),
                           B: (554, "554 5.7.1 content rejected")}
    assert srv.commands[-2:] == ["RSET", "QUIT"]


@pytest.mark.parametrize("pipelining", [True, False])
def test_lmtp_per_recipient_after_last(bdat_server, drive, pipelining):
    srv = bdat_server(lmtp=True, pipelining=pipelining,
                      rcpt_replies={B: "550 5.1.1 no such user"},
                      last_replies={C: "452 4.2.2 mailbox full"})
    body = body_of(2 * CHUNK + 7)
    res = drive(srv.port, [A, B, C], content=body, args=["-l", "-n", "2"])
    for i in range(2):
        assert res.rcpts(i) == {
            A: (250, "250 2.0.0 <a@example.net> ok"),
            B: (550, "550 5.1.1 no such user"),
            C: (452, "452 4.2.2 mailbox full")}
    assert srv.commands[0] == "LHLO client.test"
    assert srv.messages == [([A, C], body)] * 2
    assert "RSET" not in srv.commands
    assert res.closed["code"] == 221


def test_last_accepted_without_recipients(scripted, drive):
    # RFC 3030 2: a message without recipients cannot be accepted (cf. a
    # 354 without valid recipients, RFC 2920 3.1).
    srv = scripted([b"220 x\r\n", b"250-x\r\n250-PIPELINING\r\n"
                    b"250 CHUNKING\r\n",
                    b"250 ok\r\n550 5.1.1 no\r\n250 queued\r\n"])
    res = drive(srv.port, [A])
    assert res.rcpts()[A] == (550, "550 5.1.1 no")
    assert res.closed["code"] == 421
    assert "BDAT LAST accepted without valid recipients" in \
        res.closed["reply"]
