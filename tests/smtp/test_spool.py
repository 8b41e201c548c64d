"""Spool files, recovery at start, sluicectl and the log."""
import json
import os
import re
import time

from sluice_test_helpers import spool
from sluice_test_helpers.smtpclient import assert_reply, queued_id


def send(daemon, sender="a@example.com", rcpts=("b@example.com",),
         body=b"Subject: s\r\n\r\nbody\r\n", quit=True):
    with daemon.connect() as c:
        c.ehlo()
        qid = c.send_mail(sender, list(rcpts), body)
        if quit:
            c.quit()
    return qid


def test_spool_file_layout(daemon):
    qid = send(daemon)
    assert spool.ID_RE.match(qid)
    path = os.path.join(daemon.spool_dir, "queue", qid)
    raw = open(path, "rb").read()
    assert len(raw[:40]) == 40 and raw[39:40] == b"\n"
    assert re.match(rb"^SLUICE1 [0-9]{10} [0-9]{20}\n$", raw[:40]), raw[:40]
    m = spool.parse_file(path)
    assert raw[m.env_end - 2:m.env_end] == b"\n\n"
    assert m.message.startswith(b"Received: from ")
    assert m.body == b"Subject: s\r\n\r\nbody\r\n"
    # No delivery state yet: the message is the end of the file, or
    # only well-formed state records follow.
    for line in m.trailer.splitlines():
        assert re.match(rb"^state [0-9]+ (pending|delivered|failed) ", line), \
            m.trailer
    assert daemon.incoming_ids() == []


def test_queue_ids_unique(daemon):
    ids = []
    with daemon.connect() as c:
        c.ehlo()
        for i in range(30):
            ids.append(c.send_mail("a@example.com", ["b@example.com"],
                                   b"m%d\r\n" % i))
    assert len(set(ids)) == 30
    assert sorted(daemon.queue_ids()) == sorted(ids)
    for i, qid in enumerate(ids):
        assert daemon.message(qid).body == b"m%d\r\n" % i


def test_sluicectl_queue_list_json(daemon):
    q1 = send(daemon, "s1@example.com", ["r1@example.com"])
    q2 = send(daemon, "", ["r2@example.com", "r3@example.com"],
              body=b"x" * 100 + b"\r\n")
    p = daemon.ctl("queue", "list", "--json")
    assert p.returncode == 0, p.stderr.decode()
    entries = json.loads(p.stdout)
    assert isinstance(entries, list)
    by_id = {e["id"]: e for e in entries}
    assert set(by_id) == {q1, q2}, entries
    now = time.time()
    for qid, sender, rcpts in ((q1, "s1@example.com", ["r1@example.com"]),
                               (q2, "", ["r2@example.com", "r3@example.com"])):
        e = by_id[qid]
        m = daemon.message(qid)
        assert e["sender"] == sender, e
        assert isinstance(e["arrival"], (int, float)), e
        assert abs(e["arrival"] - now) < 120, e
        assert abs(e["arrival"] - float(m.env["arrival"])) < 1.5, e
        assert e["size"] == m.msg_len, (e, m.msg_len)
        assert [r["address"] for r in e["recipients"]] == rcpts, e
        for r in e["recipients"]:
            assert r["state"] == "pending", e
            assert "reply" in r, e


def test_sluicectl_queue_list_table(daemon):
    q1 = send(daemon, "s1@example.com", ["r1@example.com"])
    p = daemon.ctl("queue", "list")
    assert p.returncode == 0, p.stderr.decode()
    out = p.stdout.decode()
    assert q1 in out and "s1@example.com" in out and "r1@example.com" in out, \
        out
    # Human output is not JSON.
    assert not out.lstrip().startswith("[")


def test_sluicectl_empty_queue(daemon):
    p = daemon.ctl("queue", "list", "--json")
    assert p.returncode == 0, p.stderr.decode()
    assert json.loads(p.stdout) == []


def test_log_lines(daemon):
    qid = send(daemon, "sender@example.com", ["rcpt@example.com"])
    m = daemon.message(qid)
    disc = daemon.wait_log(r"disconnect from unknown\[127\.0\.0\.1\] "
                           r"ehlo=1 mail=1 rcpt=1 data=1 quit=1 commands=5$")
    lines = daemon.log_lines()
    def index(rx):
        for i, line in enumerate(lines):
            if re.search(rx, line):
                return i
        raise AssertionError("no log line matches %r:\n%s"
                             % (rx, "\n".join(lines)))
    i_client = index(r"\b%s: client=unknown\[127\.0\.0\.1\]$" % qid)
    i_from = index(r"\b%s: from=<sender@example\.com>, size=([0-9]+), "
                   r"nrcpt=1 \(queue active\)$" % qid)
    size = int(re.search(r"size=([0-9]+)", lines[i_from]).group(1))
    assert size in (m.msg_len, len(m.body)), \
        "size=%d, message %d, data %d" % (size, m.msg_len, len(m.body))
    # connect ... client= ... from= ... disconnect, in that order.
    i_conn = max(i for i, l in enumerate(lines[:i_client])
                 if re.search(r"connect from unknown\[127\.0\.0\.1\]$", l)
                 and "disconnect" not in l)
    i_disc = index(re.escape(disc.group(0)) + "$")
    assert i_conn < i_client < i_from < i_disc


def test_log_null_sender_and_counts(daemon):
    with daemon.connect() as c:
        c.ehlo()
        c.cmd("BOGUS")
        qid = c.send_mail("", ["r1@example.com", "r2@example.com"], b"x\r\n")
        c.quit()
    daemon.wait_log(r"\b%s: from=<>, size=[0-9]+, nrcpt=2 \(queue active\)$"
                    % qid)
    daemon.wait_log(r"disconnect from unknown\[127\.0\.0\.1\] ehlo=1 mail=1 "
                    r"rcpt=2 data=1 quit=1 unknown=0/1 commands=6/7$")


def test_restart_keeps_queue(daemon):
    ids = [send(daemon, body=b"n%d\r\n" % i) for i in range(5)]
    daemon.restart()
    assert sorted(daemon.queue_ids()) == sorted(ids)
    for i, qid in enumerate(ids):
        assert daemon.message(qid).body == b"n%d\r\n" % i
    # New ids after a restart do not collide with the old ones.
    new = send(daemon)
    assert new not in ids
    assert len(daemon.queue_ids()) == 6


def test_recovery_removes_partial_files(daemon):
    good = send(daemon, body=b"good\r\n")
    daemon.stop()
    qdir = os.path.join(daemon.spool_dir, "queue")
    idir = os.path.join(daemon.spool_dir, "incoming")
    os.makedirs(idir, exist_ok=True)
    raw = open(os.path.join(qdir, good), "rb").read()
    m = spool.parse_file(os.path.join(qdir, good))
    planted = {
        # Header never filled in.
        "AAAAPARTIAL1": b"SLUICE1 " + b" " * 31 + b"\n" + raw[40:],
        # Header says more than there is.
        "AAAAPARTIAL2": raw[:m.env_end + m.msg_len - 1],
        # Only a part of the header.
        "AAAAPARTIAL3": raw[:20],
        "AAAAPARTIAL4": b"",
    }
    for name, data in planted.items():
        with open(os.path.join(qdir, name), "wb") as f:
            f.write(data)
    for name in ("AAAAINCOMING1", "AAAAINCOMING2"):
        with open(os.path.join(idir, name), "wb") as f:
            f.write(raw[:100])
    daemon.start()
    assert daemon.queue_ids() == [good]
    assert daemon.incoming_ids() == []
    for name in planted:
        daemon.wait_log(r"\b%s: removed partial spool file" % name)
    assert daemon.message(good).body == b"good\r\n"
    p = daemon.ctl("queue", "list", "--json")
    assert p.returncode == 0
    assert [e["id"] for e in json.loads(p.stdout)] == [good]


def test_config_check_mode(daemon, tmp_path):
    import subprocess
    p = subprocess.run([daemon.binary, "-n", "-f", daemon.config_path],
                       capture_output=True, timeout=30)
    assert p.returncode == 0, p.stderr.decode()
    bad = tmp_path / "bad.conf"
    bad.write_text(daemon.config_text().replace("max_recipients = 1000;",
                                                "max_recipients = 5;"))
    p = subprocess.run([daemon.binary, "-n", "-f", str(bad)],
                       capture_output=True, timeout=30)
    assert p.returncode != 0, "max_recipients = 5 (< 100) passed the check"


def test_sluicectl_json_escaping(daemon):
    """Addresses with quotes, backslashes and UTF-8 must come out of
    sluicectl as valid JSON holding exactly the stored address."""
    sender = '"we\\\\ird \\"q\\" \\\\"@example.com'
    rcpts = ['"a\\"b"@example.com', "\u00fc\u00f1\u00ee@example.com",
             '"back\\\\slash"@example.com']
    with daemon.connect() as c:
        c.ehlo()
        assert_reply(c.cmd("MAIL FROM:<%s> SMTPUTF8" % sender), 250)
        for r in rcpts:
            assert_reply(c.cmd("RCPT TO:<%s>" % r), 250)
        assert_reply(c.cmd("DATA"), 354)
        c.send(b"x\r\n.\r\n")
        qid = queued_id(c.read_reply())
    m = daemon.message(qid)
    assert m.sender == sender and m.rcpt_addresses == rcpts
    p = daemon.ctl("queue", "list", "--json")
    assert p.returncode == 0, p.stderr.decode()
    try:
        entries = json.loads(p.stdout.decode("utf-8"))
    except ValueError as e:
        raise AssertionError("sluicectl printed invalid JSON (%s): %r"
                             % (e, p.stdout))
    assert entries[0]["sender"] == sender
    assert [r["address"] for r in entries[0]["recipients"]] == rcpts


def test_log_escapes_untrusted_text(daemon):
    """Nothing a client sends may put raw control characters into the
    log (log forging, terminal escapes)."""
    with daemon.connect() as c:
        c.send(b"EHLO evil\x1b[31m.example\r\n")
        c.read_reply()
        c.send(b"EHLO ok.example\r\n")
        c.read_reply()
        c.send(b"MAIL FROM:<a\x1b[2J@example.com>\r\n")
        c.read_reply()
        c.send(b"MAIL FROM:<\"a\x07b\"@example.com>\r\n")
        c.read_reply()
        c.send(b"MAIL FROM:<ok@example.com>\r\n")
        c.read_reply()
        c.send(b"RCPT TO:<x\x1bforged: line@example.com>\r\n")
        c.read_reply()
        c.send(b"RCPT TO:<\xff\xfe@example.com>\r\n")
        c.read_reply()
        c.send(b"\x1b]0;title\x07\r\n")
        c.read_reply()
        c.quit()
    daemon.wait_log(r"disconnect from unknown\[127\.0\.0\.1\]")
    raw = open(daemon.log_path, "rb").read()
    bad = sorted({b for b in raw if b < 0x20 and b not in (0x0a, 0x09)})
    assert not bad, "raw control characters %s in the log:\n%r" % (bad, raw)


def test_second_instance_refused(daemon):
    """A second sluiced on the same config (same address, same spool)
    must not start: its recovery would delete the running instance's
    incoming/ files, and the kernel would split connections between
    the two."""
    import subprocess
    log = open(os.path.join(daemon.workdir, "second.log"), "wb")
    p = subprocess.Popen([daemon.binary, "-d", "-f", daemon.config_path],
                         stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    try:
        rc = p.wait(5)
    except subprocess.TimeoutExpired:
        rc = None
    finally:
        if p.poll() is None:
            p.terminate()
            p.wait(10)
        log.close()
    text = open(os.path.join(daemon.workdir, "second.log"), "rb").read()
    assert rc is not None and rc != 0, \
        "a second sluiced started on the same address and spool:\n%s" \
        % text.decode("utf-8", "replace")
    daemon.assert_alive()


def test_sigterm_with_sessions_open(daemon):
    """SIGTERM while sessions are idle or in the middle of DATA: a clean,
    prompt exit; acknowledged mail intact; no incoming file after the
    restart."""
    done = send(daemon, body=b"done\r\n")
    idle = daemon.connect()
    idle.ehlo()
    busy = daemon.connect()
    busy.ehlo()
    assert_reply(busy.cmd("MAIL FROM:<a@example.com>"), 250)
    assert_reply(busy.cmd("RCPT TO:<b@example.com>"), 250)
    assert_reply(busy.cmd("DATA"), 354)
    busy.send(b"half a message\r\n")
    t = time.monotonic()
    daemon.stop()              # fails on a non-zero exit or a timeout
    assert time.monotonic() - t < 10
    for c in (idle, busy):
        replies = c.read_until_closed()
        assert all(r.code == 421 for r in replies), replies
        c.close()
    daemon.start()
    assert daemon.queue_ids() == [done]
    assert daemon.incoming_ids() == []
    assert daemon.message(done).body == b"done\r\n"
