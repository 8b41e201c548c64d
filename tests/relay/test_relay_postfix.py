"""Interop: sluiced delivers to a real Postfix as the destination MX
(test 14 of the M2 brief).  A private Postfix instance (own config
directory, queue and Maildirs under a temporary directory) listens on
127.0.0.10 at the test's smtp_port and delivers its virtual domain
pf.test into Maildirs."""
import os
import pwd
import shutil
import socket
import subprocess
import time

import pytest

from relay_helpers import (SENDER, SENDER_RECORDS, maildir_messages,
                           make_message, msgid_of, server_dir)

POSTFIX = "/usr/sbin/postfix"
PF_IP = "127.0.0.10"


def _wait_listen(ip, port, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection((ip, port), timeout=0.5).close()
            return True
        except OSError:
            time.sleep(0.1)
    return False


class PrivatePostfix:
    def __init__(self, ip, port, domain, users):
        self.ip, self.port, self.domain, self.users = ip, port, domain, users
        # Reached by Postfix's own processes (the queue).
        self.dir = server_dir("sluice-pf-")
        self.conf = os.path.join(self.dir, "etc")
        self.queue = os.path.join(self.dir, "queue")
        self.data = os.path.join(self.dir, "data")
        self.vmail = os.path.join(self.dir, "vmail")
        self.log = os.path.join(self.dir, "maillog")
        self.started = False

    def write(self):
        pw = pwd.getpwnam("postfix")
        for d in (self.conf, self.queue, self.data, self.vmail):
            os.makedirs(d, exist_ok=True)
        os.chown(self.data, pw.pw_uid, pw.pw_gid)
        os.chown(self.vmail, pw.pw_uid, pw.pw_gid)
        with open(os.path.join(self.conf, "vmailbox"), "w") as f:
            for u in self.users:
                f.write("%s@%s %s/\n" % (u, self.domain, u))
        main = """\
compatibility_level = 3.6
queue_directory = {queue}
data_directory = {data}
command_directory = /usr/sbin
daemon_directory = /usr/lib/postfix/sbin
meta_directory = /etc/postfix
shlib_directory = /usr/lib/postfix
mail_owner = postfix
setgid_group = postdrop
myhostname = pf.{domain}
mydomain = {domain}
myorigin = $mydomain
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
relay_domains =
relayhost =
# Postfix wants inet_interfaces on an interface: 127.0.0.1 is, .10 is
# not; the smtpd line in master.cf binds {ip} explicitly.
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
virtual_mailbox_domains = {domain}
virtual_mailbox_base = {vmail}
virtual_mailbox_maps = texthash:{conf}/vmailbox
virtual_uid_maps = static:{uid}
virtual_gid_maps = static:{gid}
smtp_tls_security_level = none
smtpd_tls_security_level = none
biff = no
append_dot_mydomain = no
maillog_file = {log}
maillog_file_prefixes = {dir}
""".format(queue=self.queue, data=self.data, domain=self.domain,
           ip=self.ip, vmail=self.vmail, conf=self.conf, uid=pw.pw_uid,
           gid=pw.pw_gid, log=self.log, dir=self.dir)
        with open(os.path.join(self.conf, "main.cf"), "w") as f:
            f.write(main)
        # Debian's master.cf without chroot, smtpd moved to ip:port.
        out = []
        with open("/etc/postfix/master.cf") as f:
            for line in f:
                w = line.split()
                if line[:1] not in ("#", " ", "\t", "\n") and len(w) >= 8:
                    if w[0] == "smtp" and w[1] == "inet":
                        w[0] = "%s:%d" % (self.ip, self.port)
                    w[4] = "n"
                    line = " ".join(w) + "\n"
                out.append(line)
        with open(os.path.join(self.conf, "master.cf"), "w") as f:
            f.writelines(out)

    def start(self):
        self.write()
        r = subprocess.run([POSTFIX, "-c", self.conf, "check"],
                           capture_output=True, timeout=60)
        assert r.returncode == 0, "postfix check failed: %s%s" % (
            r.stderr.decode(errors="replace"), self.maillog())
        r = subprocess.run([POSTFIX, "-c", self.conf, "start"],
                           capture_output=True, timeout=60)
        self.started = True
        assert r.returncode == 0, "postfix start failed: %s%s" % (
            r.stderr.decode(errors="replace"), self.maillog())
        assert _wait_listen(self.ip, self.port, 15), \
            "postfix not listening on %s:%d\n%s" % (self.ip, self.port,
                                                    self.maillog())

    def maillog(self):
        try:
            with open(self.log, errors="replace") as f:
                return f.read()[-5000:]
        except OSError:
            return "(no maillog)"

    def master_pid(self):
        try:
            with open(os.path.join(self.queue, "pid", "master.pid")) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None

    def stop(self):
        if self.started:
            pid = self.master_pid()
            subprocess.run([POSTFIX, "-c", self.conf, "stop"],
                           capture_output=True, timeout=60)
            deadline = time.monotonic() + 10
            while pid and time.monotonic() < deadline:
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.1)
            else:
                if pid:
                    try:
                        os.kill(pid, 9)
                    except ProcessLookupError:
                        pass
            self.started = False
        shutil.rmtree(self.dir, ignore_errors=True)

    def maildir(self, user):
        return os.path.join(self.vmail, user)


@pytest.fixture
def postfix(mx_port):
    if not os.access(POSTFIX, os.X_OK):
        pytest.fail("postfix is not installed (scripts/install-deps)")
    pf = PrivatePostfix(PF_IP, mx_port, "pf.test", ["user", "other"])
    try:
        pf.start()
        yield pf
    finally:
        pf.stop()


def test_delivery_to_postfix(dns, relay, postfix, capture):
    d = dns(["pf.test MX 10 mx.pf.test", "mx.pf.test A %s" % PF_IP]
            + SENDER_RECORDS)
    sender_mx = capture("127.0.0.9")
    r = relay(dns=d)
    body = "".join("line %d of a message to Postfix\r\n" % i
                   for i in range(50)) + ".dot at start\r\n"
    msg = make_message(SENDER, ["user@pf.test", "other@pf.test"], body=body)
    qid = r.send(["user@pf.test", "other@pf.test", "nobody@pf.test"], msg)
    for u in ("user", "other"):
        got = maildir_messages(postfix.maildir(u), 1, 30,
                               postfix.maillog)
        assert len(got) == 1
        assert msgid_of(got[0]) == msgid_of(msg)
        assert got[0].endswith(body.replace("\r\n", "\n").encode()), \
            got[0][-300:]
        assert b"Delivered-To: %s@pf.test" % u.encode() in got[0]
        assert b"Return-Path: <%s>" % SENDER.encode() in got[0]
    # Postfix refuses nobody@ at RCPT (550 5.1.1): a bounce for it only.
    r.wait_removed(qid, timeout=20)
    b = r.wait_msgs(sender_mx, 1, 15)
    assert b[0].mail_from == ""
    assert b"nobody@pf.test" in b[0].content
    assert b"Final-Recipient: rfc822; user@pf.test" not in b[0].content
    r.wait_all_log(r"%s: to=<user@pf\.test>, relay=mx\.pf\.test\[%s\]"
                   r".*status=sent" % (qid, PF_IP.replace(".", r"\.")))
