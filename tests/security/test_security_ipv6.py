"""IPv6 listeners and the relay policy for IPv6 clients (M3: listeners
are IPv4 and IPv6; relay_networks holds both families)."""
import smtplib

from sluice_test_helpers.sluiced import free_port


def v6_listeners():
    port = free_port()
    return port, [{"role": "smtp"},
                  {"role": "smtp", "address": "[::1]:%d" % port}]


def test_ipv6_listener_accepts_and_records_the_client(secd):
    port, listeners = v6_listeners()
    d = secd(listeners=listeners)
    with smtplib.SMTP("::1", port, timeout=10) as s:
        code, _ = s.ehlo("client.test")
        assert code == 250
        assert s.sendmail("a@example.com", ["b@remote.test"],
                          b"Subject: v6\r\n\r\nhi\r\n") == {}
    d.wait_log(r"connect from unknown\[::1\]")
    qid = d.queue_ids()[-1]
    assert b"(unknown [::1])" in d.message(qid).raw


def test_ipv6_client_outside_relay_networks_is_denied(secd):
    port, listeners = v6_listeners()
    d = secd(listeners=listeners, relay_networks=["127.0.0.0/8"])
    with smtplib.SMTP("::1", port, timeout=10) as s:
        s.ehlo("client.test")
        assert s.mail("a@example.com")[0] == 250
        code, msg = s.rcpt("b@remote.test")
        assert code == 554 and b"5.7.1" in msg, (code, msg)
    # ...while the IPv4 loopback, trusted, may relay.
    with smtplib.SMTP("127.0.0.1", d.ports[0], timeout=10) as s:
        s.ehlo("client.test")
        assert s.mail("a@example.com")[0] == 250
        assert s.rcpt("b@remote.test")[0] == 250


def test_ipv6_network_in_relay_networks_may_relay(secd):
    port, listeners = v6_listeners()
    d = secd(listeners=listeners, relay_networks=["::1/128"])
    with smtplib.SMTP("::1", port, timeout=10) as s:
        s.ehlo("client.test")
        assert s.mail("a@example.com")[0] == 250
        assert s.rcpt("b@remote.test")[0] == 250
    with smtplib.SMTP("127.0.0.1", d.ports[0], timeout=10) as s:
        s.ehlo("client.test")
        assert s.mail("a@example.com")[0] == 250
        assert s.rcpt("b@remote.test")[0] == 554
