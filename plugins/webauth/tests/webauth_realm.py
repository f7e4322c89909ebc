"""A throwaway MIT Kerberos realm and a real remctld on 127.0.0.1, for the webauth tests.

``Realm(tmp)`` makes krb5.conf/kdc.conf, a database, the principals and keytabs,
and starts ``krb5kdc``; ``realm.remctld(conf)`` starts remctld serving a
``webkdc-validate`` command (``userinfo_service.py``).  Everything lives in the
temp dir; ``stop()`` ends the daemons by their pids.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time

REALM = "WEBAUTH.TEST"
SERVICE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "userinfo_service.py")
TOOLS = ("kdb5_util", "kadmin.local", "krb5kdc", "remctld")


def missing_tools():
    return [t for t in TOOLS if shutil.which(t) is None and not os.path.exists("/usr/sbin/" + t)]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tool(name):
    return shutil.which(name) or "/usr/sbin/" + name


def wait_port(port, proc, what, timeout=15):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError("%s exited with %s" % (what, proc.returncode))
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("%s did not listen on %d" % (what, port))


def realm_fixture(tmp_path_factory):
    """Body of a module-scoped fixture: skip (fail in CI) without the tools, else a Realm."""
    from otpme_auth.testing import skip_or_fail
    missing = missing_tools()
    if missing:
        skip_or_fail("webauth tests need %s (krb5-kdc, krb5-admin-server, remctl-server)" % missing)
    return Realm(tmp_path_factory.mktemp("realm"))


class Realm:
    def __init__(self, directory):
        self.dir = str(directory)
        self.procs = []
        self.kdc_port = free_port()
        self.krb5_conf = os.path.join(self.dir, "krb5.conf")
        self.kdc_conf = os.path.join(self.dir, "kdc.conf")
        self.write_krb5_conf()
        with open(self.kdc_conf, "w") as fh:
            fh.write("[kdcdefaults]\n kdc_listen = 127.0.0.1:%d\n kdc_tcp_listen = 127.0.0.1:%d\n"
                     "[realms]\n %s = {\n  database_name = %s/principal\n"
                     "  key_stash_file = %s/stash\n  acl_file = %s/kadm5.acl\n"
                     "  supported_enctypes = aes256-cts-hmac-sha1-96:normal\n }\n"
                     % (self.kdc_port, self.kdc_port, REALM, self.dir, self.dir, self.dir))
        self.env = dict(os.environ, KRB5_CONFIG=self.krb5_conf, KRB5_KDC_PROFILE=self.kdc_conf,
                        KRB5CCNAME="FILE:%s/ccache" % self.dir)
        self.env.pop("KRB5_KTNAME", None)
        subprocess.run([_tool("kdb5_util"), "create", "-s", "-r", REALM, "-P", "master-%d" % os.getpid()],
                       env=self.env, check=True, capture_output=True)
        self.server_keytab = os.path.join(self.dir, "server.keytab")
        self.client_keytab = os.path.join(self.dir, "client.keytab")
        self.other_keytab = os.path.join(self.dir, "other.keytab")
        self.kadmin("addprinc -randkey host/localhost", "addprinc -randkey host/elsewhere",
                    "addprinc -randkey host/client.webauth.test",
                    "addprinc -randkey stranger",
                    "ktadd -k %s host/localhost" % self.server_keytab,
                    "ktadd -k %s host/client.webauth.test" % self.client_keytab,
                    "ktadd -k %s stranger" % self.other_keytab)
        proc = subprocess.Popen([_tool("krb5kdc"), "-n", "-r", REALM], env=self.env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.procs.append(proc)
        wait_port(self.kdc_port, proc, "krb5kdc")

    def write_krb5_conf(self, appdefaults=""):
        with open(self.krb5_conf, "w") as fh:
            fh.write("[libdefaults]\n default_realm = %s\n dns_lookup_kdc = false\n"
                     " dns_lookup_realm = false\n dns_canonicalize_hostname = false\n rdns = false\n"
                     " udp_preference_limit = 1\n"
                     "[realms]\n %s = {\n  kdc = 127.0.0.1:%d\n }\n"
                     "[domain_realm]\n localhost = %s\n"
                     "%s" % (REALM, REALM, self.kdc_port, REALM, appdefaults))

    def kadmin(self, *queries):
        for q in queries:
            subprocess.run([_tool("kadmin.local"), "-r", REALM, "-q", q], env=self.env, check=True,
                           capture_output=True)

    def remctld(self, log, port=None, acl="ANYUSER", service_env=None, stdin="last"):
        """Start remctld serving ``webauth webkdc-validate``; returns its port."""
        port = port or free_port()
        conf = os.path.join(self.dir, "remctl-%d.conf" % port)
        wrapper = os.path.join(self.dir, "service-%d.sh" % port)
        with open(wrapper, "w") as fh:
            env = " ".join("%s=%s" % kv for kv in (service_env or {}).items())
            fh.write("#!/bin/sh\nexec env USERINFO_LOG=%s %s %s %s \"$@\"\n"
                     % (log, env, sys.executable, SERVICE))
        os.chmod(wrapper, 0o755)
        with open(conf, "w") as fh:
            fh.write("webauth webkdc-validate %s stdin=%s %s\n" % (wrapper, stdin, acl))
        proc = subprocess.Popen([_tool("remctld"), "-m", "-F", "-S", "-p", str(port), "-b", "127.0.0.1",
                                 "-k", self.server_keytab, "-s", "host/localhost@%s" % REALM,
                                 "-f", conf],
                                env=self.env, stdout=subprocess.DEVNULL,
                                stderr=open(os.path.join(self.dir, "remctld-%d.log" % port), "w"))
        self.procs.append(proc)
        wait_port(port, proc, "remctld")
        return port

    def stop(self):
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        self.procs = []
