"""testssl.sh (Debian's testssl.sh, /usr/bin/testssl) against STARTTLS
on the real daemon: no HIGH or CRITICAL finding.

The server gets a certificate shaped like a real one, so that the
findings are about the TLS set-up and not about a throw-away test
certificate: names for both the host name and 127.0.0.1 (what testssl
connects to), a year of validity, a CRL distribution point, and a CA
that testssl is told to trust (--add-ca).  testssl runs with --nodns
none and without --phone-out: it contacts nothing but 127.0.0.1 (the
CRL URI is never fetched).  It takes about 40 s.
"""
import json
import os
import subprocess
import time

import pytest

import sluice_security_helpers as h

TESTSSL = "/usr/bin/testssl"

LEAF_EXT = """basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:%s,IP:127.0.0.1
crlDistributionPoints = URI:http://127.0.0.1:9/sluice-test-ca.crl
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
""" % h.HOSTNAME


def _run(args, **kw):
    r = subprocess.run(args, capture_output=True, timeout=60, **kw)
    assert r.returncode == 0, "%s: %s" % (" ".join(args), r.stderr)
    return r.stdout


def real_looking_cert(directory):
    certs = h.certs
    old = certs.DAYS
    certs.DAYS = 800
    try:
        ca = certs.make_ca(directory, cn="Sluice testssl CA")
    finally:
        certs.DAYS = old
    key = os.path.join(directory, "leaf.key")
    cert = os.path.join(directory, "leaf.crt")
    ext = os.path.join(directory, "leaf.ext")
    with open(ext, "w") as f:
        f.write(LEAF_EXT)
    old_umask = os.umask(0o077)
    try:
        csr = _run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", key,
                    "-subj", "/CN=" + h.HOSTNAME, "-config",
                    os.path.join(directory, "req.cnf")])
        pem = _run(["openssl", "x509", "-req", "-CA", ca[0], "-CAkey", ca[1],
                    "-set_serial", "0x" + os.urandom(15).hex(), "-days",
                    "365", "-extfile", ext], input=csr)
    finally:
        os.umask(old_umask)
    with open(cert, "wb") as f:
        f.write(pem)
    os.chmod(key, 0o600)
    return ca[0], cert, key


def test_testssl_no_high_findings(secd, tmp_path):
    if not os.access(TESTSSL, os.X_OK):
        pytest.fail("%s is missing: scripts/install-deps installs "
                    "testssl.sh" % TESTSSL)
    pkidir = tmp_path / "pki"
    pkidir.mkdir()
    ca, cert, key = real_looking_cert(str(pkidir))
    d = secd(tls_certificates=[{"cert": cert, "key": key}])
    jsonfile = str(tmp_path / "testssl.json")
    cmd = [TESTSSL, "--starttls", "smtp", "--quiet", "--color", "0",
           "--warnings", "off", "--nodns", "none", "--add-ca", ca,
           "--connect-timeout", "10", "--openssl-timeout", "10",
           "--jsonfile", jsonfile, "127.0.0.1:%d" % d.port]
    t = time.monotonic()
    p = subprocess.run(cmd, capture_output=True, timeout=300,
                       stdin=subprocess.DEVNULL, cwd=str(tmp_path))
    elapsed = time.monotonic() - t
    out = (p.stdout + p.stderr).decode("utf-8", "replace")
    print("testssl took %.0f s" % elapsed)
    assert os.path.exists(jsonfile), "no JSON from testssl (%d):\n%s" % (
        p.returncode, out[-5000:])
    with open(jsonfile) as f:
        findings = json.load(f)
    assert len(findings) > 50, findings
    ids = {x["id"] for x in findings}
    # testssl really got through STARTTLS and looked at the protocols.
    for must in ("TLS1_2", "TLS1_3", "cert_trust", "cert_chain_of_trust"):
        assert must in ids, "testssl did not report %s:\n%s" % (must,
                                                                out[-5000:])
    by_id = {x["id"]: x for x in findings}
    assert by_id["TLS1"]["finding"] == "not offered", by_id["TLS1"]
    assert by_id["TLS1_1"]["finding"] == "not offered", by_id["TLS1_1"]
    assert by_id["TLS1_3"]["finding"].startswith("offered"), by_id["TLS1_3"]
    bad = [x for x in findings if x["severity"] in ("HIGH", "CRITICAL")]
    assert not bad, "testssl findings HIGH/CRITICAL:\n%s" % "\n".join(
        "%s %s: %s" % (x["severity"], x["id"], x["finding"]) for x in bad)
    # Its handshakes leave the daemon running.
    d.assert_alive()
