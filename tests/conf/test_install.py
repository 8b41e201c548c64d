"""`make install` creates nothing world-writable and gives the spool to
the unprivileged user (docs/security.md)."""
import os
import pwd
import stat
import subprocess

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))


def test_install_tree(tmp_path):
    dest = tmp_path / "root"
    r = subprocess.run(["make", "-s", "-C", REPO, "install",
                        "DESTDIR=%s" % dest], capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    sbin = dest / "usr/local/sbin"
    for prog in ("sluiced", "sluicectl"):
        st = os.stat(sbin / prog)
        assert stat.S_IMODE(st.st_mode) == 0o755
    conf = dest / "etc/sluice/sluice.conf"
    assert stat.S_IMODE(os.stat(conf).st_mode) == 0o644
    assert '"/var/spool/sluice"' in conf.read_text()
    spool = dest / "var/spool/sluice"
    st = os.stat(spool)
    assert stat.S_IMODE(st.st_mode) == 0o700
    assert st.st_uid == pwd.getpwnam("sluice").pw_uid
    for base, dirs, files in os.walk(dest):
        for name in dirs + files:
            p = os.path.join(base, name)
            mode = os.lstat(p).st_mode
            if stat.S_ISLNK(mode):
                continue
            assert not mode & stat.S_IWOTH, "%s is world-writable" % p
