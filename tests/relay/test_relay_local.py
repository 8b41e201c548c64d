"""Local delivery: Maildirs, unknown users, aliases, role accounts, LMTP
(tests 8 and 9 of the M2 brief)."""
import os
import smtplib
import time

import pytest

from relay_helpers import (SENDER, SENDER_RECORDS, Report,
                           give_to_daemon_user, maildir_messages,
                           make_message, msgid_of)


@pytest.fixture
def local_relay(relay, dns, tmp_path):
    """sluiced with local_domains example.org and a Maildir for alice."""
    root = tmp_path / "mail"
    (root / "example.org" / "alice").mkdir(parents=True)
    give_to_daemon_user(str(root))

    def factory(aliases=None, **kw):
        d = dns(["remote.test MX 10 mx.remote.test",
                 "mx.remote.test A 127.0.0.7"] + SENDER_RECORDS)
        if aliases is not None:
            p = tmp_path / "aliases"
            p.write_text(aliases)
            kw["aliases_file"] = str(p)
        r = relay(dns=d, local_domains=["example.org"],
                  mailbox_root=str(root), **kw)
        r.mailbox_root = str(root)
        return r
    return factory


def test_local_delivery_to_maildir(local_relay):
    r = local_relay()
    body = "Line one.\r\n.leading dot line\r\nLast line.\r\n"
    msg = make_message(SENDER, ["alice@example.org"], body=body)
    qid = r.send("alice@example.org", msg)
    path = os.path.join(r.mailbox_root, "example.org", "alice")
    got = maildir_messages(path, 1)
    r.wait_removed(qid)
    assert len(got) == 1
    raw = got[0]
    assert b"\r\n" not in raw, "Maildir files use LF line ends"
    assert raw.startswith(b"Return-Path: <%s>\n" % SENDER.encode()), \
        raw[:200]
    assert b"\nDelivered-To: alice@example.org\n" in raw, raw[:300]
    assert raw.endswith(b"\n\nLine one.\n.leading dot line\nLast line.\n"), \
        raw[-200:]
    assert msgid_of(raw) == msgid_of(msg)
    assert b"Received: from " in raw
    r.wait_all_log(r"%s: to=<alice@example\.org>, relay=local.*"
                   r"status=sent" % qid)


def test_unknown_local_user_refused_at_rcpt(local_relay):
    r = local_relay()
    with smtplib.SMTP(r.host, r.port, timeout=10) as s:
        s.ehlo("client.test")
        s.mail(SENDER)
        code, resp = s.rcpt("bob@example.org")
        assert code == 550, (code, resp)
        assert resp.startswith(b"5.1.1"), resp
        code, _ = s.rcpt("alice@example.org")
        assert code == 250
        s.rset()
    assert r.queue_ids() == []


def test_alias_to_local_and_remote(local_relay, capture):
    remote = capture("127.0.0.7")
    r = local_relay(aliases="# test aliases\nsales: alice, "
                    "carol@remote.test\n")
    msg = make_message(SENDER, ["sales@example.org"])
    qid = r.send("sales@example.org", msg)
    path = os.path.join(r.mailbox_root, "example.org", "alice")
    got = maildir_messages(path, 1)
    assert msgid_of(got[0]) == msgid_of(msg)
    assert b"\nDelivered-To: alice@example.org\n" in got[0]
    rm = r.wait_msgs(remote, 1, 15)
    assert rm[0].rcpt_tos == ["carol@remote.test"]
    assert msgid_of(rm[0].content) == msgid_of(msg)
    r.wait_removed(qid)
    time.sleep(0.3)
    assert len(maildir_messages(path, 1)) == 1
    assert len(remote.messages) == 1
    assert not os.path.exists(os.path.join(r.mailbox_root, "example.org",
                                           "sales")), \
        "the alias itself got a Maildir"


@pytest.mark.parametrize("role", ["postmaster", "abuse"])
def test_role_accounts_always_accepted(local_relay, role):
    r = local_relay(aliases="# nothing for %s here\nother: alice\n" % role)
    addr = "%s@example.org" % role
    msg = make_message(SENDER, [addr])
    qid = r.send(addr, msg)
    path = os.path.join(r.mailbox_root, "example.org", role)
    got = maildir_messages(path, 1)
    assert msgid_of(got[0]) == msgid_of(msg)
    r.wait_removed(qid)


def test_role_account_without_aliases_file(local_relay):
    r = local_relay()
    qid = r.send("Postmaster@example.org")
    got = maildir_messages(os.path.join(r.mailbox_root, "example.org",
                                        "postmaster"), 1)
    assert got
    r.wait_removed(qid)


# --- LMTP -------------------------------------------------------------

def test_lmtp_per_recipient_replies(relay, dns, capture, sender_mx,
                                    tmp_path):
    lmtp = capture("127.0.0.8", lmtp=True, lmtp_replies={
        "full@example.org": "552 5.2.2 <full@example.org>: mailbox full"})
    d = dns(SENDER_RECORDS)
    r = relay(dns=d, local_domains=["example.org"],
              mailbox_root=str(tmp_path / "mail"),
              lmtp_address="127.0.0.8:%d" % lmtp.port)
    msg = make_message(SENDER, ["ok@example.org", "full@example.org"])
    qid = r.send(["ok@example.org", "full@example.org"], msg)
    got = r.wait_msgs(lmtp, 1, 15)
    assert got[0].lmtp
    assert sorted(got[0].rcpt_tos) == ["full@example.org", "ok@example.org"]
    b = r.wait_msgs(sender_mx, 1, 15)
    r.wait_removed(qid)
    rep = Report(b[0].content)
    assert rep.final_recipients() == ["full@example.org"]
    rc = rep.rcpts[0]
    assert rc["action"].lower() == "failed"
    assert rc["status"] == "5.2.2"
    assert "mailbox full" in rc["diagnostic-code"]
    r.wait_all_log(r"%s: to=<ok@example\.org>.*status=sent" % qid)
    time.sleep(0.3)
    assert len(lmtp.messages) == 1 and len(sender_mx.messages) == 1
    assert not os.path.exists(tmp_path / "mail" / "example.org"), \
        "LMTP mail written to a Maildir"


def test_lmtp_temporary_reply_is_retried(relay, dns, capture, sender_mx,
                                         tmp_path):
    lmtp = capture("127.0.0.8", lmtp=True, lmtp_replies={
        "busy@example.org": "451 4.2.0 <busy@example.org>: locked"})
    d = dns(SENDER_RECORDS)
    r = relay(dns=d, local_domains=["example.org"],
              mailbox_root=str(tmp_path / "mail"),
              lmtp_address="127.0.0.8:%d" % lmtp.port)
    qid = r.send(["ok@example.org", "busy@example.org"])
    r.wait_all_log(r"%s: to=<busy@example\.org>.*status=deferred" % qid,
                   timeout=15)
    lmtp.opts["lmtp_replies"] = {}
    got = r.wait_msgs(lmtp, 2, 15)
    assert got[1].rcpt_tos == ["busy@example.org"], \
        [m.rcpt_tos for m in got]
    r.wait_removed(qid)
    assert sender_mx.messages == []
