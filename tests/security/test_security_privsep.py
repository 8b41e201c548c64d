"""Privilege separation: started as root, sluiced keeps a root parent
that only reloads keys, and runs the listeners and sessions in a child
that is the "sluice" user for good."""
import os
import re
import subprocess

import pytest

import sluice_security_helpers as h

pytestmark = pytest.mark.skipif(
    not h.running_as_root(),
    reason="the privilege drop happens only when sluiced starts as root "
           "(as in CI: make test as root)")


def proc_status(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.strip()
    return out


def listening_inodes(port):
    """Socket inodes listening on 127.0.0.1:port (/proc/net/tcp)."""
    want = "0100007F:%04X" % port
    inodes = set()
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            if fields[1] == want and fields[3] == "0A":     # LISTEN
                inodes.add(fields[9])
    return inodes


def socket_inodes(pid):
    out = set()
    fd_dir = "/proc/%d/fd" % pid
    for fd in os.listdir(fd_dir):
        try:
            target = os.readlink(os.path.join(fd_dir, fd))
        except OSError:
            continue
        m = re.match(r"socket:\[([0-9]+)\]$", target)
        if m:
            out.add(m.group(1))
    return out


def test_child_runs_unprivileged(secd):
    d = secd()
    uid, gid = h.sluice_ids()
    parent = d.daemon_pid()
    child = d.child_pid()
    assert child != parent

    st = proc_status(child)
    assert st["Uid"].split() == [str(uid)] * 4, st["Uid"]
    assert st["Gid"].split() == [str(gid)] * 4, st["Gid"]
    assert st["Groups"].split() == [str(gid)], st["Groups"]
    assert st["CapEff"] == "0000000000000000", st["CapEff"]
    assert st["CapPrm"] == "0000000000000000", st["CapPrm"]
    assert st["CapInh"] == "0000000000000000", st["CapInh"]
    assert st.get("CapAmb", "0000000000000000") == "0000000000000000"
    assert st["NoNewPrivs"] == "1", st["NoNewPrivs"]
    # Every thread of the child (workers, spool, queue, async pool).
    for tid in os.listdir("/proc/%d/task" % child):
        with open("/proc/%d/task/%s/status" % (child, tid)) as f:
            tst = f.read()
        assert re.search(r"^Uid:\s+%d\s+%d\s+%d\s+%d$" % ((uid,) * 4), tst,
                         re.M), "thread %s: %s" % (tid, tst)
        assert re.search(r"^CapEff:\s+0+$", tst, re.M), tst

    pst = proc_status(parent)
    assert pst["Uid"].split()[0] == "0", pst["Uid"]

    # The listening socket is the child's, not the root parent's.
    inodes = listening_inodes(d.port)
    assert inodes, "nothing listens on 127.0.0.1:%d" % d.port
    assert inodes <= socket_inodes(child), \
        "listener %s not held by the child %d" % (inodes, child)
    assert not inodes & socket_inodes(parent), \
        "the root parent %d holds the listener %s" % (parent, inodes)
    d.wait_log(r"running as sluice \(uid %d, gid %d\)" % (uid, gid))


def test_spool_owned_by_sluice(secd):
    d = secd()
    uid, gid = h.sluice_ids()
    with h.raw(d) as c:
        c.ehlo()
        qid = c.send_mail("a@example.org", ["x@external.test"],
                          h.message_text())
        c.quit()
    path = os.path.join(d.spool_dir, "queue", qid)
    st = os.stat(path)
    assert (st.st_uid, st.st_gid) == (uid, gid), \
        "%s is owned by %d:%d" % (path, st.st_uid, st.st_gid)
    assert not st.st_mode & 0o007, "%s is open to others: %o" % (
        path, st.st_mode)
    for sub in ("", "queue", "incoming"):
        p = os.path.join(d.spool_dir, sub)
        if os.path.isdir(p):
            assert os.stat(p).st_uid == uid, p


def run_refused_config(sluice_build, tmp_path, **overrides):
    d = h.Sluiced(sluice_build, tmp_path / "refused", **overrides)
    p = subprocess.run([d.binary, "-d", "-f", d.config_path],
                       capture_output=True, text=True, timeout=20,
                       cwd=d.workdir, stdin=subprocess.DEVNULL)
    return d, p


def test_user_root_refused(sluice_build, tmp_path):
    d, p = run_refused_config(sluice_build, tmp_path, user="root")
    assert p.returncode != 0, p
    assert "user root is root: refusing to run sessions as root" in \
        p.stderr, p.stderr
    # Nothing was left listening.
    assert not listening_inodes(d.port)


def test_unknown_user_refused(sluice_build, tmp_path):
    d, p = run_refused_config(sluice_build, tmp_path,
                              user="no_such_user_x")
    assert p.returncode != 0, p
    assert "user no_such_user_x: no such user" in p.stderr, p.stderr
