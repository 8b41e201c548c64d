"""Smarthost and routes: STARTTLS, AUTH, tls = "required" against a
self-signed certificate, a per-domain route (test 3 of the M2 brief)."""
import time

from relay_helpers import SENDER, SENDER_RECORDS, make_message, msgid_of

USER, PASSWORD = "relay@snd.test", "s3cret-pw"


def test_smarthost_auth_over_starttls(dns, capture, relay, mx_port):
    d = dns(SENDER_RECORDS)
    sh = capture("127.0.0.5", starttls=True, auth=(USER, PASSWORD),
                 auth_mechanisms=("PLAIN",))
    r = relay(dns=d, smarthost={"host": "127.0.0.5", "port": mx_port,
                                "tls": "opportunistic", "auth_user": USER,
                                "auth_password": PASSWORD})
    msg = make_message(SENDER, ["far@elsewhere.test"])
    qid = r.send("far@elsewhere.test", msg)
    got = r.wait_msgs(sh, 1, 15)
    m = got[0]
    assert m.tls, "smarthost reached without TLS"
    assert m.auth_login == USER
    assert m.rcpt_tos == ["far@elsewhere.test"]
    assert m.mail_from == SENDER
    assert msgid_of(m.content) == msgid_of(msg)
    r.wait_removed(qid)
    assert PASSWORD not in r.log_text(all_runs=True), \
        "the AUTH password is in the log"


def test_smarthost_tls_required_self_signed_defers(dns, capture, relay,
                                                   mx_port):
    d = dns(SENDER_RECORDS)
    sh = capture("127.0.0.5", starttls=True, auth=(USER, PASSWORD))
    r = relay(dns=d, smarthost={"host": "127.0.0.5", "port": mx_port,
                                "tls": "required", "auth_user": USER,
                                "auth_password": PASSWORD})
    qid = r.send("far@elsewhere.test")
    line = r.wait_all_log(r"%s: to=<far@elsewhere\.test>.*status=deferred"
                          % qid, timeout=15)
    assert "4.7.5" in line.string, line.string
    time.sleep(1.5)                 # a retry or two
    assert sh.messages == [], "delivered over an unverified TLS session"
    assert qid in r.queue_ids()
    assert not [l for l in r.lines_of(qid) if "status=sent" in l]


def test_route_sends_one_domain_via_its_own_host(dns, capture, relay,
                                                 mx_port):
    d = dns(["mx.test MX 10 a.mx.test", "a.mx.test A 127.0.0.2",
             "partner.test MX 10 a.partner.test",
             "a.partner.test A 127.0.0.3"] + SENDER_RECORDS)
    mx = capture("127.0.0.2")
    partner_mx = capture("127.0.0.3")
    gw = capture("127.0.0.6", starttls=True, auth=(USER, PASSWORD))
    r = relay(dns=d, routes=[{"domain": "partner.test", "host": "127.0.0.6",
                              "port": mx_port, "tls": "opportunistic",
                              "auth_user": USER,
                              "auth_password": PASSWORD}])
    q1 = r.send("a@partner.test")
    q2 = r.send("b@mx.test")
    g = r.wait_msgs(gw, 1, 15)
    m = r.wait_msgs(mx, 1, 15)
    assert g[0].rcpt_tos == ["a@partner.test"] and g[0].auth_login == USER
    assert g[0].tls
    assert m[0].rcpt_tos == ["b@mx.test"] and m[0].auth_login is None
    r.wait_removed(q1)
    r.wait_removed(q2)
    assert len(gw.messages) == 1 and len(mx.messages) == 1
    assert partner_mx.messages == [], "the route was ignored"


def test_route_wins_over_smarthost(dns, capture, relay, mx_port):
    d = dns(SENDER_RECORDS)
    sh = capture("127.0.0.5")
    gw = capture("127.0.0.6")
    r = relay(dns=d,
              smarthost={"host": "127.0.0.5", "port": mx_port, "tls": "none"},
              routes=[{"domain": ".partner.test", "host": "127.0.0.6",
                       "port": mx_port, "tls": "none"}])
    r.send("x@sub.partner.test")
    r.send("y@other.test")
    g = r.wait_msgs(gw, 1, 15)
    s = r.wait_msgs(sh, 1, 15)
    r.wait_queue_empty()
    assert [m.rcpt_tos for m in g] == [["x@sub.partner.test"]]
    assert [m.rcpt_tos for m in s] == [["y@other.test"]]
