"""Reading sluice spool files (docs/spool.md)."""
import hashlib
import os
import re

HEADER_LEN = 40
_HEADER_RE = re.compile(rb"^SLUICE1 ([0-9]{10}) ([0-9]{20})\n$")
ID_RE = re.compile(r"^[0-9A-Z]+$")

# Envelope keys with one value each, and those that follow a "rcpt".
SINGLE_KEYS = {"id", "arrival", "client", "helo", "proto", "from", "body",
               "smtputf8", "ret", "envid"}
RCPT_KEYS = {"notify", "orcpt"}


class SpoolFormatError(AssertionError):
    pass


class SpoolMessage:
    """One parsed spool file.

    envelope   list of (key, value) in file order (value str, "" if none)
    env        dict of the single-valued keys
    rcpts      list of dicts {"address", "notify"?, "orcpt"?}
    message    the message bytes (Received header + data)
    received   the first Received header, raw (with its CRLFs)
    body       the message without that first Received header
    """

    def __init__(self, path, raw):
        self.path = path
        self.raw = raw
        if len(raw) < HEADER_LEN:
            raise SpoolFormatError("%s: shorter than the header (%d bytes)"
                                   % (path, len(raw)))
        m = _HEADER_RE.match(raw[:HEADER_LEN])
        if not m:
            raise SpoolFormatError("%s: bad first line %r"
                                   % (path, raw[:HEADER_LEN]))
        self.env_end = int(m.group(1))
        self.msg_len = int(m.group(2))
        if self.env_end < HEADER_LEN + 2 or self.env_end > len(raw):
            raise SpoolFormatError("%s: envelope end %d out of range"
                                   % (path, self.env_end))
        if len(raw) < self.env_end + self.msg_len:
            raise SpoolFormatError(
                "%s: incomplete: %d bytes, header says %d + %d"
                % (path, len(raw), self.env_end, self.msg_len))
        envtext = raw[HEADER_LEN:self.env_end]
        if not envtext.endswith(b"\n\n"):
            raise SpoolFormatError("%s: envelope does not end with a blank "
                                   "line: %r" % (path, envtext[-80:]))
        self.envelope = []
        self.env = {}
        self.rcpts = []
        for line in envtext[:-2].split(b"\n"):
            if not line:
                raise SpoolFormatError("%s: empty line inside the envelope"
                                       % path)
            if b"\r" in line:
                raise SpoolFormatError("%s: CR in envelope line %r"
                                       % (path, line))
            key, _, value = line.decode("utf-8").partition(" ")
            self.envelope.append((key, value))
            if key == "rcpt":
                self.rcpts.append({"address": value})
            elif key in RCPT_KEYS:
                if not self.rcpts:
                    raise SpoolFormatError("%s: %s before any rcpt"
                                           % (path, key))
                self.rcpts[-1][key] = value
            elif key in SINGLE_KEYS:
                if key in self.env:
                    raise SpoolFormatError("%s: duplicate %s" % (path, key))
                self.env[key] = value
            # Unknown keys are kept in self.envelope only.
        for k in ("id", "arrival", "client", "helo", "proto", "from"):
            if k not in self.env:
                raise SpoolFormatError("%s: envelope lacks %r" % (path, k))
        if not self.rcpts:
            raise SpoolFormatError("%s: envelope has no rcpt" % path)
        self.message = raw[self.env_end:self.env_end + self.msg_len]
        self.trailer = raw[self.env_end + self.msg_len:]
        self.received, self.body = split_received(self.message, path)

    @property
    def id(self):
        return self.env["id"]

    @property
    def sender(self):
        return self.env["from"]

    @property
    def rcpt_addresses(self):
        return [r["address"] for r in self.rcpts]

    @property
    def received_unfolded(self):
        return unfold(self.received)

    def body_sha256(self):
        return hashlib.sha256(self.body).hexdigest()


def unfold(header):
    """A raw header (bytes, CRLF lines) as one str line."""
    s = header.decode("utf-8", "replace")
    s = re.sub(r"\r\n(?=[ \t])", "", s)
    return s.rstrip("\r\n")


def split_received(message, path="message"):
    """Split message into (first Received header, the rest)."""
    if not message.startswith(b"Received: from "):
        raise SpoolFormatError("%s: message does not start with the "
                               "Received header: %r" % (path, message[:80]))
    pos = 0
    while True:
        eol = message.find(b"\r\n", pos)
        if eol < 0:
            raise SpoolFormatError("%s: Received header not terminated by "
                                   "CRLF" % path)
        line = message[pos:eol]
        if b"\n" in line or b"\r" in line:
            raise SpoolFormatError("%s: bare CR/LF in the Received header"
                                   % path)
        if len(line) > 998:
            raise SpoolFormatError("%s: Received header line over 998 "
                                   "octets" % path)
        pos = eol + 2
        if message[pos:pos + 1] not in (b" ", b"\t"):
            break
    return message[:pos], message[pos:]


def parse_file(path):
    with open(path, "rb") as f:
        return SpoolMessage(path, f.read())


def queue_dir(spool_dir):
    return os.path.join(spool_dir, "queue")


def incoming_dir(spool_dir):
    return os.path.join(spool_dir, "incoming")


def list_dir(path):
    """Names of the regular files in path ([] if it does not exist)."""
    try:
        names = os.listdir(path)
    except FileNotFoundError:
        return []
    return sorted(n for n in names
                  if os.path.isfile(os.path.join(path, n)))


def queue_ids(spool_dir):
    return list_dir(queue_dir(spool_dir))


def incoming_ids(spool_dir):
    return list_dir(incoming_dir(spool_dir))


def read_message(spool_dir, qid):
    path = os.path.join(queue_dir(spool_dir), qid)
    assert os.path.exists(path), \
        "queue file %s does not exist (queue: %s)" % (path,
                                                    queue_ids(spool_dir)[:20])
    return parse_file(path)
