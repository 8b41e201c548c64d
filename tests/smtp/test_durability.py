"""'250 means durable': the spool file is in queue/ and flushed to disk
before the client hears 250 (docs/spool.md, group commit).  Checked on
the system calls of the real daemon, traced with strace."""
import os
import re
import threading

import pytest

from sluice_test_helpers.sluiced import Sluiced

STRACE = "/usr/bin/strace"
SYNC_CALLS = ("syncfs", "fsync", "fdatasync")

_LINE = re.compile(r"^(\d+)\s+(.*)$")
_CALL = re.compile(r"^([a-z0-9_]+)\((.*)$")
_RESUMED = re.compile(r"^<\.\.\. ([a-z0-9_]+) resumed>(.*)$")
_RESULT = re.compile(r"\)\s+=\s+(-?\d+|\?)")


def parse_strace(path):
    """[{name, start, end, text, result}] in trace order; start/end are
    line numbers of the call's entry and of its completion."""
    calls, pending = [], {}
    with open(path, errors="replace") as f:
        for i, raw in enumerate(f):
            m = _LINE.match(raw.rstrip("\n"))
            if not m:
                continue
            pid, rest = int(m.group(1)), m.group(2)
            r = _RESUMED.match(rest)
            if r:
                c = pending.pop((pid, r.group(1)), None)
                if c is not None:
                    c["end"] = i
                    c["text"] += r.group(2)
                    res = _RESULT.search(r.group(2))
                    c["result"] = res.group(1) if res else None
                continue
            c = _CALL.match(rest)
            if not c:
                continue
            call = {"name": c.group(1), "start": i, "end": None,
                    "text": rest, "pid": pid, "result": None}
            calls.append(call)
            if rest.endswith("<unfinished ...>"):
                pending[(pid, call["name"])] = call
            else:
                call["end"] = i
                res = _RESULT.search(rest)
                call["result"] = res.group(1) if res else None
    return calls


@pytest.mark.parametrize("mode", ["syncfs", "fsync"])
def test_sync_before_250(sluice_build, tmp_path, request, mode):
    if not os.access(STRACE, os.X_OK):
        pytest.fail("%s is not installed (Debian package strace, from "
                    "scripts/install-deps): the durability order cannot be "
                    "observed" % STRACE)
    trace = str(tmp_path / "trace")
    # LeakSanitizer cannot run under ptrace (ASan builds).
    asan = os.environ.get("ASAN_OPTIONS", "")
    d = Sluiced(sluice_build, tmp_path / "d", spool_sync=mode,
                env={"ASAN_OPTIONS": (asan + ":" if asan else "")
                     + "detect_leaks=0"},
                wrapper=[STRACE, "-f", "-qq", "-s", "256", "-o", trace,
                         "-e", "trace=rename,renameat,renameat2,link,linkat,"
                         "syncfs,fsync,fdatasync,sync,write,writev,"
                         "sendmsg,sendto"])
    request.node._sluiced_daemons = [d]
    d.start(timeout=30)
    try:
        ids = []
        lock = threading.Lock()
        errors = []

        def sender(n):
            try:
                with d.connect() as c:
                    c.ehlo()
                    for j in range(4):
                        qid = c.send_mail("a@example.com", ["b@example.com"],
                                          b"msg %d %d\r\n" % (n, j))
                        with lock:
                            ids.append(qid)
                    c.quit()
            except Exception as e:      # reported below
                errors.append(repr(e))

        threads = [threading.Thread(target=sender, args=(n,))
                   for n in range(5)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not errors, errors
        assert len(ids) == 20
    finally:
        d.stop()
    calls = parse_strace(trace)
    assert calls, "empty trace"
    for qid in ids:
        renames = [c for c in calls
                   if c["name"].startswith(("rename", "link")) and qid in c["text"]
                   and c["result"] == "0"]
        assert renames, "%s: no rename/link into queue/ seen" % qid
        moved = renames[-1]["end"]
        replies = [c for c in calls if "queued as " + qid in c["text"]]
        assert len(replies) == 1, "%s: reply writes %s" % (qid, replies)
        told = replies[0]["start"]
        assert moved < told, "%s: 250 sent before the rename" % qid
        syncs = [c for c in calls if c["name"] in SYNC_CALLS
                 and c["result"] == "0" and c["end"] is not None
                 and moved < c["start"] and c["end"] < told]
        names = {c["name"] for c in syncs}
        if mode == "syncfs":
            assert "syncfs" in names, \
                "%s: no syncfs between the rename and the 250 (%s)" % (
                    qid, names)
        else:
            assert "fdatasync" in names, \
                "%s: no fdatasync between the rename and the 250" % qid
            assert "fsync" in names, \
                "%s: queue/ not fsync()ed between the rename and the 250" \
                % qid
