"""A full disk: sluiced answers 452 4.3.1 and loses nothing it already
acknowledged.  The spool is put on a tiny tmpfs (the tests run as root,
as CI does)."""
import os
import subprocess


from sluice_test_helpers.sluiced import Sluiced

TMPFS_SIZE = "256k"


def mount_tmpfs(path):
    os.makedirs(path, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o",
                        "size=%s,mode=0755" % TMPFS_SIZE, "tmpfs", path],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, "cannot mount a tmpfs (needs root): %s" % r.stderr


def test_full_disk_452_and_nothing_lost(sluice_build, tmp_path):
    d = Sluiced(sluice_build, tmp_path / "d", max_message_size="1M")
    mount_tmpfs(d.spool_dir)
    try:
        d.start()
        body = ("Subject: fill\r\n\r\n" + "x" * 70 + "\r\n") * 200  # ~14 KB
        accepted, refused = [], None
        for i in range(40):
            with d.smtp() as s:
                code, msg = s.mail("a@example.com")
                assert code == 250
                code, msg = s.rcpt("b@example.com")
                assert code == 250
                code, msg = s.data(body.encode())
            if code == 250:
                accepted.append(msg.decode().split()[-1])
                continue
            refused = (code, msg.decode())
            break
        assert refused is not None, "the 256 KiB spool never filled up"
        assert refused[0] in (452, 451), refused
        assert refused[1].startswith("4.3."), refused
        assert accepted, "nothing was accepted before the disk filled"
        # Every acknowledged message is still complete in the spool (the
        # smarthost is unreachable, so nothing was delivered yet).
        for qid in accepted:
            assert d.message(qid).body.endswith(b"x" * 70 + b"\r\n"), qid
        assert d.incoming_ids() == [], "a refused message was left behind"
        d.assert_alive()
        # The session and the daemon go on: a small message fits again
        # once space is freed.
        os.unlink(os.path.join(d.spool_dir, "queue", accepted[-1]))
        with d.smtp() as s:
            assert s.sendmail("a@example.com", ["b@example.com"],
                              b"Subject: small\r\n\r\nok\r\n") == {}
    finally:
        d.stop(check=False)
        subprocess.run(["umount", "-l", d.spool_dir], timeout=30)
