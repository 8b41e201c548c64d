"""The real sluiced for the end-to-end suites (tests/smtp, tests/relay,
tests/security): the build directory, configuration files, starting,
stopping and reaping daemons, the checks of their exit.

tests/conftest.py loads tests/helpers as the package
``sluice_test_helpers`` and declares the fixtures built on this module
(sluice_build, sluiced_daemons) and the report hook that attaches the
daemon logs to a failed test.

SLUICE_BUILD (absolute) selects the build directory; default <repo>/build.
"""
import os
import re
import signal
import smtplib
import socket
import subprocess
import time

from . import spool
from .smtpclient import RawClient, TIMEOUT

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))

START_TIMEOUT = 10.0
STOP_TIMEOUT = 15.0

# What a sanitizer prints when it finds something.
SANITIZER_RE = re.compile(r"ERROR: (Address|Leak|Memory|Thread)Sanitizer|"
                          r"runtime error:|SUMMARY: UndefinedBehavior")

DEFAULTS = {
    "hostname": "mx.test.example",
    "max_message_size": 1048576,
    "max_recipients": 1000,
    "max_command_line": 512,
    "max_text_line": 1000,
    "max_errors": 20,
    "command_timeout": "5m",
    "data_timeout": "3m",
    "greeting_delay": 0,
    "workers": 2,
    "log_level": "info",
    # Keep every accepted message in the queue: the delivery engine's
    # only route is a port on 127.0.0.1 that refuses connections, so each
    # attempt is a temporary failure retried an hour later (and the
    # suite never resolves or connects to anything outside 127.0.0.1).
    "smarthost": lambda: {"host": "127.0.0.1", "port": dead_port(),
                          "tls": "none"},
    "retry_min": "1h",
    "retry_max": "1h",
    # Protections that would slow down or refuse this suite's many
    # connections and deliberate errors from 127.0.0.1; tests of them
    # set their own values.
    "error_delay": 0,
    "max_sessions_per_ip": 0,
    "max_connect_rate": 0,
}

_dead_sock = None


def dead_port():
    """A port on 127.0.0.1 that refuses connections for as long as the
    test session runs: bound, never listening."""
    global _dead_sock
    if _dead_sock is None:
        _dead_sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        _dead_sock.bind(("127.0.0.1", 0))
    return _dead_sock.getsockname()[1]


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def build_dir():
    return os.environ.get("SLUICE_BUILD") or os.path.join(REPO, "build")


def missing_programs(build, progs=("sluiced", "sluicectl")):
    """The programs of progs not executable in build, as paths."""
    return [os.path.join(build, p) for p in progs
            if not os.access(os.path.join(build, p), os.X_OK)]


def running_as_root():
    return os.geteuid() == 0


def config_value(v):
    """A Python value in libconfig syntax: a list of str is [ "a", "b" ],
    a list of dict is ( { ... }, { ... } ); None members of a group are
    left out."""
    if callable(v):
        v = v()
    if isinstance(v, (list, tuple)):
        if not v:
            return "[ ]"
        if all(isinstance(x, dict) for x in v):
            return "( %s )" % ", ".join(config_value(x) for x in v)
        return "[ %s ]" % ", ".join(config_value(x) for x in v)
    if isinstance(v, dict):
        return "{ %s }" % " ".join("%s = %s;" % (k, config_value(x))
                                   for k, x in v.items() if x is not None)
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return '"%s"' % v.replace("\\", "\\\\").replace('"', '\\"')
    raise TypeError("config value %r" % (v,))


class DaemonError(AssertionError):
    pass


class Sluiced:
    """One sluiced process (and its restarts) with its own config, spool
    and log under workdir.  Keyword overrides replace DEFAULTS; a value
    of None leaves the key out.

    listeners = [{"role": "smtp"}, {"role": "submissions"}, ...] makes one
    listener per entry on its own free port of 127.0.0.1 (d.ports[i], the
    other keys of an entry go into its group); the first is d.port (port=
    chooses it).  Default: one "smtp"."""

    def __init__(self, build, workdir, wrapper=None, env=None,
                 listeners=None, **overrides):
        self.build = build
        self.binary = os.path.join(build, "sluiced")
        self.ctl_binary = os.path.join(build, "sluicectl")
        self.workdir = str(workdir)
        os.makedirs(self.workdir, exist_ok=True)
        self.host = "127.0.0.1"
        self.listener_specs = [dict(x) for x in (listeners or
                                                 [{"role": "smtp"}])]
        self.ports = [free_port() for _ in self.listener_specs]
        port = overrides.pop("port", None)
        if port:
            self.ports[0] = port
        self.port = self.ports[0]
        self.spool_dir = os.path.join(self.workdir, "spool")
        os.makedirs(self.spool_dir, exist_ok=True)
        self.config_path = os.path.join(self.workdir, "sluice.conf")
        self.settings = dict(DEFAULTS)
        self.settings.update(overrides)
        self.hostname = self.settings.get("hostname")
        self.proc = None
        self.runs = 0
        self.log_paths = []
        self.expect_death = False
        self.wrapper = list(wrapper or [])     # e.g. ["strace", "-f", ...]
        self.env = dict(os.environ)
        self.env.update(env or {})
        self.write_config()

    # -- config
    def config_text(self):
        lines = []
        for k, v in self.settings.items():
            if v is None or k == "listeners":
                continue
            lines.append("%s = %s;" % (k, config_value(v)))
        lines.append("spool_dir = %s;" % config_value(self.spool_dir))
        ls = []
        for spec, port in zip(self.listener_specs, self.ports):
            g = {"address": "%s:%d" % (self.host, port)}
            g.update(spec)
            ls.append(g)
        lines.append("listeners = %s;" % config_value(ls))
        return "\n".join(lines) + "\n"

    def port_of(self, role):
        for spec, port in zip(self.listener_specs, self.ports):
            if spec.get("role", "smtp") == role:
                return port
        raise KeyError(role)

    def write_config(self):
        with open(self.config_path, "w") as f:
            f.write(self.config_text())

    # -- log
    @property
    def log_path(self):
        return self.log_paths[-1] if self.log_paths else None

    def log_text(self, all_runs=False):
        paths = self.log_paths if all_runs else self.log_paths[-1:]
        out = []
        for p in paths:
            try:
                with open(p, "rb") as f:
                    out.append(f.read().decode("utf-8", "replace"))
            except FileNotFoundError:
                pass
        return "".join(out)

    def log_lines(self):
        return self.log_text().splitlines()

    def wait_log(self, pattern, timeout=10.0):
        """Wait until a line of the current log matches the regex
        pattern; returns the match."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            for line in self.log_lines():
                m = rx.search(line)
                if m:
                    return m
            if time.monotonic() > deadline:
                raise AssertionError("no log line matches %r within %.0f s;"
                                     " log:\n%s" % (pattern, timeout,
                                                    self.log_tail()))
            time.sleep(0.05)

    def log_tail(self, n=60):
        return "\n".join(self.log_lines()[-n:])

    # -- process
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout=START_TIMEOUT):
        assert not self.running(), "sluiced already running"
        self.runs += 1
        log_path = os.path.join(self.workdir, "sluiced.%d.log" % self.runs)
        self.log_paths.append(log_path)
        logf = open(log_path, "wb")
        try:
            self.proc = subprocess.Popen(
                self.wrapper + [self.binary, "-d", "-f", self.config_path],
                stdin=subprocess.DEVNULL, stdout=logf, stderr=logf,
                cwd=self.workdir, env=self.env,
                # Its own process group: sluiced forks (privilege
                # separation); kill9() and the teardown reach them all.
                start_new_session=True)
        finally:
            logf.close()
        self.expect_death = False
        deadline = time.monotonic() + timeout
        while True:
            rc = self.proc.poll()
            if rc is not None:
                self.reap_group(grace=1.0)
                raise DaemonError("sluiced exited with %s before listening;"
                                  " log:\n%s" % (rc, self.log_text()))
            try:
                s = socket.create_connection((self.host, self.port),
                                             timeout=1.0)
                s.close()
                return self
            except OSError:
                pass
            if time.monotonic() > deadline:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
                raise DaemonError("sluiced not listening on %s:%d after "
                                  "%.0f s; log:\n%s" % (self.host, self.port,
                                                        timeout,
                                                        self.log_text()))
            time.sleep(0.05)

    def daemon_pid(self):
        """The pid of sluiced itself (not of a wrapper such as strace)."""
        if not self.wrapper:
            return self.proc.pid
        kids = []
        for tid in os.listdir("/proc/%d/task" % self.proc.pid):
            with open("/proc/%d/task/%s/children" % (self.proc.pid, tid)) as f:
                kids += [int(x) for x in f.read().split()]
        assert len(kids) == 1, "wrapper has children %s" % kids
        return kids[0]

    def child_pid(self):
        """The unprivileged session process (the root parent's only
        child), or the daemon itself when it was not started as root."""
        pid = self.daemon_pid()
        kids = []
        for tid in os.listdir("/proc/%d/task" % pid):
            try:
                with open("/proc/%d/task/%s/children" % (pid, tid)) as f:
                    kids += [int(x) for x in f.read().split()]
            except FileNotFoundError:
                pass
        if not running_as_root():
            return pid
        assert len(kids) == 1, "sluiced %d has children %s" % (pid, kids)
        return kids[0]

    def stop(self, timeout=STOP_TIMEOUT, check=True):
        """SIGTERM and wait.  With check, fail unless it exits with 0 and
        without a sanitizer report."""
        self.begin_stop()
        return self.finish_stop(timeout, check)

    def begin_stop(self):
        """Send SIGTERM (if it runs); finish_stop() waits and checks."""
        self.stop_sent = time.monotonic()
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.kill(self.daemon_pid(), signal.SIGTERM)
            except (OSError, AssertionError):
                self.proc.send_signal(signal.SIGTERM)

    def finish_stop(self, timeout=STOP_TIMEOUT, check=True):
        if self.proc is None:
            return None
        left_time = timeout - (time.monotonic() - self.stop_sent)
        try:
            self.proc.wait(max(0.1, left_time))
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            if check:
                raise DaemonError("sluiced did not exit within %.0f s of "
                                  "SIGTERM; log:\n%s"
                                  % (timeout, self.log_tail()))
        rc = self.proc.returncode
        left = self.reap_group()
        if check:
            self.check_exit(rc)
            if left:
                raise DaemonError("sluiced exited but left processes %s "
                                  "running; log:\n%s" % (left,
                                                          self.log_tail()))
        return rc

    def group_pids(self):
        """Live processes of the daemon's process group."""
        pids = []
        pgid = self.proc.pid
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                with open("/proc/%s/stat" % d) as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            # fields: state ppid pgrp ...  A killed multi-threaded
            # process shows its leader as a zombie while its other
            # threads are still exiting: it is dead only once they are.
            if int(fields[2]) != pgid:
                continue
            if fields[0] in ("Z", "X"):
                try:
                    if len(os.listdir("/proc/%s/task" % d)) <= 1:
                        continue
                except OSError:
                    continue
            pids.append(int(d))
        return pids

    def reap_group(self, grace=5.0):
        """Wait up to grace seconds for the rest of the process group to
        exit, then SIGKILL it.  Returns the pids that had to be killed."""
        deadline = time.monotonic() + grace
        while self.group_pids() and time.monotonic() < deadline:
            time.sleep(0.05)
        left = self.group_pids()
        if left:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return left

    def check_exit(self, rc):
        if self.expect_death and rc == -signal.SIGKILL:
            return
        if rc != 0:
            raise DaemonError("sluiced exited with %s; log:\n%s"
                              % (rc, self.log_tail()))
        self.check_sanitizers()

    def check_sanitizers(self):
        text = self.log_text(all_runs=True)
        m = SANITIZER_RE.search(text)
        if m:
            raise DaemonError("sanitizer report in the sluiced log:\n%s"
                              % text[max(0, m.start() - 200):m.start() + 6000])

    def kill9(self):
        """SIGKILL every process of the daemon at once (a crash)."""
        assert self.running(), "sluiced is not running"
        self.expect_death = True
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(STOP_TIMEOUT)
        deadline = time.monotonic() + STOP_TIMEOUT
        while self.group_pids() and time.monotonic() < deadline:
            time.sleep(0.02)

    def restart(self, timeout=START_TIMEOUT):
        if self.running():
            self.stop()
        self.start(timeout)
        return self

    def assert_alive(self):
        rc = self.proc.poll() if self.proc else "never started"
        assert rc is None, "sluiced died (%s); log:\n%s" % (rc,
                                                             self.log_tail())

    # -- clients
    def connect(self, **kw):
        return RawClient(self.host, self.port, **kw)

    def smtp(self, timeout=TIMEOUT, ehlo=True):
        s = smtplib.SMTP(self.host, self.port, timeout=timeout)
        if ehlo:
            s.ehlo("client.example")
        return s

    def ctl(self, *args, timeout=60):
        return subprocess.run([self.ctl_binary, "-f", self.config_path]
                              + list(args), capture_output=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)

    def teardown_errors(self):
        """Checks of a subclass on the logs of a daemon stopped at the
        end of its test: a list of error messages."""
        return []

    # -- spool
    @property
    def counters_path(self):
        return os.path.join(self.spool_dir, "counters")

    def queue_ids(self):
        return spool.queue_ids(self.spool_dir)

    def incoming_ids(self):
        return spool.incoming_ids(self.spool_dir)

    def message(self, qid):
        return spool.read_message(self.spool_dir, qid)

    def wait_incoming_empty(self, timeout=5.0):
        deadline = time.monotonic() + timeout
        while self.incoming_ids():
            if time.monotonic() > deadline:
                raise AssertionError("files left in incoming/: %s"
                                     % self.incoming_ids())
            time.sleep(0.05)


# -- the daemons of the tests

class Reaper:
    """Daemons a test is done with: SIGTERMed at its teardown, waited for
    and checked (exit status 0, no sanitizer report, no process left)
    while the next tests run -- sluiced's parent notices a signal only
    every 200 ms, which would otherwise cost every test that much.  A
    failure is reported at the teardown of a later test (or of the
    session) and names the test whose daemon failed."""

    def __init__(self):
        self.pending = []           # (daemon, nodeid)

    def add(self, d, nodeid):
        d.begin_stop()
        self.pending.append((d, nodeid))

    def collect(self, block):
        errors, still = [], []
        for d, nodeid in self.pending:
            if not block and d.proc is not None and d.proc.poll() is None:
                still.append((d, nodeid))
                continue
            try:
                d.finish_stop()
            except AssertionError as e:
                errors.append("daemon of %s: %s" % (nodeid, e))
            errors += ["daemon of %s: %s" % (nodeid, e)
                       for e in d.teardown_errors()]
        self.pending = still
        return errors


class Daemons:
    """The daemons of one test (the sluiced_daemons fixture).  start()
    writes a config, starts a daemon of class cls, waits until it listens
    and returns it.  stop_all() ends them at the test's teardown and
    returns the errors: a crash, a non-zero exit status after SIGTERM, a
    process left behind, a sanitizer report or a failed
    cls.teardown_errors().  With defer (the default) a daemon still
    running is handed to the session's Reaper, which checks it while the
    next tests run; without, each is stopped and checked at once."""

    def __init__(self, build, tmp_path, nodeid, reaper, defer=True):
        self.build = build
        self.tmp_path = tmp_path
        self.nodeid = nodeid
        self.reaper = reaper
        self.defer = defer
        self.list = []

    def start(self, cls=Sluiced, **overrides):
        d = cls(self.build, self.tmp_path / ("d%d" % len(self.list)),
                **overrides)
        self.list.append(d)
        d.start()
        return d

    def stop_all(self):
        errors = []
        for d in self.list:
            if self.defer and d.running():
                self.reaper.add(d, self.nodeid)
                continue
            try:
                d.stop()
            except AssertionError as e:
                errors.append(str(e))
            errors += d.teardown_errors()
        errors += self.reaper.collect(block=len(self.reaper.pending) > 8)
        return errors


def log_sections(daemons, when, max_lines=150):
    """(title, text) report sections with the last max_lines lines of
    every run's log of each daemon, for a failed test."""
    out = []
    for i, d in enumerate(daemons):
        lines = d.log_text(all_runs=True).splitlines()
        if len(lines) > max_lines:
            lines = ["... (%d lines before)" % (len(lines) - max_lines)] \
                + lines[-max_lines:]
        out.append(("sluiced log %d (%s)" % (i, when), "\n".join(lines)))
    return out
