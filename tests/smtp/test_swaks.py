"""Interoperability with swaks, a real third-party SMTP client."""
import re
import subprocess
import uuid


SWAKS = "/usr/bin/swaks"


def swaks_help():
    p = subprocess.run([SWAKS, "--help"], capture_output=True, timeout=30)
    return (p.stdout + p.stderr).decode("utf-8", "replace")


def run_swaks(daemon, *extra):
    token = uuid.uuid4().hex
    cmd = [SWAKS, "--server", "%s:%d" % (daemon.host, daemon.port),
           "--to", "a@b.example", "--from", "c@d.example",
           "--helo", "swaks.example", "--timeout", "10",
           "--header", "Subject: swaks " + token,
           "--body", "body " + token] + list(extra)
    p = subprocess.run(cmd, capture_output=True, timeout=60,
                       stdin=subprocess.DEVNULL)
    out = (p.stdout + p.stderr).decode("utf-8", "replace")
    assert p.returncode == 0, "swaks failed (%d):\n%s" % (p.returncode, out)
    m = re.findall(r"<-\s+250 2\.0\.0 Ok: queued as ([0-9A-Z]+)", out)
    assert len(m) == 1, out
    qid = m[0]
    msg = daemon.message(qid)
    assert msg.sender == "c@d.example"
    assert msg.rcpt_addresses == ["a@b.example"]
    assert msg.env["helo"] == "swaks.example"
    assert ("Subject: swaks %s\r\n" % token).encode() in msg.body
    assert ("body %s\r\n" % token).encode() in msg.body
    assert b"\r\n\r\n" in msg.body
    assert daemon.queue_ids() == [qid]
    return out, msg


def test_swaks_plain(daemon):
    run_swaks(daemon)


def test_swaks_pipeline(daemon):
    out, _ = run_swaks(daemon, "--pipeline")
    # swaks really pipelined: MAIL and RCPT went out in one group.
    assert re.search(r"~> MAIL FROM:<c@d\.example>\s*\n\s*~> RCPT TO:<a@b\.example>",
                     out) or re.search(r"-> MAIL FROM:<c@d\.example>\s*\n\s*"
                                       r"-> RCPT TO:<a@b\.example>\s*\n\s*"
                                       r"-> DATA", out), out


def test_swaks_null_sender_and_8bit_body(daemon):
    token = uuid.uuid4().hex
    p = subprocess.run([SWAKS, "--server", "%s:%d" % (daemon.host, daemon.port),
                        "--to", "x@y.example", "--from", "<>",
                        "--timeout", "10", "--body",
                        "caf\u00e9 " + token],
                       capture_output=True, timeout=60,
                       stdin=subprocess.DEVNULL)
    out = (p.stdout + p.stderr).decode("utf-8", "replace")
    assert p.returncode == 0, out
    qid = re.search(r"queued as ([0-9A-Z]+)", out).group(1)
    m = daemon.message(qid)
    assert m.sender == ""
    assert ("caf\u00e9 " + token).encode() in m.body
