"""capture_smtp -- a scriptable SMTP/LMTP capture server for tests.

Runs aiosmtpd on 127.0.0.1 in a thread and records every message it
accepts or refuses at DATA.  Standard library and aiosmtpd only.

    from capture_smtp import CaptureServer
    with CaptureServer(rcpt_replies={"bad@x": "550 5.1.1 no such user"},
                       starttls=True) as srv:
        ... deliver to ("127.0.0.1", srv.port) ...
        msgs = srv.wait_for(1, timeout=10)
        msgs[0].content, msgs[0].tls, msgs[0].rcpt_tos

Options (all keyword arguments):
  rcpt_replies   {addr: "550 5.1.1 no such user"}: RCPT reply per address
                 (a 2xx reply accepts the recipient)
  mail_reply     reply to MAIL ("451 4.3.0 try later")
  data_reply     final reply after the dot (SMTP)
  lmtp           speak LMTP (LHLO; one final reply per recipient)
  lmtp_replies   {addr: "452 4.2.2 mailbox full"}: LMTP final replies
  greeting       a whole greeting line instead of "220 ... ESMTP", e.g.
                 "554 5.7.1 go away" (the server then answers QUIT only)
  ehlo_reply     a reply to EHLO/LHLO instead of the capabilities
                 (e.g. "502 5.5.1 EHLO not implemented", HELO then works)
  stall          {stage: seconds}: sleep before replying at a stage
  drop           stage at which to close the connection without a reply
                 Stages: greeting ehlo mail rcpt data (before 354)
                 body (after the 354 and one line of content)
                 dot (content received, before the final reply) rset quit
  starttls       offer STARTTLS with a self-signed certificate for
                 CN=localhost (srv.cert_file / srv.key_file)
  implicit_tls   TLS from the first byte (SMTPS)
  auth           (user, password): require AUTH (PLAIN and LOGIN)
  auth_mechanisms  subset of ("PLAIN", "LOGIN") to offer
  auth_require_tls  offer AUTH only after STARTTLS (default True)
  pipelining, eightbitmime, smtputf8, dsn   advertise these (default on)
  size           SIZE limit to advertise and enforce (0: no SIZE)

Each record (Message) has: mail_from, mail_options, rcpt_tos,
rcpt_options (a list per recipient), content (bytes, dot-unstuffed,
CRLF line ends as received), tls (bool), auth_login (str or None),
lmtp, reply (what we answered after the dot); mail_from is "" for <>.
srv.connections counts the connections accepted since start().
"""
import asyncio
import dataclasses
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from typing import List, Optional

from aiosmtpd.controller import Controller
from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

__all__ = ["CaptureServer", "Message", "make_self_signed"]

STAGES = ("greeting", "ehlo", "mail", "rcpt", "data", "body", "dot",
          "rset", "quit")
DSN_MAIL = ("RET=", "ENVID=")
DSN_RCPT = ("NOTIFY=", "ORCPT=")


@dataclasses.dataclass
class Message:
    mail_from: str
    mail_options: List[str]
    rcpt_tos: List[str]
    rcpt_options: List[List[str]]
    content: bytes
    tls: bool
    auth_login: Optional[str]
    lmtp: bool
    reply: str


def make_self_signed(directory, cn="localhost"):
    """Write key.pem and cert.pem (self-signed, 2 days) into directory."""
    key = os.path.join(directory, "key.pem")
    cert = os.path.join(directory, "cert.pem")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
         "-subj", "/CN=%s" % cn, "-addext", "subjectAltName=DNS:%s" % cn,
         "-days", "2", "-keyout", key, "-out", cert],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return cert, key


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _split_dsn(arg, keys):
    """Take DSN parameters out of a MAIL/RCPT argument (aiosmtpd
    refuses parameters it does not know)."""
    if arg is None:
        return arg, []
    words, taken = [], []
    for i, w in enumerate(arg.split(" ")):
        if i > 0 and w.upper().startswith(keys):
            taken.append(w)
        else:
            words.append(w)
    return " ".join(words), taken


def _make_protocol(base):
    class CaptureProtocol(base):
        """aiosmtpd's server with hooks at each stage."""

        def __init__(self, capture, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.capture = capture
            self.dsn_rcpt = []

        async def stage(self, name):
            """Stall or drop as configured; True if the peer is gone."""
            cap = self.capture
            if not cap.armed:
                return False
            delay = cap.opts["stall"].get(name)
            if delay:
                await asyncio.sleep(delay)
            if cap.opts["drop"] == name:
                if self.transport is not None:
                    self.transport.close()
                return True
            return False

        async def _handle_client(self):
            if self.capture.armed:
                self.capture._count_connection()
            if await self.stage("greeting"):
                return
            greeting = self.capture.opts["greeting"]
            if greeting and self.capture.armed:
                await self.push(greeting)
                await self._refuse_all()
                return
            await super()._handle_client()

        async def _refuse_all(self):
            # RFC 5321 3.1: after a 554 greeting, wait for QUIT.
            while self.transport is not None:
                try:
                    line = await self._reader.readuntil()
                except (asyncio.IncompleteReadError, ConnectionError,
                        asyncio.LimitOverrunError):
                    break
                if line.strip().upper() == b"QUIT":
                    await self.push("221 2.0.0 Bye")
                    break
                await self.push("503 5.5.1 Error: no service")
            if self.transport is not None:
                self.transport.close()

        async def smtp_EHLO(self, arg):
            if await self.stage("ehlo"):
                return
            if self.capture.opts["ehlo_reply"]:
                return await self.push(self.capture.opts["ehlo_reply"])
            await super().smtp_EHLO(arg)

        async def smtp_LHLO(self, arg):
            if await self.stage("ehlo"):
                return
            if self.capture.opts["ehlo_reply"]:
                return await self.push(self.capture.opts["ehlo_reply"])
            await super().smtp_LHLO(arg)

        async def smtp_MAIL(self, arg):
            if await self.stage("mail"):
                return
            self.dsn_rcpt = []
            dsn = []
            if self.capture.opts["dsn"]:
                arg, dsn = _split_dsn(arg, DSN_MAIL)
            await super().smtp_MAIL(arg)
            if self.envelope.mail_from is not None:
                self.envelope.mail_options.extend(dsn)

        async def smtp_RCPT(self, arg):
            if await self.stage("rcpt"):
                return
            dsn = []
            if self.capture.opts["dsn"]:
                arg, dsn = _split_dsn(arg, DSN_RCPT)
            before = len(self.envelope.rcpt_tos)
            await super().smtp_RCPT(arg)
            if len(self.envelope.rcpt_tos) > before:
                self.dsn_rcpt.append(dsn)

        async def smtp_RSET(self, arg):
            if await self.stage("rset"):
                return
            await super().smtp_RSET(arg)

        async def smtp_QUIT(self, arg):
            if await self.stage("quit"):
                return
            await super().smtp_QUIT(arg)

        async def smtp_DATA(self, arg):
            if await self.stage("data"):
                return
            if (self.capture.armed and self.capture.opts["drop"] == "body"
                    and self.envelope.rcpt_tos):
                await self.push("354 End data with <CR><LF>.<CR><LF>")
                try:
                    await self._reader.readuntil(b"\r\n")
                finally:
                    self.transport.close()
                return
            await super().smtp_DATA(arg)

        def is_tls(self):
            if self._tls_protocol is not None:
                return True
            t = self.transport
            return t is not None and t.get_extra_info("sslcontext") is not None

    return CaptureProtocol


class _Handler:
    def __init__(self, capture):
        self.capture = capture

    async def handle_EHLO(self, server, session, envelope, hostname,
                          responses):
        opts = self.capture.opts
        session.host_name = hostname
        out = []
        for r in responses:
            kw = r[4:].split(" ")[0].upper()
            if kw == "8BITMIME" and not opts["eightbitmime"]:
                continue
            out.append(r)
        extra = []
        if opts["pipelining"]:
            extra.append("250-PIPELINING")
        if opts["dsn"]:
            extra.append("250-DSN")
        return out[:1] + extra + out[1:]

    async def handle_MAIL(self, server, session, envelope, address,
                          mail_options):
        reply = self.capture.opts["mail_reply"]
        if reply is None or reply.startswith("2"):
            envelope.mail_from = address    # "<>" for the null sender
            envelope.mail_options.extend(mail_options)
        return reply or "250 2.1.0 Ok"

    async def handle_RCPT(self, server, session, envelope, address,
                          rcpt_options):
        reply = self.capture.opts["rcpt_replies"].get(address)
        if reply is None or reply.startswith("2"):
            envelope.rcpt_tos.append(address)
            envelope.rcpt_options.extend(rcpt_options)
        return reply or "250 2.1.5 Ok"

    async def handle_DATA(self, server, session, envelope):
        cap = self.capture
        if await server.stage("dot"):
            return "421 4.3.0 dropped"    # the peer is gone already
        if cap.opts["lmtp"]:
            lr = cap.opts["lmtp_replies"]
            replies = [lr.get(a, "250 2.0.0 <%s> delivered" % a)
                       for a in envelope.rcpt_tos]
            reply = "\r\n".join(replies)
        else:
            reply = cap.opts["data_reply"] or "250 2.0.0 Ok: queued"
        auth = getattr(session.auth_data, "login", None)
        if isinstance(auth, bytes):
            auth = auth.decode("utf-8", "replace")
        rcpt_opts = list(server.dsn_rcpt)
        rcpt_opts += [[]] * (len(envelope.rcpt_tos) - len(rcpt_opts))
        cap._record(Message(
            mail_from="" if envelope.mail_from == "<>" else envelope.mail_from,
            mail_options=list(envelope.mail_options),
            rcpt_tos=list(envelope.rcpt_tos),
            rcpt_options=rcpt_opts,
            content=bytes(envelope.original_content or b""),
            tls=server.is_tls(),
            auth_login=auth,
            lmtp=cap.opts["lmtp"],
            reply=reply))
        return reply


class _Controller(Controller):
    def __init__(self, capture, proto, *args, **kwargs):
        self.capture = capture
        self.proto = proto
        super().__init__(*args, **kwargs)

    def factory(self):
        return self.proto(self.capture, self.handler, **self.SMTP_kwargs)


class CaptureServer:
    """See the module docstring.  Use as a context manager or call
    start() and stop()."""

    def __init__(self, host="127.0.0.1", port=None, **opts):
        defaults = dict(
            rcpt_replies={}, mail_reply=None, data_reply=None, lmtp=False,
            lmtp_replies={}, greeting=None, ehlo_reply=None, stall={},
            drop=None, starttls=False, implicit_tls=False, auth=None,
            auth_mechanisms=("PLAIN", "LOGIN"), auth_require_tls=True,
            pipelining=True, eightbitmime=True, smtputf8=True, dsn=True,
            size=32 * 1024 * 1024, hostname="capture.test", cert_dir=None)
        unknown = set(opts) - set(defaults)
        if unknown:
            raise TypeError("unknown options: %s" % ", ".join(sorted(unknown)))
        for k in opts.get("stall", {}):
            if k not in STAGES:
                raise ValueError("unknown stage %r" % k)
        if opts.get("drop") not in (None,) + STAGES:
            raise ValueError("unknown stage %r" % opts["drop"])
        defaults.update(opts)
        self.opts = defaults
        self.host = host
        self.port = port
        self.armed = False      # hooks act only once start() is done
        self._messages = []
        self.connections = 0    # TCP connections since start()
        self._cond = threading.Condition()
        self._tmp = None
        self.cert_file = self.key_file = None
        self.controller = None

    # -- set-up ------------------------------------------------------

    def _tls_context(self):
        import ssl
        d = self.opts["cert_dir"]
        if d is None:
            self._tmp = tempfile.mkdtemp(prefix="capture-smtp-")
            d = self._tmp
        self.cert_file = os.path.join(d, "cert.pem")
        self.key_file = os.path.join(d, "key.pem")
        if not os.path.exists(self.cert_file):
            make_self_signed(d)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.cert_file, self.key_file)
        return ctx

    def _authenticator(self, server, session, envelope, mechanism, data):
        user, password = self.opts["auth"]
        if (isinstance(data, LoginPassword)
                and data.login == user.encode()
                and data.password == password.encode()):
            return AuthResult(success=True, auth_data=data)
        return AuthResult(success=False, handled=False)

    def _smtp_kwargs(self, tls_ctx):
        o = self.opts
        kw = dict(server_hostname=o["hostname"], decode_data=False,
                  enable_SMTPUTF8=o["smtputf8"],
                  data_size_limit=o["size"] or None)
        if o["starttls"]:
            kw["tls_context"] = tls_ctx
        if o["auth"] is not None:
            kw.update(auth_required=True,
                      auth_require_tls=o["auth_require_tls"],
                      authenticator=self._authenticator,
                      auth_exclude_mechanism=[
                          m for m in ("PLAIN", "LOGIN")
                          if m not in o["auth_mechanisms"]])
        else:
            kw["auth_require_tls"] = True   # no AUTH in cleartext
        return kw

    def start(self):
        o = self.opts
        tls_ctx = None
        if o["starttls"] or o["implicit_tls"]:
            tls_ctx = self._tls_context()
        proto = _make_protocol(LMTP if o["lmtp"] else SMTP)
        last = None
        for _ in range(5):
            port = self.port or _free_port()
            ctrl = _Controller(
                self, proto, _Handler(self), hostname=self.host, port=port,
                ssl_context=tls_ctx if o["implicit_tls"] else None,
                ready_timeout=10, **self._smtp_kwargs(tls_ctx))
            try:
                ctrl.start()
            except Exception as e:      # port taken meanwhile: retry
                last = e
                if self.port:
                    raise
                continue
            self.controller, self.port = ctrl, port
            self.armed = True
            return self
        raise RuntimeError("capture server did not start: %s" % last)

    def stop(self):
        self.armed = False
        if self.controller is not None:
            self.controller.stop()
            self.controller = None
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- results -----------------------------------------------------

    def _count_connection(self):
        with self._cond:
            self.connections += 1

    def _record(self, msg):
        with self._cond:
            self._messages.append(msg)
            self._cond.notify_all()

    @property
    def messages(self):
        """A copy of the list of recorded messages."""
        with self._cond:
            return list(self._messages)

    def wait_for(self, n, timeout=10.0):
        """Wait until at least n messages are recorded; returns them.
        Raises TimeoutError with what arrived so far."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self._messages) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("%d of %d messages after %.1fs" % (
                        len(self._messages), n, timeout))
                self._cond.wait(left)
            return list(self._messages)
