"""A real DNS server for tests: Debian's unbound on 127.0.0.1.

DnsServer(records) serves each record, written "name TYPE data" as in a
zone file ("mx.test MX 10 a.mx.test", "a.mx.test A 192.0.2.1",
"null.test MX 0 ."), from static local zones: every other name under the
same top-level labels is NXDOMAIN (or NODATA when the name has other
records), and nothing is ever asked of the Internet.  Names listed in
refuse= get REFUSED, which a resolver reports as SERVFAIL.

    with DnsServer(["mx.test MX 10 a.mx.test", "a.mx.test A 192.0.2.1"]) as d:
        ... point sluice at d.forwarder ("127.0.0.1@PORT") ...

tests/unit/test_dns.c writes the same configuration.  Run as a script it
serves its arguments until interrupted: dnsserver.py "x.test A 192.0.2.9".
Standard library only.
"""
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time

UNBOUND = "/usr/sbin/unbound"
START_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0
START_TRIES = 3


def free_port():
    """A port free for both UDP and TCP on 127.0.0.1 (unbound takes both)."""
    while True:
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.bind(("127.0.0.1", 0))
        port = u.getsockname()[1]
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            t.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            t.close()
            u.close()


def quote(s):
    if '"' in s or "\n" in s:
        raise ValueError("record or name with a quote: %r" % (s,))
    return '"%s"' % s


def zones_of(records, refuse):
    """The top-level label of every name, each served as a static zone."""
    zones = []
    for name in [r.split()[0] for r in records] + list(refuse):
        tld = name.rstrip(".").rsplit(".", 1)[-1].lower() + "."
        if tld not in zones:
            zones.append(tld)
    return zones


def config(port, workdir, records, refuse=()):
    lines = [
        "server:",
        "\tinterface: 127.0.0.1",
        "\tport: %d" % port,
        "\tdo-not-query-localhost: no",
        '\tusername: ""',
        '\tchroot: ""',
        "\tdirectory: %s" % quote(workdir),
        '\tpidfile: ""',
        "\tuse-syslog: no",
        '\tlogfile: ""',
        "\tverbosity: 1",
        "\tnum-threads: 1",
        "\taccess-control: 127.0.0.0/8 allow",
    ]
    for z in zones_of(records, refuse):
        lines.append("\tlocal-zone: %s static" % quote(z))
    for name in refuse:
        lines.append("\tlocal-zone: %s always_refuse"
                     % quote(name.rstrip(".") + "."))
    for r in records:
        if len(r.split()) < 3:
            raise ValueError("record is not 'name TYPE data': %r" % (r,))
        lines.append("\tlocal-data: %s" % quote(r))
    lines += ["remote-control:", "\tcontrol-enable: no", ""]
    return "\n".join(lines)


def probe(port, name, timeout=0.2):
    """True if something answers a DNS query on 127.0.0.1:port."""
    qname = b"".join(bytes([len(l)]) + l.encode()
                     for l in name.split(".") if l) + b"\0"
    query = struct.pack(">HHHHHH", 0x5173, 0x0100, 1, 0, 0, 0) + qname + \
        struct.pack(">HH", 1, 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(timeout)
    try:
        s.sendto(query, ("127.0.0.1", port))
        reply = s.recv(4096)
        return len(reply) >= 12 and reply[:2] == query[:2]
    except OSError:
        return False
    finally:
        s.close()


class DnsServerError(RuntimeError):
    pass


class DnsServer:
    """One unbound serving records; workdir (default: a fresh temporary
    directory, removed by stop()) holds its config and log."""

    def __init__(self, records, refuse=(), workdir=None, binary=UNBOUND):
        self.records = list(records)
        self.refuse = list(refuse)
        self.binary = binary
        self.own_workdir = workdir is None
        self.workdir = str(workdir) if workdir else None
        self.port = None
        self.proc = None
        self.log_path = None

    @property
    def forwarder(self):
        return "127.0.0.1@%d" % self.port

    def start(self):
        if not os.access(self.binary, os.X_OK):
            raise DnsServerError("%s is missing: apt-get install unbound"
                                 % self.binary)
        if self.workdir is None:
            self.workdir = tempfile.mkdtemp(prefix="sluice-dns-")
        os.makedirs(self.workdir, exist_ok=True)
        self.log_path = os.path.join(self.workdir, "unbound.log")
        for _ in range(START_TRIES):
            if self._start_once():
                return self
        raise DnsServerError("unbound did not start:\n%s" % self.log())

    def _start_once(self):
        self.port = free_port()
        conf = os.path.join(self.workdir, "unbound.conf")
        with open(conf, "w") as f:
            f.write(config(self.port, self.workdir, self.records,
                           self.refuse))
        log = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen([self.binary, "-d", "-c", conf],
                                         stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=log)
        finally:
            log.close()
        probe_name = zones_of(self.records, self.refuse)[0] \
            if self.records or self.refuse else "test."
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.proc = None    # port taken, most likely: try another
                return False
            if probe(self.port, probe_name):
                return True
            time.sleep(0.05)
        self._terminate()
        raise DnsServerError("unbound did not answer within %.0fs:\n%s"
                             % (START_TIMEOUT, self.log()))

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except (OSError, TypeError):
            return ""

    def _terminate(self):
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None

    def stop(self):
        self._terminate()
        if self.own_workdir and self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


if __name__ == "__main__":
    server = DnsServer(sys.argv[1:]).start()
    print(server.forwarder, flush=True)
    try:
        server.proc.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
