"""Tests of the delivery client (src/smtp_client.c) through
tests/tools/client_drive.c against the capture server in
tests/helpers/capture_smtp.py.

SLUICE_BUILD (absolute) selects the build directory holding client_drive;
default <repo>/build.
"""
import json
import os
import socket
import subprocess
import threading
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
from sluice_test_helpers import capture_smtp  # loaded by tests/conftest.py

SANITIZER_MARKS = ("ERROR: AddressSanitizer", "runtime error:",
                   "ERROR: LeakSanitizer")


def build_dir():
    return os.environ.get("SLUICE_BUILD") or os.path.join(REPO, "build")


def pytest_report_header(config):
    return "client_drive: %s" % os.path.join(build_dir(), "client_drive")


@pytest.fixture(scope="session")
def client_drive():
    p = os.path.join(build_dir(), "client_drive")
    if not os.access(p, os.X_OK):
        pytest.fail("%s is missing: build it first (make "
                    "$(BUILD)/client_drive) or set SLUICE_BUILD" % p,
                    pytrace=False)
    return p


@pytest.fixture(scope="session")
def certs(tmp_path_factory):
    """A self-signed certificate for CN=localhost, shared by the servers
    (saves a key generation per test)."""
    d = tmp_path_factory.mktemp("certs")
    capture_smtp.make_self_signed(str(d))
    return str(d)


@pytest.fixture
def capture(certs):
    """Factory: capture(**options) starts a CaptureServer; all are stopped
    at teardown."""
    servers = []

    def factory(**opts):
        opts.setdefault("cert_dir", certs)
        srv = capture_smtp.CaptureServer(**opts).start()
        servers.append(srv)
        return srv

    yield factory
    for s in servers:
        s.stop()


class Result:
    def __init__(self, proc, elapsed):
        self.proc = proc
        self.elapsed = elapsed
        self.events = [json.loads(l) for l in proc.stdout.splitlines()
                       if l.startswith("{")]
        self.stderr = proc.stderr

    def of(self, kind):
        return [e for e in self.events if e["event"] == kind]

    @property
    def ready(self):
        r = self.of("ready")
        return r[0] if r else None

    @property
    def closed(self):
        c = self.of("closed")
        assert len(c) == 1, self.events
        return c[0]

    def rcpts(self, msg=0):
        """{addr: (code, reply)} for one message."""
        return {e["rcpt"]: (e["code"], e["reply"])
                for e in self.of("rcpt") if e["msg"] == msg}


@pytest.fixture
def drive(client_drive, tmp_path):
    """drive(port, rcpts, content=b"...", args=[...]) runs client_drive
    against 127.0.0.1:port (or host=) and returns a Result.  The driver must exit 0,
    print exactly one "closed" event and no sanitizer report."""
    counter = [0]

    def run(port, rcpts, content=b"Subject: t\r\n\r\nhello\r\n", args=(),
            sender="sender@example.org", timeout=30, prefix=b"",
            host="127.0.0.1"):
        counter[0] += 1
        f = tmp_path / ("msg%d" % counter[0])
        f.write_bytes(prefix + content)
        cmd = [client_drive, "-T", "5", "-f", sender]
        if prefix:
            cmd += ["-O", str(len(prefix))]
        cmd += list(args) + [host, str(port), str(f)] + list(rcpts)
        t0 = time.monotonic()
        proc = subprocess.run(cmd, capture_output=True, text=True,
                              timeout=timeout)
        res = Result(proc, time.monotonic() - t0)
        for m in SANITIZER_MARKS:
            assert m not in proc.stderr, proc.stderr
        assert proc.returncode == 0, proc.stderr
        assert len(res.of("closed")) == 1, (res.events, proc.stderr)
        return res

    return run


class ScriptedServer:
    """One-connection raw TCP server for hostile-peer tests: sends
    `script` (bytes) at once, then reads until the client closes.  A list
    is a dialogue: the first bytes at once, each next bytes after a line
    from the client; a number there sleeps that long instead, and the
    bytes after it go without waiting for a line."""

    def __init__(self, script, hold=10.0):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1)
        self.port = self.sock.getsockname()[1]
        self.script = script
        self.hold = hold
        self.received = b""
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        self.sock.settimeout(self.hold)
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(self.hold)
            try:
                steps = self.script
                if isinstance(steps, bytes):
                    steps = [steps]
                conn.sendall(steps[0])
                wait = True
                for step in steps[1:]:
                    if not isinstance(step, bytes):
                        time.sleep(step)
                        wait = False
                        continue
                    while wait and not self.received.endswith(b"\n"):
                        b = conn.recv(4096)
                        if not b:
                            return
                        self.received += b
                    self.received += b"|"     # mark the turn
                    conn.sendall(step)
                    wait = True
                while True:
                    b = conn.recv(4096)
                    if not b:
                        break
                    self.received += b
            except OSError:
                pass

    def close(self):
        self.sock.close()
        self.thread.join(timeout=self.hold + 1)


@pytest.fixture
def scripted():
    servers = []

    def factory(script, hold=10.0):
        s = ScriptedServer(script, hold)
        servers.append(s)
        return s

    yield factory
    for s in servers:
        s.close()
