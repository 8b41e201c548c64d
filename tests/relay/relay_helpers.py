"""Helpers of the end-to-end delivery tests of sluiced (milestone M2):
the real daemon relaying to capture servers on 127.0.0.x, resolving
through a private unbound (tests/helpers/dnsserver.py), delivering to
Maildirs and LMTP.

SLUICE_BUILD (absolute) selects the build directory; default <repo>/build.

Fixtures:
  dns(records)            a DnsServer serving records, stopped at teardown
  mx_port                 one port number free on 127.0.0.2..127.0.0.20:
                          every capture server of the test listens on it
                          at its own address, and sluiced's smtp_port is it
  capture(ip, **opts)     a CaptureServer on ip:mx_port (port= overrides)
  relay(dns=..., **cfg)   sluiced configured for delivery (see RELAY_DEFAULTS)
"""
import email
import email.policy
import mailbox
import os
import re
import smtplib
import tempfile
import time

from sluice_test_helpers.sluiced import Sluiced

SENDER = "sender@snd.test"          # its MX is SENDER_MX (bounces land there)
SENDER_MX = "127.0.0.9"
SENDER_RECORDS = ["snd.test MX 10 mx.snd.test",
                  "mx.snd.test A %s" % SENDER_MX]
RELAY_HOSTNAME = "relay.sluice.test"

# Delivery settings that run retries, delay notices and expiry in seconds.
RELAY_DEFAULTS = {
    "hostname": RELAY_HOSTNAME,
    "smarthost": None,              # MX delivery unless a test sets one
    "retry_min": "1s",
    "retry_max": "2s",
    "queue_lifetime": "1h",
    "delay_warning": 0,
    "outbound_ipv6": False,
    "connect_timeout": "3s",
    "smtp_greeting_timeout": "5s",
    "smtp_command_timeout": "5s",
    "smtp_data_timeout": "5s",
    "smtp_done_timeout": "5s",
    "max_message_size": 10485760,
}


class Relay(Sluiced):
    """Sluiced with delivery log helpers."""

    def teardown_errors(self):
        # Only a 2xx reply to the end of data (or to an LMTP recipient)
        # delivers; "sent" on a QUIT or any other reply loses the mail.
        bad = [l for l in self.all_lines()
               if re.search(r"status=sent \((?!25\d)", l)]
        if bad:
            return ["recipients marked delivered on a reply that "
                    "is no delivery:\n" + "\n".join(bad[:10])]
        return []

    def all_lines(self):
        return self.log_text(all_runs=True).splitlines()

    def lines_of(self, qid, all_runs=True):
        return [l for l in (self.all_lines() if all_runs else
                            self.log_lines()) if (qid + ":") in l]

    def wait_all_log(self, pattern, timeout=10.0):
        """As wait_log, over the logs of every run."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            for line in self.all_lines():
                m = rx.search(line)
                if m:
                    return m
            if not self.running():
                raise AssertionError("sluiced died (%s) waiting for %r; "
                                     "log:\n%s" % (self.proc.poll(), pattern,
                                                   self.log_tail(80)))
            if time.monotonic() > deadline:
                raise AssertionError("no log line matches %r within %.0f s;"
                                     " log:\n%s" % (pattern, timeout,
                                                    self.log_tail(80)))
            time.sleep(0.05)

    def wait_msgs(self, srv, n, timeout=15.0):
        """Wait until capture server srv has recorded n messages; fail at
        once if the daemon dies meanwhile.  Returns srv.messages."""
        deadline = time.monotonic() + timeout
        while True:
            msgs = srv.messages
            if len(msgs) >= n:
                return msgs
            if not self.running():
                raise AssertionError(
                    "sluiced died (%s) with %d of %d messages at %s:%d; "
                    "log:\n%s" % (self.proc.poll(), len(msgs), n, srv.host,
                                   srv.port, self.log_tail(60)))
            if time.monotonic() > deadline:
                raise AssertionError(
                    "%d of %d messages at %s:%d after %.0fs; log:\n%s"
                    % (len(msgs), n, srv.host, srv.port, timeout,
                       self.log_tail(60)))
            time.sleep(0.03)

    def wait_removed(self, qid, timeout=10.0):
        return self.wait_all_log(r"\b%s: removed\b" % re.escape(qid),
                                 timeout)

    def wait_queue_empty(self, timeout=10.0):
        deadline = time.monotonic() + timeout
        while self.queue_ids():
            if time.monotonic() > deadline:
                raise AssertionError("queue not empty after %.0f s: %s\n%s"
                                     % (timeout, self.queue_ids()[:20],
                                        self.log_tail(60)))
            time.sleep(0.05)

    def send(self, rcpts, msg=None, sender=SENDER, mail_options=(),
             rcpt_options=None, subject="test", timeout=30):
        """One transaction; returns the queue id.  rcpt_options: a dict
        address -> list of RCPT parameters.  Refused recipients raise
        unless at least one was accepted (smtplib semantics are not
        used: every refusal is returned in .refused)."""
        if isinstance(rcpts, str):
            rcpts = [rcpts]
        if msg is None:
            msg = make_message(sender, rcpts, subject=subject)
        if isinstance(msg, str):
            msg = msg.encode()
        with smtplib.SMTP(self.host, self.port, timeout=timeout) as s:
            s.ehlo("client.test")
            code, resp = s.mail(sender, list(mail_options))
            assert code == 250, (code, resp)
            refused = {}
            for r in rcpts:
                opts = (rcpt_options or {}).get(r, [])
                code, resp = s.rcpt(r, list(opts))
                if code != 250:
                    refused[r] = (code, resp)
            if len(refused) == len(rcpts):
                s.rset()
                raise smtplib.SMTPRecipientsRefused(refused)
            code, resp = s.data(msg)
            assert code == 250, (code, resp)
        m = re.search(rb"queued as (\S+)", resp)
        assert m, resp
        return m.group(1).decode()


def give_to_daemon_user(path, user="sluice"):
    """sluiced started as root drops to `user` (config key "user"): hand
    it a tree it must write in, as an administrator would (a Maildir
    created for a user belongs to the user that delivers into it)."""
    import pwd
    if os.geteuid() != 0:
        return
    try:
        pw = pwd.getpwnam(user)
    except KeyError:
        return
    for root, dirs, files in os.walk(path):
        os.chown(root, pw.pw_uid, pw.pw_gid)
        for f in files:
            os.chown(os.path.join(root, f), pw.pw_uid, pw.pw_gid)


_counter = [0]


def make_message(sender, rcpts, subject="test", body=None, extra=None,
                 msgid=None):
    _counter[0] += 1
    if msgid is None:
        msgid = "<t%d.%d.%f@client.test>" % (os.getpid(), _counter[0],
                                              time.time())
    if body is None:
        body = "Hello from the relay tests, message %s.\r\n" % msgid
    hdr = ["From: <%s>" % sender,
           "To: %s" % ", ".join("<%s>" % r for r in rcpts),
           "Subject: %s" % subject,
           "Message-ID: %s" % msgid,
           "Date: Sun, 29 Nov 2026 06:00:00 +0000"]
    hdr += list(extra or [])
    return ("\r\n".join(hdr) + "\r\n\r\n" + body).encode()


def server_dir(prefix):
    """A new temporary directory for a private server (Dovecot, Postfix),
    mode 0755 and not under pytest's 0700 directories: the server's own
    unprivileged processes must reach it.  The caller removes it."""
    d = tempfile.mkdtemp(prefix=prefix)
    os.chmod(d, 0o755)
    return d


def maildir_messages(path, n, timeout=10.0, detail=None):
    """Wait until the Maildir at path holds at least n messages; returns
    their contents.  detail() adds to the failure message (a server's
    log); default: the files under path."""
    deadline = time.monotonic() + timeout
    while True:
        if all(os.path.isdir(os.path.join(path, s))
               for s in ("tmp", "new", "cur")):
            md = mailbox.Maildir(path, factory=None, create=False)
            msgs = [md.get_bytes(k) for k in md.keys()]
            if len(msgs) >= n:
                return msgs
        if time.monotonic() > deadline:
            raise AssertionError("%s: fewer than %d messages after %.0fs: %s"
                                 % (path, n, timeout,
                                    detail() if detail else _listing(path)))
        time.sleep(0.05)


def _listing(path):
    out = []
    for root, dirs, files in os.walk(path):
        out += [os.path.join(root, f) for f in files]
    return out or "(empty or missing)"


def msgid_of(content):
    m = re.search(rb"(?im)^Message-ID:\s*(<[^>\r\n]*>)", content)
    return m.group(1).decode() if m else None


def parse(content):
    return email.message_from_bytes(content, policy=email.policy.default)


class Report:
    """A parsed RFC 3464 report: .msg (the whole message), .fields (the
    per-message fields), .rcpts (a list of per-recipient field dicts,
    names lower-cased), .returned (the third part or None)."""

    def __init__(self, content):
        self.content = content
        self.msg = parse(content)
        m = self.msg
        assert m.get_content_type() == "multipart/report", \
            m.get_content_type()
        assert m.get_param("report-type") == "delivery-status", \
            m.get("Content-Type")
        parts = m.get_payload()
        assert len(parts) >= 2, "report with %d parts" % len(parts)
        self.parts = parts
        ds = [p for p in parts
              if p.get_content_type() == "message/delivery-status"]
        assert len(ds) == 1, [p.get_content_type() for p in parts]
        blocks = ds[0].get_payload()
        assert isinstance(blocks, list) and len(blocks) >= 2, blocks
        self.fields = self._fields(blocks[0])
        self.rcpts = [self._fields(b) for b in blocks[1:]]
        self.returned = parts[2] if len(parts) >= 3 else None

    @staticmethod
    def _fields(block):
        return {k.lower(): str(v) for k, v in block.items()}

    def rcpt(self, addr):
        for r in self.rcpts:
            if r.get("final-recipient", "").lower().endswith(
                    addr.lower()):
                return r
        raise AssertionError("no recipient %s in %s" % (addr, self.rcpts))

    def actions(self):
        return sorted(r.get("action", "").lower() for r in self.rcpts)

    def final_recipients(self):
        return sorted(r.get("final-recipient", "").split(";")[-1].strip()
                      for r in self.rcpts)


