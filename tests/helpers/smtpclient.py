"""A strict raw-socket SMTP client for the end-to-end tests.

It checks the shape of every reply line as it reads it (three digits, a
space or a hyphen, CRLF line ending, the same code on every line of a
multi-line reply), so that malformed replies fail the test that got them.
"""
import re
import socket
import time

TIMEOUT = 10.0

_LINE_RE = re.compile(rb"^([2-5][0-9][0-9])([ -])(.*)$", re.S)
_ENH_RE = re.compile(r"^([245])\.([0-9]{1,3})\.([0-9]{1,3})(?: |$)")
QUEUED_RE = re.compile(r"^2\.0\.0 Ok: queued as ([0-9A-Z]+)$")


class Closed(Exception):
    """The server closed the connection."""


class Reply:
    def __init__(self, code, lines):
        self.code = code          # int
        self.lines = lines        # list of str: text after "ddd-"/"ddd "

    @property
    def text(self):
        return "\n".join(self.lines)

    @property
    def first(self):
        return self.lines[0]

    @property
    def last(self):
        return self.lines[-1]

    @property
    def enhanced(self):
        """The enhanced status code of the first line, or None."""
        m = _ENH_RE.match(self.lines[0])
        return m.group(0).strip() if m else None

    def __repr__(self):
        return "<Reply %d %r>" % (self.code, self.lines)

    def __str__(self):
        return "\n".join("%d%s%s" % (self.code,
                                     "-" if i < len(self.lines) - 1 else " ",
                                     l) for i, l in enumerate(self.lines))


def assert_reply(reply, code, enh=None, text=None):
    """Check code (int or tuple of ints, or a leading digit string like
    '5'), that every line carries an enhanced status code whose class
    matches the reply's (RFC 2034), and optionally the enhanced code
    (str or tuple of str) and a regex on the first line's text."""
    if isinstance(code, str):
        ok = str(reply.code).startswith(code)
    elif isinstance(code, (tuple, list, set)):
        ok = reply.code in code
    else:
        ok = reply.code == code
    assert ok, "expected %s, got %s" % (code, reply)
    assert_enhanced(reply)
    if enh is not None:
        encs = (enh,) if isinstance(enh, str) else tuple(enh)
        assert reply.enhanced in encs, \
            "expected enhanced code %s, got %s" % (enh, reply)
    if text is not None:
        assert re.search(text, reply.first), \
            "reply %s does not match %r" % (reply, text)
    return reply


def assert_enhanced(reply):
    # RFC 3463 has no class 3: a 354 carries no enhanced code.
    if reply.code // 100 == 3:
        return
    for line in reply.lines:
        m = _ENH_RE.match(line)
        assert m, "reply line without enhanced status code: %s" % reply
        assert m.group(1) == str(reply.code)[0], \
            "enhanced class differs from the reply code: %s" % reply


def queued_id(reply):
    """The queue id of a '250 2.0.0 Ok: queued as ID' reply."""
    assert reply.code == 250 and len(reply.lines) == 1, \
        "expected 250 queued, got %s" % reply
    m = QUEUED_RE.match(reply.first)
    assert m, "250 reply is not 'Ok: queued as ID': %s" % reply
    return m.group(1)


class RawClient:
    """One SMTP connection over a plain socket."""

    def __init__(self, host, port, timeout=TIMEOUT, greeting=True):
        self.host, self.port, self.timeout = host, port, timeout
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.settimeout(timeout)
        self.buf = b""
        self.greeting = self.read_reply() if greeting else None

    # -- context manager
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    # -- output
    def send(self, data):
        if isinstance(data, str):
            data = data.encode("utf-8")
        self.sock.sendall(data)

    def send_line(self, line):
        if isinstance(line, str):
            line = line.encode("utf-8")
        self.send(line + b"\r\n")

    # -- input
    def _fill(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout("no reply from the server in time")
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError as e:
            raise Closed("connection reset: %s" % e)
        if not data:
            raise Closed("connection closed by the server")
        self.buf += data

    def read_line(self, timeout=None):
        deadline = time.monotonic() + (timeout or self.timeout)
        while b"\n" not in self.buf:
            if len(self.buf) > 1 << 20:
                raise AssertionError("reply line over 1 MiB")
            self._fill(deadline)
        line, self.buf = self.buf.split(b"\n", 1)
        assert line.endswith(b"\r"), \
            "reply line not terminated by CRLF: %r" % line
        return line[:-1]

    def read_reply(self, timeout=None):
        lines = []
        code = None
        while True:
            raw = self.read_line(timeout)
            m = _LINE_RE.match(raw)
            assert m, "malformed reply line %r (after %r)" % (raw, lines)
            c = int(m.group(1))
            assert code is None or c == code, \
                "code changes within a multi-line reply: %r" % raw
            code = c
            lines.append(m.group(3).decode("utf-8", "replace"))
            assert len(lines) < 1000, "endless multi-line reply"
            if m.group(2) == b" ":
                return Reply(code, lines)

    def read_replies(self, n, timeout=None):
        return [self.read_reply(timeout) for _ in range(n)]

    def cmd(self, line, timeout=None):
        self.send_line(line)
        return self.read_reply(timeout)

    def expect(self, line, code, enh=None, text=None):
        return assert_reply(self.cmd(line), code, enh, text)

    def read_until_closed(self, timeout=None):
        """Read replies until the server closes; returns them.  Fails if
        the connection is still open after timeout seconds."""
        deadline = time.monotonic() + (timeout or self.timeout)
        replies = []
        while True:
            try:
                replies.append(self.read_reply(
                    timeout=max(0.01, deadline - time.monotonic())))
            except Closed:
                assert not self.buf.strip(), \
                    "partial reply before close: %r" % self.buf
                return replies
            except socket.timeout:
                raise AssertionError(
                    "server did not close the connection within %.0f s; "
                    "replies so far: %s" % (timeout or self.timeout, replies))

    def assert_closed(self, timeout=None):
        extra = self.read_until_closed(timeout)
        assert not extra, "unexpected replies before close: %s" % extra

    # -- conveniences
    def ehlo(self, name="client.example"):
        r = self.cmd("EHLO " + name)
        assert r.code == 250, "EHLO refused: %s" % r
        return r

    def helo(self, name="client.example"):
        r = self.cmd("HELO " + name)
        assert r.code == 250, "HELO refused: %s" % r
        return r

    def send_mail(self, sender, rcpts, data, mail_params="", stuffed=False):
        """MAIL, RCPT..., DATA, the data (dot-stuffed here unless stuffed)
        and the final dot, one command at a time; returns the queue id."""
        self.expect("MAIL FROM:<%s>%s" % (sender, mail_params), 250)
        for r in rcpts:
            self.expect("RCPT TO:<%s>" % r, 250)
        self.expect("DATA", 354)
        self.send(data if stuffed else dot_stuff(data))
        self.send(b".\r\n")
        r = self.read_reply()
        return queued_id(r)

    def quit(self):
        r = self.cmd("QUIT")
        assert_reply(r, 221)
        self.assert_closed()
        return r


def dot_stuff(data):
    """Dot-stuff data (bytes with CRLF line endings) for DATA; adds a
    final CRLF if data does not end with one (as smtplib does)."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    if data and not data.endswith(b"\r\n"):
        data += b"\r\n"
    if data.startswith(b"."):
        data = b"." + data
    return data.replace(b"\r\n.", b"\r\n..")
