#!/usr/bin/python3
"""load.py -- push mail through an SMTP relay with Postfix's test tools and
measure what the relay did.

    smtp-source x P  --SMTP-->  relay under test  --SMTP-->  smtp-sink

Two sub-commands:

  load.py sink ADDR
      Become smtp-sink listening on ADDR (host:port), printing its running
      counters on stdout.  Redirect stdout to a file and give that file to
      "run --sink-log": one sink can then serve a whole series of runs.  A
      relay that caches its connections to the next hop, or that marks a
      next hop as down for a while when it refuses connections, would be
      disturbed by a sink restarted for every run.

  load.py run [options] RELAY SINK
      Send --messages messages of --size bytes to RELAY with P smtp-source
      processes, wait until the sink on SINK has counted all of them (or
      --timeout), and print one line of key=value results on stdout.
      Give RELAY == SINK to measure the tools alone (the "direct path").

Result keys (the names are what bench/run-bench parses):
  relay sink msgs size conc procs    what was run
  accept_s accept_mps   wall time from the start until the last smtp-source
                        exited, i.e. the relay had answered every DATA and
                        QUIT; msgs / accept_s
  e2e_s e2e_mps         wall time from the start until, in addition, the
                        sink had counted every message; msgs / e2e_s
                        (e2e_mps=NA unless status=ok)
  sink_msgs             messages the sink counted during the run and the
                        half second after it: more than msgs means
                        duplicates or mail left over from an earlier run
  cpu_busy_s            CPU seconds the machine was busy in the e2e interval
                        (/proc/stat: user+nice+system+irq+softirq; steal is
                        another guest's time, iowait is idle)
  cpu_source_s          CPU seconds of the smtp-source processes (rusage)
  cpu_sink_s            CPU seconds of smtp-sink in the interval (NA if its
                        pid is unknown)
  cpu_other_s           busy - source - sink: the relay, kernel work done on
                        behalf of everyone, and whatever else runs
  cpu_relay_s           CPU seconds of the relay's cgroup (--cgroup only;
                        cgroup v2 cpu.stat usage_usec, all its processes)
  listen_drops          TcpExt ListenDrops over the run (machine-wide): SYNs
                        dropped because a listen queue was full; each costs
                        that client a retransmission of at least one second
  status                ok | timeout | source_failed(RC)
Exit status: 0 when status=ok, 1 otherwise, 2 for usage errors.

Only the Python standard library (3.9 or later) is used.  Nothing forks
while the run is measured except the smtp-source processes themselves: the
waiting loop reads files, which costs far less CPU than the relay it
measures.
"""

import argparse
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time

SMTP_SOURCE = "/usr/sbin/smtp-source"
SMTP_SINK = "/usr/sbin/smtp-sink"
POLL = 0.005            # seconds between looks at the sink's counters
GRACE = 0.5             # seconds to wait for stragglers after the run


def die(msg, code=1):
    print("load.py: " + msg, file=sys.stderr)
    sys.exit(code)


def split_addr(addr):
    host, _, port = addr.rpartition(":")
    if not host or not port.isdigit():
        die("bad address %r (want host:port)" % addr, 2)
    return host, int(port)


def listening(addr):
    """True if something accepts TCP connections on addr."""
    try:
        with socket.create_connection(split_addr(addr), timeout=1):
            return True
    except OSError:
        return False


def sink_argv(addr):
    # -c: running counters on stdout ("sess=N quit=N mesg=N" records ended
    #     by \r, flushed as they change) -- this is how arrivals are counted;
    # -u nobody: as root smtp-sink refuses to run without a user to become;
    # backlog 1024: a burst of 50 new connections must not overflow it.
    argv = [SMTP_SINK, "-c"]
    if os.geteuid() == 0:
        argv += ["-u", "nobody"]
    return argv + [addr, "1024"]


# --- measurements read from /proc and /sys ------------------------------------

CLK_TCK = os.sysconf("SC_CLK_TCK")


def machine_busy_s():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq = v[:7]
    return (user + nice + system + irq + softirq) / CLK_TCK


def process_cpu_s(pid):
    """utime + stime of one process, or None if it cannot be read."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            s = f.read()
    except OSError:
        return None
    # the command name (field 2) may contain spaces and parentheses: the
    # fields we want are counted from the last ')'
    fields = s[s.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def cgroup_cpu_s(cgdir):
    with open(os.path.join(cgdir, "cpu.stat")) as f:
        for line in f:
            key, _, val = line.partition(" ")
            if key == "usage_usec":
                return int(val) / 1e6
    raise ValueError("no usage_usec in %s/cpu.stat" % cgdir)


def listen_drops():
    with open("/proc/net/netstat") as f:
        lines = f.read().splitlines()
    for names, values in zip(lines[::2], lines[1::2]):
        if names.startswith("TcpExt:"):
            table = dict(zip(names.split()[1:], values.split()[1:]))
            return int(table.get("ListenDrops", 0))
    return 0


class SinkCounter:
    """Follows smtp-sink's counter output and keeps its latest mesg= value.

    The file is kept open and only the bytes appended since the last look
    are read; a record is used only once its terminating \\r is there."""

    MESG = re.compile(rb"mesg=(\d+)")

    def __init__(self, path):
        self.file = open(path, "rb")
        self.partial = b""
        self.mesg = 0

    def poll(self):
        data = self.file.read()
        if data:
            complete, sep, self.partial = (self.partial + data).rpartition(b"\r")
            if sep:
                last = complete.rpartition(b"\r")[2]
                m = self.MESG.search(last)
                if m:
                    self.mesg = int(m.group(1))
        return self.mesg


# --- the run --------------------------------------------------------------------

def share(total, parts, i):
    """Part i of total split as evenly as possible into parts."""
    return total // parts + (1 if i < total % parts else 0)


def run(a):
    if not (a.messages >= a.procs >= 1 and a.sessions >= a.procs):
        die("need messages >= procs >= 1 and sessions >= procs", 2)
    for tool in (SMTP_SOURCE, SMTP_SINK):
        if not os.access(tool, os.X_OK):
            die(tool + " not found (Debian package postfix)", 2)

    work = tempfile.mkdtemp(prefix="sluice-load.")
    sink_proc = None
    sources = {}                # pid -> Popen of the smtp-source processes

    def stop_children():
        for p in sources.values():
            if p.poll() is None:
                p.kill()
                p.wait()
        if sink_proc is not None and sink_proc.poll() is None:
            sink_proc.terminate()
            try:
                sink_proc.wait(5)
            except subprocess.TimeoutExpired:
                sink_proc.kill()
                sink_proc.wait()

    # run-bench bounds us with timeout(1), which signals only this process:
    # take the smtp-source processes down with us.
    def on_signal(signum, _frame):
        stop_children()
        sys.exit(128 + signum)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    try:
        if a.sink_log:
            if not listening(a.sink):
                die("no smtp-sink listens on " + a.sink)
            sink_log, sink_pid = a.sink_log, a.sink_pid
        else:
            if listening(a.sink):
                die("something already listens on %s; give --sink-log to use it" % a.sink)
            sink_log = os.path.join(work, "sink.out")
            with open(sink_log, "wb") as out, open(os.path.join(work, "sink.err"), "wb") as err:
                sink_proc = subprocess.Popen(sink_argv(a.sink), stdout=out, stderr=err)
            sink_pid = sink_proc.pid
            for _ in range(100):
                if sink_proc.poll() is not None:
                    with open(os.path.join(work, "sink.err")) as f:
                        die("smtp-sink exited: " + f.read().strip())
                if listening(a.sink):
                    break
                time.sleep(0.05)
            else:
                die("smtp-sink does not listen on " + a.sink)
        if not listening(a.relay):
            die("nothing listens on " + a.relay)
        # (those probe connections count as sink sessions, never as messages)
        counter = SinkCounter(sink_log)
        base = counter.poll()

        if not a.quiet:
            print("# load.py: %d x smtp-source -s ~%d -m ~%d -l %d %s -> sink %s"
                  % (a.procs, a.sessions // a.procs, a.messages // a.procs,
                     a.size, a.relay, a.sink), file=sys.stderr)

        # --- go
        drops0 = listen_drops()
        busy0 = machine_busy_s()
        sinkcpu0 = process_cpu_s(sink_pid) if sink_pid else None
        relaycpu0 = cgroup_cpu_s(a.cgroup) if a.cgroup else None
        t0 = time.monotonic()
        deadline = t0 + a.timeout
        for i in range(a.procs):
            argv = [SMTP_SOURCE,
                    "-s", str(share(a.sessions, a.procs, i)),
                    "-m", str(share(a.messages, a.procs, i)),
                    "-l", str(a.size),
                    "-M", "load-client.bench.test",
                    "-f", a.sender, "-t", a.recipient] + a.source_opt + [a.relay]
            with open(os.path.join(work, "source.%d" % i), "wb") as out:
                p = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
            sources[p.pid] = p

        # --- wait: reap the sources (with their rusage), watch the sink
        running = set(sources)
        source_cpu = 0.0
        failed_rc = 0
        t_accept = t_end = None
        status = "ok"
        while True:
            for pid in list(running):
                got, wstatus, ru = os.wait4(pid, os.WNOHANG)
                if got == pid:
                    running.discard(pid)
                    sources[pid].returncode = os.waitstatus_to_exitcode(wstatus)
                    source_cpu += ru.ru_utime + ru.ru_stime
                    if sources[pid].returncode != 0:
                        failed_rc = sources[pid].returncode
            now = time.monotonic()
            if not running and t_accept is None:
                t_accept = now
                if failed_rc:
                    # a failed injection will never complete at the sink:
                    # give the relay a moment to pass on what it took
                    status = "source_failed(%d)" % failed_rc
                    deadline = min(deadline, now + 2)
            if t_accept is not None and counter.poll() - base >= a.messages:
                t_end = now
                break
            if now >= deadline:
                if status == "ok":
                    status = "timeout"
                t_end = now
                break
            time.sleep(POLL)
        if t_accept is None:
            t_accept = t_end

        busy1 = machine_busy_s()
        sinkcpu1 = process_cpu_s(sink_pid) if sink_pid else None
        relaycpu1 = cgroup_cpu_s(a.cgroup) if a.cgroup else None
        drops1 = listen_drops()
        stop_children()         # only sources still running at a timeout

        time.sleep(GRACE)
        sink_msgs = counter.poll() - base

        # --- report
        accept_s = t_accept - t0
        e2e_s = t_end - t0
        busy = busy1 - busy0
        kv = [("relay", a.relay), ("sink", a.sink), ("msgs", a.messages),
              ("size", a.size), ("conc", a.sessions), ("procs", a.procs),
              ("accept_s", "%.3f" % accept_s),
              ("accept_mps", "%.0f" % (a.messages / accept_s)),
              ("e2e_s", "%.3f" % e2e_s),
              ("e2e_mps", "%.0f" % (a.messages / e2e_s) if status == "ok" else "NA"),
              ("sink_msgs", sink_msgs),
              ("cpu_busy_s", "%.3f" % busy),
              ("cpu_source_s", "%.3f" % source_cpu)]
        if sinkcpu0 is not None and sinkcpu1 is not None:
            sink_cpu = sinkcpu1 - sinkcpu0
            kv += [("cpu_sink_s", "%.3f" % sink_cpu),
                   ("cpu_other_s", "%.3f" % (busy - source_cpu - sink_cpu))]
        else:
            kv += [("cpu_sink_s", "NA"),
                   ("cpu_other_s", "%.3f" % (busy - source_cpu))]
        if a.cgroup:
            kv.append(("cpu_relay_s", "%.3f" % (relaycpu1 - relaycpu0)))
        kv += [("listen_drops", drops1 - drops0), ("status", status)]
        print(" ".join("%s=%s" % kv_ for kv_ in kv), flush=True)

        if status != "ok":
            print("load.py: last lines of smtp-source output:", file=sys.stderr)
            for i in range(a.procs):
                with open(os.path.join(work, "source.%d" % i), errors="replace") as f:
                    for line in f.read().splitlines()[-2:]:
                        print("  " + line, file=sys.stderr)
            return 1
        return 0
    finally:
        stop_children()
        for name in os.listdir(work):
            os.unlink(os.path.join(work, name))
        os.rmdir(work)


def main():
    ap = argparse.ArgumentParser(
        prog="load.py", description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)

    sp = sub.add_parser("sink", help="become smtp-sink on ADDR (counters on stdout)")
    sp.add_argument("addr")

    rp = sub.add_parser("run", help="one measured load through RELAY into SINK")
    rp.add_argument("relay", help="host:port the load is sent to")
    rp.add_argument("sink", help="host:port of smtp-sink, where the relay delivers")
    rp.add_argument("-m", "--messages", type=int, default=1000)
    rp.add_argument("-l", "--size", type=int, default=1024, help="message size, bytes")
    rp.add_argument("-s", "--sessions", type=int, default=1,
                    help="concurrent SMTP sessions in all (one message per session)")
    rp.add_argument("-p", "--procs", type=int, default=1,
                    help="smtp-source processes sharing the sessions.  One "
                    "smtp-source connects its sessions one at a time, so one "
                    "dropped SYN stalls all of them; with procs == sessions "
                    "every session is an independent client")
    rp.add_argument("-T", "--timeout", type=float, default=120,
                    help="give up this many seconds after the start")
    rp.add_argument("-g", "--cgroup", help="cgroup v2 directory holding the relay")
    rp.add_argument("--sink-log", help="counter output of an smtp-sink already "
                    "running on SINK (see the sink sub-command)")
    rp.add_argument("--sink-pid", type=int, help="its pid, to account its CPU")
    rp.add_argument("--sender", default="sender@bench.test")
    rp.add_argument("--recipient", default="rcpt@dest.test")
    rp.add_argument("--source-opt", action="append", default=[],
                    help="extra smtp-source argument (repeatable), written "
                    "with '=': --source-opt=-d")
    rp.add_argument("-q", "--quiet", action="store_true", help="no comment on stderr")

    a = ap.parse_args()
    if a.cmd == "sink":
        split_addr(a.addr)
        os.execv(SMTP_SINK, sink_argv(a.addr))
    sys.exit(run(a))


if __name__ == "__main__":
    main()
