"""Many concurrent sessions, and a SIGKILL in the middle of them."""
import base64
import hashlib
import json
import os
import random
import re
import smtplib
import threading
import time

from sluice_test_helpers import spool

QUEUED = re.compile(rb"^2\.0\.0 Ok: queued as ([0-9A-Z]+)$")


def make_message(rng, conn, seq):
    """A unique message of 200 B .. 20 KB of printable text, CRLF line
    endings, some lines starting with dots (for the stuffing)."""
    size = rng.randint(200, 20000)
    head = ("From: load%d@example.com\r\nTo: sink@example.com\r\n"
            "Subject: load %d/%d\r\nMessage-ID: <%d.%d.%d@load.example>\r\n"
            "\r\n" % (conn, conn, seq, conn, seq, rng.getrandbits(48))).encode()
    text = base64.b85encode(rng.randbytes(size))[:max(0, size - len(head))]
    lines = []
    pos = 0
    while pos < len(text):
        n = rng.randint(1, 120)
        line = text[pos:pos + n]
        if rng.random() < 0.05:
            line = b"." + line
        lines.append(line)
        pos += n
    return head + b"\r\n".join(lines) + b"\r\n"


def sha(b):
    return hashlib.sha256(b).hexdigest()


def send_one(s, msg, conn):
    code, resp = s.mail("load%d@example.com" % conn)
    assert code == 250, (code, resp)
    code, resp = s.rcpt("sink@example.com")
    assert code == 250, (code, resp)
    code, resp = s.data(msg)
    assert code == 250, (code, resp)
    m = QUEUED.match(resp)
    assert m, resp
    return m.group(1).decode()


def test_load_2000_messages(daemon):
    nconn, per_conn = 20, 100
    sent = {}                # qid -> sha256
    errors = []
    lock = threading.Lock()

    def worker(conn):
        rng = random.Random(1000 + conn)
        try:
            s = smtplib.SMTP(daemon.host, daemon.port, timeout=30)
            s.ehlo("load%d.example" % conn)
            for seq in range(per_conn):
                msg = make_message(rng, conn, seq)
                qid = send_one(s, msg, conn)
                with lock:
                    assert qid not in sent, "queue id %s reused" % qid
                    sent[qid] = sha(msg)
            s.quit()
        except BaseException as e:     # reported below
            with lock:
                errors.append("conn %d: %r" % (conn, e))

    t0 = time.monotonic()
    threads = [threading.Thread(target=worker, args=(i,), daemon=True)
               for i in range(nconn)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 240
    for t in threads:
        t.join(max(0.1, deadline - time.monotonic()))
    alive = sum(t.is_alive() for t in threads)
    elapsed = time.monotonic() - t0
    assert not alive, "%d senders still running after 240 s" % alive
    assert not errors, errors[:5]
    assert len(sent) == nconn * per_conn
    print("sent %d messages in %.1f s (%.0f/s)" % (len(sent), elapsed,
                                                   len(sent) / elapsed))
    daemon.assert_alive()

    on_disk = set(daemon.queue_ids())
    missing = set(sent) - on_disk
    assert not missing, "%d acknowledged messages missing: %s" % (
        len(missing), sorted(missing)[:10])
    assert on_disk == set(sent), sorted(on_disk - set(sent))[:10]
    bad = []
    for qid, digest in sent.items():
        m = daemon.message(qid)
        if m.body_sha256() != digest or m.id != qid:
            bad.append(qid)
    assert not bad, "%d messages differ from what was sent: %s" % (
        len(bad), bad[:10])
    assert daemon.incoming_ids() == []

    p = daemon.ctl("queue", "list", "--json", timeout=120)
    assert p.returncode == 0, p.stderr.decode()[-2000:]
    listed = json.loads(p.stdout)
    assert len(listed) == len(sent)
    assert {e["id"] for e in listed} == set(sent)
    assert all(e["sender"].startswith("load") and
               [r["address"] for r in e["recipients"]] == ["sink@example.com"]
               for e in listed)


def test_kill9_during_load(daemon):
    nconn = 20
    acked = {}               # qid -> sha256
    lock = threading.Lock()
    stop = threading.Event()
    unexpected = []

    def worker(conn):
        rng = random.Random(5000 + conn)
        seq = 0
        try:
            s = smtplib.SMTP(daemon.host, daemon.port, timeout=10)
            s.ehlo("crash%d.example" % conn)
            while not stop.is_set():
                msg = make_message(rng, conn, seq)
                seq += 1
                qid = send_one(s, msg, conn)
                with lock:
                    acked[qid] = sha(msg)
        except (smtplib.SMTPException, OSError, AssertionError):
            # Expected once the daemon is killed.  Before that, an error
            # is a failure of its own.
            if not killed.is_set():
                import traceback
                unexpected.append("conn %d: %s" % (conn,
                                                   traceback.format_exc()))

    killed = threading.Event()
    threads = [threading.Thread(target=worker, args=(i,), daemon=True)
               for i in range(nconn)]
    for t in threads:
        t.start()
    time.sleep(2.0)
    with lock:
        before_kill = len(acked)
    killed.set()
    daemon.kill9()
    stop.set()
    for t in threads:
        t.join(30)
    assert not any(t.is_alive() for t in threads), "senders hang after kill"
    assert not unexpected, unexpected[:3]
    assert before_kill > 0, "no message acknowledged in 2 s of load"

    daemon.start()
    # Recovery: nothing left in incoming, every queue file complete.
    assert daemon.incoming_ids() == []
    on_disk = daemon.queue_ids()
    for qid in on_disk:
        m = spool.parse_file(os.path.join(daemon.spool_dir, "queue", qid))
        assert m.id == qid
    missing = sorted(set(acked) - set(on_disk))
    assert not missing, "%d of %d acknowledged messages lost: %s" % (
        len(missing), len(acked), missing[:10])
    bad = [qid for qid, d in acked.items()
           if daemon.message(qid).body_sha256() != d]
    assert not bad, "acknowledged messages corrupted: %s" % bad[:10]
    # At most the messages in flight at the kill were committed without
    # an acknowledgement.
    assert len(on_disk) - len(acked) <= nconn, (len(on_disk), len(acked))
    print("acked %d, on disk %d" % (len(acked), len(on_disk)))

    # The restarted daemon works and lists everything.
    with daemon.connect() as c:
        c.ehlo()
        new = c.send_mail("a@example.com", ["b@example.com"], b"after\r\n")
        c.quit()
    assert new not in on_disk
    p = daemon.ctl("queue", "list", "--json", timeout=120)
    assert p.returncode == 0, p.stderr.decode()[-2000:]
    assert {e["id"] for e in json.loads(p.stdout)} == set(on_disk) | {new}
