"""`sluicectl -p FILE user add|passwd|del|list`: the SMTP AUTH password
file as the daemon reads it (Dovecot passwd-file, yescrypt hashes).

Passwords go in on stdin, never in argv.  The stored hashes are checked
with libcrypt itself (ctypes), so the test needs no Python crypt module.

SLUICE_BUILD names the build directory (default: build/ at the top of the
tree this file lives in).
"""
import ctypes
import ctypes.util
import os
import pathlib
import re
import stat
import subprocess

import pytest

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[1]
BUILD = pathlib.Path(os.environ.get("SLUICE_BUILD", ROOT / "build"))
SLUICECTL = BUILD / "sluicectl"

_libcrypt = ctypes.CDLL(ctypes.util.find_library("crypt") or "libcrypt.so.1")
_libcrypt.crypt.restype = ctypes.c_char_p
_libcrypt.crypt.argtypes = [ctypes.c_char_p, ctypes.c_char_p]

HASH_LINE = re.compile(r"^alice:(\$y\$[./0-9A-Za-z]+\$[./0-9A-Za-z]+"
                       r"\$[./0-9A-Za-z]{43})$")


def ctl(*args, stdin=""):
    if not SLUICECTL.exists():
        pytest.fail(f"{SLUICECTL} not built; run make first")
    return subprocess.run([str(SLUICECTL), *args], input=stdin,
                          capture_output=True, text=True, timeout=30,
                          cwd=ROOT)


def verify(pw, hashed):
    out = _libcrypt.crypt(pw.encode(), hashed.encode())
    return out is not None and out.decode() == hashed


def alice_hash(path):
    lines = [l for l in path.read_text().splitlines()
             if l.startswith("alice:")]
    assert len(lines) == 1, path.read_text()
    m = HASH_LINE.match(lines[0])
    assert m, lines[0]
    return m.group(1)


@pytest.fixture
def pwfile(tmp_path):
    return tmp_path / "passwd"


def test_add_list_passwd_del(pwfile):
    r = ctl("-p", str(pwfile), "user", "add", "alice", stdin="s3cret pw\n")
    assert r.returncode == 0, r.stderr
    assert "s3cret" not in r.stdout + r.stderr
    h1 = alice_hash(pwfile)
    assert verify("s3cret pw", h1)
    assert not verify("s3cret", h1)
    assert stat.S_IMODE(pwfile.stat().st_mode) == 0o640

    r = ctl("-p", str(pwfile), "user", "add", "bob", stdin="bobpw")
    assert r.returncode == 0, r.stderr  # no newline at EOF: fine
    r = ctl("-p", str(pwfile), "user", "list")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "alice\nbob\n"

    r = ctl("-p", str(pwfile), "user", "passwd", "alice", stdin="n3w\n")
    assert r.returncode == 0, r.stderr
    h2 = alice_hash(pwfile)
    assert h2 != h1 and verify("n3w", h2)
    assert stat.S_IMODE(pwfile.stat().st_mode) == 0o640

    r = ctl("-p", str(pwfile), "user", "del", "alice")
    assert r.returncode == 0, r.stderr
    assert "alice" not in pwfile.read_text()
    r = ctl("-p", str(pwfile), "user", "list")
    assert r.stdout == "bob\n"
    # No temp files left next to it.
    assert sorted(p.name for p in pwfile.parent.iterdir()) == ["passwd"]


def test_other_lines_kept(pwfile):
    head = "# users for SMTP AUTH\n\n#old:$6$x$y\n"
    pwfile.write_text(head)
    pwfile.chmod(0o640)
    assert ctl("-p", str(pwfile), "user", "add", "alice",
               stdin="pw\n").returncode == 0
    text = pwfile.read_text()
    assert text.startswith(head)
    assert HASH_LINE.match(text[len(head):].rstrip("\n"))
    assert text.endswith("\n")


def test_errors(pwfile):
    p = str(pwfile)
    r = ctl("-p", p, "user", "passwd", "alice", stdin="pw\n")
    assert r.returncode == 1 and "does not exist" in r.stderr
    r = ctl("-p", p, "user", "add", "alice", stdin="\n")
    assert r.returncode == 1 and "empty password" in r.stderr
    r = ctl("-p", p, "user", "add", "alice", stdin="")
    assert r.returncode == 1
    assert not pwfile.exists()
    r = ctl("-p", p, "user", "add", "bad:name", stdin="pw\n")
    assert r.returncode == 1 and "invalid user name" in r.stderr
    r = ctl("-p", p, "user", "add", "alice", stdin="x" * 256 + "\n")
    assert r.returncode == 1
    assert ctl("-p", p, "user", "add", "alice",
               stdin="x" * 255 + "\n").returncode == 0
    r = ctl("-p", p, "user", "add", "alice", stdin="pw\n")
    assert r.returncode == 1 and "already exists" in r.stderr
    r = ctl("-p", p, "user", "del", "nobody")
    assert r.returncode == 1 and "does not exist" in r.stderr
    # A file the daemon would refuse is reported with its line.
    pwfile.write_text(pwfile.read_text() + "bob:{PLAIN}pw\n")
    r = ctl("-p", p, "user", "list")
    assert r.returncode == 1
    assert f"{p}:2: user bob: unsupported password scheme" in r.stderr


def test_usage():
    assert ctl("user").returncode == 2
    assert ctl("user", "add").returncode == 2
    assert ctl("user", "list", "extra").returncode == 2
    assert ctl("user", "frob", "x").returncode == 2
