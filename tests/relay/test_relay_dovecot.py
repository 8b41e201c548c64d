"""Interop: sluiced hands local mail to a real Dovecot LMTP server
(lmtp_address).  A private Dovecot instance -- its own dovecot.conf,
base_dir, state_dir, log and Maildirs under a temporary directory, never
/etc/dovecot -- listens for LMTP on 127.0.0.1 and delivers the users of a
passwd-file userdb to TMP/mail/DOMAIN/USER as the system user "mail".
Needs root (Dovecot switches to the mail user) and the Debian packages
dovecot-core and dovecot-lmtpd (scripts/install-deps)."""
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time

import pytest

from relay_helpers import (SENDER, SENDER_RECORDS, maildir_messages,
                           make_message, msgid_of, server_dir)
from sluice_test_helpers.sluiced import free_port

DOVECOT = "/usr/sbin/dovecot"
LMTP_BINARY = "/usr/lib/dovecot/lmtp"
DOMAIN = "example.org"
USERS = ("user", "other")           # known to Dovecot's userdb
MAIL_USER = "mail"                  # Dovecot delivers as this system user
START_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0


class PrivateDovecot:
    def __init__(self, users, domain):
        self.users, self.domain = users, domain
        # Reached by Dovecot's unprivileged processes (auth as "dovecot",
        # delivery as "mail").
        self.dir = server_dir("sluice-dovecot-")
        self.conf = os.path.join(self.dir, "dovecot.conf")
        self.passwd = os.path.join(self.dir, "users")
        self.mail = os.path.join(self.dir, "mail")
        self.log = os.path.join(self.dir, "dovecot.log")
        self.out = os.path.join(self.dir, "dovecot.out")
        self.port = None
        self.proc = None

    def write(self):
        pw = pwd.getpwnam(MAIL_USER)
        os.makedirs(self.mail)
        os.chown(self.mail, pw.pw_uid, pw.pw_gid)
        with open(self.passwd, "w") as f:
            for u in self.users:
                # user:password:uid:gid:gecos:home:shell:extra
                f.write("%s@%s::%d:%d::%s::\n"
                        % (u, self.domain, pw.pw_uid, pw.pw_gid,
                           os.path.join(self.mail, self.domain, u)))
        conf = """\
# A private Dovecot for sluice's tests: LMTP only, nothing under /etc.
base_dir = {d}/run
state_dir = {d}/state
log_path = {log}
info_log_path = {log}
instance_name = sluice-test-{port}
hostname = lmtp.{domain}
protocols = lmtp
listen = 127.0.0.1
ssl = no
default_internal_user = dovecot
default_login_user = dovenull
first_valid_uid = {uid}
last_valid_uid = {uid}
first_valid_gid = {gid}
last_valid_gid = {gid}
auth_verbose = yes
auth_mechanisms = plain
mail_location = maildir:{mail}/%d/%n
passdb {{
  driver = passwd-file
  args = {passwd}
}}
userdb {{
  driver = passwd-file
  args = {passwd}
}}
service lmtp {{
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {port}
  }}
  unix_listener lmtp {{
    mode = 0
  }}
}}
service auth {{
  unix_listener auth-client {{
    mode = 0
  }}
}}
""".format(d=self.dir, log=self.log, port=self.port, domain=self.domain,
           uid=pw.pw_uid, gid=pw.pw_gid, mail=self.mail, passwd=self.passwd)
        with open(self.conf, "w") as f:
            f.write(conf)

    def start(self):
        self.port = free_port()
        self.write()
        r = subprocess.run([DOVECOT, "-n", "-c", self.conf],
                           capture_output=True, timeout=30)
        assert r.returncode == 0, "dovecot -n failed: %s" % (
            r.stderr.decode(errors="replace"))
        with open(self.out, "wb") as out:
            self.proc = subprocess.Popen(
                [DOVECOT, "-F", "-c", self.conf], stdin=subprocess.DEVNULL,
                stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True)
        self._wait_greeting()

    def _wait_greeting(self):
        deadline = time.monotonic() + START_TIMEOUT
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("dovecot exited (%s) at start\n%s"
                                     % (self.proc.returncode, self.logs()))
            try:
                with socket.create_connection(("127.0.0.1", self.port),
                                              timeout=2) as s:
                    s.settimeout(2)
                    last = s.recv(512)
                    if last.startswith(b"220"):
                        s.sendall(b"QUIT\r\n")
                        return
            except OSError as e:
                last = e
            time.sleep(0.1)
        raise AssertionError("no LMTP greeting from dovecot on 127.0.0.1:%d "
                             "within %.0fs (last: %r)\n%s"
                             % (self.port, START_TIMEOUT, last, self.logs()))

    def logs(self):
        text = []
        for p in (self.out, self.log):
            try:
                with open(p, errors="replace") as f:
                    text.append("--- %s\n%s" % (p, f.read()[-5000:]))
            except OSError:
                text.append("--- %s (missing)" % p)
        return "\n".join(text)

    def stop(self):
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(STOP_TIMEOUT)
            # The master stops its children on SIGTERM; whatever of its
            # own process group is left (after a SIGKILL) goes too.
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            self.proc = None
        shutil.rmtree(self.dir, ignore_errors=True)

    def maildir(self, user):
        return os.path.join(self.mail, self.domain, user)

    def messages(self, user, n, timeout=15.0):
        """Wait until user's Maildir holds at least n messages."""
        return maildir_messages(self.maildir(user), n, timeout, self.logs)


@pytest.fixture
def dovecot():
    for p in (DOVECOT, LMTP_BINARY):
        if not os.access(p, os.X_OK):
            pytest.fail("%s is missing: dovecot-core and dovecot-lmtpd "
                        "(scripts/install-deps)" % p)
    if os.geteuid() != 0:
        pytest.skip("the private dovecot needs root")
    for u in ("dovecot", "dovenull", MAIL_USER):
        try:
            pwd.getpwnam(u)
        except KeyError:
            pytest.fail("no system user %s (the dovecot packages "
                        "create it)" % u)
    dc = PrivateDovecot(USERS, DOMAIN)
    try:
        dc.start()
        yield dc
    finally:
        dc.stop()


@pytest.fixture
def lmtp_relay(dovecot, relay, dns, tmp_path):
    # dovecot first: it is stopped after sluiced.
    d = dns(SENDER_RECORDS)
    r = relay(dns=d, local_domains=[DOMAIN],
              mailbox_root=str(tmp_path / "mail"),
              lmtp_address="127.0.0.1:%d" % dovecot.port)
    return r


def _body(tag):
    return ("".join("line %d of a message for Dovecot (%s)\r\n" % (i, tag)
                    for i in range(40))
            + ".a line that starts with a dot\r\n"
            + "..two dots\r\n"
            + "last line\r\n")


def _check_delivered(got, msg, body, user):
    assert len(got) == 1, "%d messages for %s" % (len(got), user)
    m = got[0]
    assert msgid_of(m) == msgid_of(msg)
    # Dovecot stores LF line ends; the body arrives unchanged (the dots
    # unstuffed exactly once).
    assert m.endswith(body.replace("\r\n", "\n").encode()), m[-300:]
    head = m.split(b"\n\n", 1)[0]
    assert head.startswith(b"Return-Path: <%s>\n" % SENDER.encode()), \
        head[:300]
    assert b"\nDelivered-To: %s@%s\n" % (user.encode(),
                                         DOMAIN.encode()) in head, head
    assert b"by lmtp.%s with LMTP" % DOMAIN.encode() in head, head


def test_delivery_to_dovecot_lmtp(lmtp_relay, dovecot, sender_mx, tmp_path):
    r = lmtp_relay
    rcpt = "user@%s" % DOMAIN
    body = _body("one")
    msg = make_message(SENDER, [rcpt], body=body)
    qid = r.send(rcpt, msg)
    got = dovecot.messages("user", 1)
    _check_delivered(got, msg, body, "user")
    r.wait_removed(qid, timeout=15)
    r.wait_all_log(r"%s: to=<user@example\.org>, .*status=sent \(250 2\.0\.0 "
                   % qid)
    time.sleep(0.3)
    assert dovecot.messages("user", 1) == got, "delivered twice"
    assert not os.path.exists(dovecot.maildir("other"))
    assert sender_mx.messages == []
    assert not os.path.exists(tmp_path / "mail"), \
        "LMTP mail written to sluiced's own Maildirs"
