"""Test certificates made with the openssl command line.

    ca = make_ca(tmpdir)                        # (ca_cert_path, ca_key_path)
    cert, key = make_cert(tmpdir, ca, ["mx.test", "*.example.net"])

The first name is the subject CN; every name is a subjectAltName DNS
entry (an IP address literal becomes an IP entry).  Keys are EC P-256
unless key="rsa" (2048 bits), unencrypted, mode 0600 from the start, as
sluice refuses keys that group or others can read.  Certificates are
good for 30 days and usable for both server and client authentication.
tests/unit/test_tls.c makes the same shape of files in C.  Standard
library only.
"""
import ipaddress
import os
import re
import secrets
import subprocess

OPENSSL = "openssl"
DAYS = 30
KEY_ARGS = {
    "ec": ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
    "rsa": ["-newkey", "rsa:2048"],
}
REQ_CNF = """[req]
distinguished_name = dn
[dn]
[ca_ext]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
"""
LEAF_EXT = """basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature{extra_usage}
extendedKeyUsage = serverAuth,clientAuth
subjectAltName = {san}
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""


def _run(args, stdin=None):
    r = subprocess.run(args, input=stdin, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, check=False)
    if r.returncode != 0:
        raise RuntimeError("%s failed: %s" % (" ".join(args),
                                              r.stderr.decode(errors="replace")))
    return r.stdout


def _stem(name):
    """A file name for a DNS name: "*.example.net" -> "star.example.net"."""
    return re.sub(r"[^A-Za-z0-9.-]", "_", name.replace("*", "star"))


def _req_cnf(directory):
    path = os.path.join(directory, "req.cnf")
    if not os.path.exists(path):
        with open(path, "w") as f:
            f.write(REQ_CNF)
    return path


def _san(names):
    out = []
    for n in names:
        try:
            ipaddress.ip_address(n)
            out.append("IP:" + n)
        except ValueError:
            out.append("DNS:" + n)
    return ",".join(out)


def _serial():
    return "0x" + secrets.token_hex(15)


def make_ca(directory, cn="Sluice Test CA", key="ec"):
    """A self-signed CA in directory; returns (cert_path, key_path)."""
    cert = os.path.join(directory, "ca.crt")
    keyp = os.path.join(directory, "ca.key")
    old = os.umask(0o077)
    try:
        _run([OPENSSL, "req", "-x509", *KEY_ARGS[key], "-nodes",
              "-keyout", keyp, "-out", cert, "-days", str(DAYS),
              "-subj", "/CN=" + cn, "-set_serial", _serial(),
              "-config", _req_cnf(directory), "-extensions", "ca_ext"])
    finally:
        os.umask(old)
    os.chmod(keyp, 0o600)
    os.chmod(cert, 0o644)
    return cert, keyp


def make_cert(directory, ca, names, key="ec", chain=False):
    """A leaf signed by ca (from make_ca) for names.

    Returns (cert_path, key_path); with chain=True the certificate file
    holds the leaf followed by the CA certificate.
    """
    if isinstance(names, str):
        names = [names]
    if not names:
        raise ValueError("make_cert: no names")
    ca_cert, ca_key = ca
    stem = os.path.join(directory, _stem(names[0]))
    cert, keyp, ext = stem + ".crt", stem + ".key", stem + ".ext"
    with open(ext, "w") as f:
        f.write(LEAF_EXT.format(
            san=_san(names),
            extra_usage=",keyEncipherment" if key == "rsa" else ""))
    old = os.umask(0o077)
    try:
        csr = _run([OPENSSL, "req", "-new", *KEY_ARGS[key], "-nodes",
                    "-keyout", keyp, "-subj", "/CN=" + names[0],
                    "-config", _req_cnf(directory)])
        pem = _run([OPENSSL, "x509", "-req", "-CA", ca_cert,
                    "-CAkey", ca_key, "-set_serial", _serial(),
                    "-days", str(DAYS), "-extfile", ext], stdin=csr)
    finally:
        os.umask(old)
    if chain:
        with open(ca_cert, "rb") as f:
            pem += f.read()
    with open(cert, "wb") as f:
        f.write(pem)
    os.chmod(keyp, 0o600)
    os.chmod(cert, 0o644)
    os.unlink(ext)
    return cert, keyp


if __name__ == "__main__":
    import sys
    import tempfile

    d = sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp()
    c = make_ca(d)
    print(c[0], c[1])
    print(*make_cert(d, c, sys.argv[2:] or ["mx.test"]))
