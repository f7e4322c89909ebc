"""Issue 8, points 8-10: a peer without a certificate cannot starve joined hosts,
joins cannot stall logins, and no bad input gives a 5xx."""

import json
import os
import resource
import socket
import ssl
import subprocess
import sys
import time

from srvkit import ServerProc, adm_ok, join, make_realm, shown_jotp, free_port

ATTACKER = r'''
import socket, ssl, sys, time
port, ca, n_tls, n_tcp, hold = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
ctx = ssl.create_default_context(cafile=ca); ctx.check_hostname = False
held = []
deadline = time.monotonic() + 60          # bounded in time as well as in count
for i in range(n_tls + n_tcp):
    if time.monotonic() > deadline:
        break
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        if i < n_tls:
            s = ctx.wrap_socket(s)
            s.sendall(b"POST /v1/auth HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n")
        held.append(s)
    except OSError:
        pass
print("held", len(held), flush=True)
time.sleep(hold)
'''


def _limit_nofile():
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))


def test_host_served_while_attacker_holds_1100_stalled_connections(tmp_path):
    d = make_realm(tmp_path)
    adm_ok(d, "user", "add", "--no-login-token", "alice")
    adm_ok(d, "token", "add", "--type", "password", "alice/pw", "-", stdin="secret pw\n")
    jotp = shown_jotp(adm_ok(d, "host", "add", "h1"))
    adm_ok(d, "host", "add_token", "h1", "alice/pw")
    port = free_port()
    log = open(os.path.join(d, "soft1024.log"), "w+")
    srv = subprocess.Popen([sys.executable, "-m", "otpme_auth_server.cli", "run", "--dir", d,
                            "--listen", f"127.0.0.1:{port}", "--log-level", "INFO"],
                           stdout=log, stderr=subprocess.STDOUT, preexec_fn=_limit_nofile)
    attacker = None
    try:
        from otpme_auth.testing.procs import wait_for_port
        assert wait_for_port(srv, port)
        h1 = join(port, d, "h1", jotp, str(tmp_path / "h1"))
        attacker = subprocess.Popen([sys.executable, "-c", ATTACKER, str(port), os.path.join(d, "ca.pem"),
                                     "600", "500", "120"], stdout=subprocess.PIPE, text=True,
                                    preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (4096, 4096)))
        assert attacker.stdout.readline().startswith("held")
        # The attacker holds its sockets: a real login through the protocol still works.
        h1.close()
        assert h1.preauth("alice")[0] == 200
        status, body = h1.auth("alice", "secret pw")
        assert (status, body["status"]) == (200, "ok"), body
        h1.close()
        assert srv.poll() is None
        log.flush()
        text = open(log.name).read()
        assert "Too many open files" not in text and "Traceback" not in text, text[-2000:]
    finally:
        if attacker is not None:
            attacker.kill()
            attacker.wait()
        srv.terminate()
        srv.wait(30)
        log.close()


def test_stalled_body_is_closed_after_body_timeout(tmp_path):
    d = make_realm(tmp_path)
    path = os.path.join(d, "server.json")
    cfg = json.load(open(path))
    cfg["body_timeout"] = 1
    json.dump(cfg, open(path, "w"))
    port = int(cfg["listen"].rsplit(":", 1)[1])
    s = ServerProc(d, port)
    try:
        ctx = ssl.create_default_context(cafile=os.path.join(d, "ca.pem"))
        ctx.check_hostname = False
        with ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=30)) as t:
            t.sendall(b"POST /v1/auth HTTP/1.1\r\nContent-Length: 1000\r\n\r\n{")
            out = b""
            while chunk := t.recv(65536):
                out += chunk
        assert out.startswith(b"HTTP/1.1 408") and b'"timeout"' in out, out
    finally:
        s.stop()
