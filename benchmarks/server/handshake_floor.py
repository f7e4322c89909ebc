"""The handshake floor of goal 3, without sockets: full mutual-TLS 1.3 handshakes in memory.

    /usr/bin/python3 -m venv /tmp/hs && /tmp/hs/bin/pip install pyopenssl
    /tmp/hs/bin/python benchmarks/server/handshake_floor.py [--count 300]

Client and server in one thread, over memory BIOs (no TCP, no kernel), with ECDSA P-256
keys as the realm uses (a CA, a server and a client certificate, the client verified):
Python's ``ssl`` (the system's OpenSSL, 3.0 on Debian bookworm, which the server and the
PAM client use) next to pyOpenSSL (the OpenSSL that the ``cryptography`` wheel bundles,
a newer one) in the same run.  Prints handshakes per second of one core and the CPU time
of one handshake, both sides together.  Session tickets are off: a PAM process never
resumes.  Without pyOpenSSL only the first row is printed.
"""

import argparse
import datetime
import os
import ssl
import tempfile
import time

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def make_keys(d):
    """A P-256 CA, and a server and a client certificate it signed, as PEM files in ``d``."""
    def make(name, issuer=None, issuer_key=None, ca=False):
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = datetime.datetime.now(datetime.timezone.utc)
        builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer or subject)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(days=1))
                   .not_valid_after(now + datetime.timedelta(days=30))
                   .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if not ca:
            builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]),
                                            critical=False)
        cert = builder.sign(issuer_key or key, hashes.SHA256())
        with open(os.path.join(d, name + ".pem"), "wb") as fh:
            fh.write(cert.public_bytes(serialization.Encoding.PEM))
        with open(os.path.join(d, name + ".key"), "wb") as fh:
            fh.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
        return subject, key
    ca_subject, ca_key = make("ca", ca=True)
    make("server", ca_subject, ca_key)
    make("client", ca_subject, ca_key)


def handshake(client, server, want_read, client_to_server, server_to_client):
    """Step both ends until both have finished, moving the bytes between them."""
    done = {"client": False, "server": False}
    while not all(done.values()):
        for name, end, move in (("client", client, client_to_server),
                                ("server", server, server_to_client)):
            if not done[name]:
                try:
                    end.do_handshake()
                    done[name] = True
                except want_read:
                    pass
            move()


def stdlib_handshakes(d, n):
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(f"{d}/server.pem", f"{d}/server.key")
    server.load_verify_locations(f"{d}/ca.pem")
    server.verify_mode = ssl.CERT_REQUIRED
    server.minimum_version = ssl.TLSVersion.TLSv1_3
    server.options |= ssl.OP_NO_TICKET
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client.load_cert_chain(f"{d}/client.pem", f"{d}/client.key")
    client.load_verify_locations(f"{d}/ca.pem")
    for _ in range(n):
        c_in, c_out, s_in, s_out = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
        c = client.wrap_bio(c_in, c_out, server_hostname="server")
        s = server.wrap_bio(s_in, s_out, server_side=True)
        handshake(c, s, ssl.SSLWantReadError, lambda: s_in.write(c_out.read()),
                  lambda: c_in.write(s_out.read()))
        assert s.getpeercert(), "the client certificate was not verified"


def pyopenssl_handshakes(d, n):
    from OpenSSL import SSL
    server = SSL.Context(SSL.TLS_METHOD)
    server.use_certificate_file(f"{d}/server.pem")
    server.use_privatekey_file(f"{d}/server.key")
    server.load_verify_locations(f"{d}/ca.pem")
    server.set_verify(SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT, None)
    server.set_min_proto_version(SSL.TLS1_3_VERSION)
    server.set_options(SSL.OP_NO_TICKET)
    client = SSL.Context(SSL.TLS_METHOD)
    client.use_certificate_file(f"{d}/client.pem")
    client.use_privatekey_file(f"{d}/client.key")
    client.load_verify_locations(f"{d}/ca.pem")
    client.set_verify(SSL.VERIFY_PEER, None)

    def pump(src, dst):
        try:
            dst.bio_write(src.bio_read(65536))
        except SSL.WantReadError:
            pass
    for _ in range(n):
        c = SSL.Connection(client, None)
        c.set_connect_state()
        c.set_tlsext_host_name(b"server")
        s = SSL.Connection(server, None)
        s.set_accept_state()
        handshake(c, s, SSL.WantReadError, lambda: pump(c, s), lambda: pump(s, c))
        assert s.get_peer_certificate() is not None, "the client certificate was not verified"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--count", type=int, default=300, help="handshakes per sample (default 300)")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved samples of each (default 3)")
    args = ap.parse_args()
    cases = [("Python ssl, " + ssl.OPENSSL_VERSION, stdlib_handshakes)]
    try:
        from OpenSSL import SSL
        cases.append(("pyOpenSSL, " + SSL.OpenSSL_version(SSL.OPENSSL_VERSION).decode(),
                      pyopenssl_handshakes))
    except ImportError:
        print("(no pyOpenSSL here: only Python's ssl is measured)")
    with tempfile.TemporaryDirectory() as d:
        make_keys(d)
        results = {name: [] for name, _ in cases}
        for _ in range(args.rounds):
            for name, run in cases:
                run(d, 5)  # warm up: contexts, first handshake
                start = time.process_time()
                run(d, args.count)
                results[name].append((time.process_time() - start) / args.count)
        base = min(results[cases[0][0]])
        print("| TLS library | handshakes/s on one core | CPU ms per handshake (both sides) | vs Python ssl |")
        print("|---|---:|---:|---:|")
        for name, _ in cases:
            best = min(results[name])
            print("| %s | %.0f | %.2f | %.2fx |" % (name, 1 / best, best * 1e3, base / best))


if __name__ == "__main__":
    main()
