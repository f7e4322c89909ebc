"""``otpme-auth-server radius-config``: a FreeRADIUS configuration for the realm.

FreeRADIUS (Debian ``freeradius`` + ``freeradius-rest``) is the realm's RADIUS server;
it answers the NASes (the clients of ``otpme-auth-admin client add``) and hands every
password to the realm's server over loopback HTTPS (``rlm_rest`` ->
``POST /v1/radius/auth``), authenticated by a client certificate made here for it
alone. The login is the server's own (docs/radius.md): nothing is decided in
FreeRADIUS but "which client asked".

What is written into OUT (a complete, self-contained raddb directory; run it with
``freeradius -d OUT``):

- ``radiusd.conf``, ``dictionary`` (Debian's), ``clients.conf`` (the realm's clients,
  their shared secrets), ``mods-enabled/{rest,eap,always}``, ``sites-enabled/{otpme-auth,
  otpme-auth-inner}`` (PAP, and EAP-TTLS with PAP inside);
- ``certs/ca.pem`` (the realm CA), ``certs/eap.pem``/``eap.key`` (the site certificate:
  CN and subjectAltName ``<site>.<realm>``, what the supplicants' domain-suffix-match
  checks), ``certs/rest.pem``/``rest.key`` (the REST credential, CN ``radius:NAME``,
  whose fingerprint the store records as the radiusserver object NAME).

Running it again makes new keys (the old REST certificate stops working at once) and
picks up clients added or deleted since.
"""

import grp
import ipaddress
import os
import pwd

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

from . import config
from .crypto import _issue, _key_pem, cert_fingerprint, cert_pem, load_ca
from .errors import InvalidValue
from .realm import check_name, client_secret
from .store import Store

DEFAULT_USER = "freerad"   # Debian's freeradius runs as freerad:freerad


def _split_hostport(value: str, default_port: int) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep:
        host, port = value, str(default_port)
    host = host.strip("[]")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise InvalidValue(f"--listen {value!r}: give an IP address (and :PORT)") from None
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise InvalidValue(f"--listen {value!r}: the port must be 1-65535")
    return host, int(port)


def _server_url(cfg) -> str:
    host, port = config.split_listen(cfg["listen"])
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    if host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"https://{host}:{port}"


def _clients(c, box) -> str:
    out = ["# The realm's RADIUS clients (otpme-auth-admin client add/del), written by",
           "# otpme-auth-server radius-config: run it again after adding or deleting one.", ""]
    for name, obj in c.list("client"):
        net = ipaddress.ip_network(obj["address"])
        family = "ipv4addr" if net.version == 4 else "ipv6addr"
        out += [f"client {name} {{",
                f"\t{family} = {net}",
                f"\tsecret = {client_secret(c, box, name)}",   # 32 hex characters
                f"\tshortname = {name}",
                "\tproto = udp",
                "}", ""]
    return "\n".join(out)


RADIUSD = """\
# FreeRADIUS for the otpme-auth realm {realm} (site {site}), written by
# otpme-auth-server radius-config. docs/radius.md says what each part does.
prefix = /usr
exec_prefix = /usr
sysconfdir = /etc
localstatedir = /var
sbindir = /usr/sbin
logdir = {logdir}
raddbdir = {out}
radacctdir = ${{logdir}}/radacct
name = freeradius
confdir = ${{raddbdir}}
modconfdir = ${{confdir}}/mods-config
certdir = ${{confdir}}/certs
cadir = ${{confdir}}/certs
run_dir = {run_dir}
db_dir = ${{raddbdir}}
libdir = /usr/lib/freeradius
pidfile = ${{run_dir}}/${{name}}.pid
max_request_time = 30
cleanup_delay = 5
max_requests = 16384
hostname_lookups = no

log {{
\tdestination = files
\tfile = ${{logdir}}/radius.log
\tsyslog_facility = daemon
\tstripped_names = no
\t# Never a password in the log.
\tauth = yes
\tauth_badpass = no
\tauth_goodpass = no
}}

checkrad = ${{sbindir}}/checkrad

security {{
{security}\tallow_core_dumps = no
\tmax_attributes = 200
\treject_delay = {reject_delay}
\tstatus_server = no
}}

thread pool {{
\tstart_servers = 5
\tmax_servers = 32
\tmin_spare_servers = 3
\tmax_spare_servers = 10
\tmax_requests_per_server = 0
\tauto_limit_acct = no
}}

modules {{
\t$INCLUDE mods-enabled/
}}

instantiate {{
}}

policy {{
}}

$INCLUDE clients.conf
$INCLUDE sites-enabled/
"""

REST = """\
# The realm's server does every check (docs/radius.md): POST /v1/radius/auth over
# loopback HTTPS, with this instance's own client certificate; the server's is checked
# against the realm CA and its name.
rest {{
\ttls {{
\t\tca_info_file = ${{certdir}}/ca.pem
\t\tcertificate_file = ${{certdir}}/rest.pem
\t\tprivate_key_file = ${{certdir}}/rest.key
\t\tcheck_cert = yes
\t\tcheck_cert_cn = yes
\t}}
\tconnect_uri = "{url}"
\tconnect_timeout = 4.0
\tauthenticate {{
\t\turi = "${{..connect_uri}}/v1/radius/auth"
\t\tmethod = 'post'
\t\tbody = 'json'
\t\ttls = ${{..tls}}
\t\t# The server may wait up to 5 s for a failure slot (docs/server.md).
\t\ttimeout = 10.0
\t}}
\tpool {{
\t\t# 0: FreeRADIUS starts while the realm's server is down (requests fail until it is up).
\t\tstart = 0
\t\tmin = 0
\t\tmax = ${{thread[pool].max_servers}}
\t\tspare = 8
\t\tuses = 0
\t\tretry_delay = 1
\t\tlifetime = 0
\t\t# Below the server's idle_timeout (60 s): a kept connection is not one it closed.
\t\tidle_timeout = 50
\t}}
}}
"""

EAP = """\
# EAP-TTLS with PAP inside, and nothing else: the supplicant checks the site certificate
# (ca-cert = the realm CA, domain-suffix-match = {site}.{realm}) before it sends the password.
eap {{
\tdefault_eap_type = ttls
\ttimer_expire = 60
\tignore_unknown_eap_types = no
\tcisco_accounting_username_bug = no
\tmax_sessions = ${{max_requests}}
\ttls-config tls-common {{
\t\tprivate_key_file = ${{certdir}}/eap.key
\t\tcertificate_file = ${{certdir}}/eap.pem
\t\tca_file = ${{certdir}}/ca.pem
\t\tca_path = ${{certdir}}
\t\tcipher_list = "HIGH"
\t\tcipher_server_preference = yes
\t\ttls_min_version = "1.2"
\t\ttls_max_version = "1.3"
\t\tecdh_curve = "prime256v1"
\t\tcache {{
\t\t\tenable = no
\t\t}}
\t}}
\tttls {{
\t\ttls = tls-common
\t\tdefault_eap_type = gtc
\t\tcopy_request_to_tunnel = no
\t\tuse_tunneled_reply = no
\t\tvirtual_server = "otpme-auth-inner"
\t}}
\tgtc {{
\t\tauth_type = rest
\t}}
}}
"""

ALWAYS = """\
always reject {
\trcode = reject
}
"""

SITE = """\
# Access-Requests from the realm's clients: PAP, and EAP-TTLS (PAP inside, in
# otpme-auth-inner). Whatever a NAS sends as FreeRADIUS-Client-Shortname is replaced by
# the name of the client the packet came from (its address and shared secret).
server otpme-auth {{
\tlisten {{
\t\ttype = auth
\t\t{family} = {address}
\t\tport = {port}
\t\tlimit {{
\t\t\tmax_connections = 16
\t\t\tlifetime = 0
\t\t\tidle_timeout = 30
\t\t}}
\t}}
\tauthorize {{
\t\tupdate request {{
\t\t\t&FreeRADIUS-Client-Shortname := "%{{client:shortname}}"
\t\t}}
\t\teap {{
\t\t\tok = return
\t\t}}
\t\tif (&User-Password) {{
\t\t\tupdate control {{
\t\t\t\t&Auth-Type := rest
\t\t\t}}
\t\t}}
\t\telse {{
\t\t\treject
\t\t}}
\t}}
\tauthenticate {{
\t\tAuth-Type rest {{
\t\t\trest
\t\t}}
\t\teap
\t}}
\tpost-auth {{
\t\tPost-Auth-Type REJECT {{
\t\t\teap
\t\t}}
\t}}
}}
"""

INNER = """\
# The inside of EAP-TTLS: the user's PAP password goes to the realm's server, as the
# client of the outer packet.
server otpme-auth-inner {{
\tauthorize {{
\t\tupdate request {{
\t\t\t&FreeRADIUS-Client-Shortname := "%{{client:shortname}}"
\t\t}}
\t\tif (&User-Password) {{
\t\t\tupdate control {{
\t\t\t\t&Auth-Type := rest
\t\t\t}}
\t\t}}
\t\telse {{
\t\t\treject
\t\t}}
\t}}
\tauthenticate {{
\t\tAuth-Type rest {{
\t\t\trest
\t\t}}
\t}}
\tpost-auth {{
\t}}
}}
"""


def _write(path: str, data, mode: int, gid: int | None) -> None:
    if isinstance(data, str):
        data = data.encode()
    tmp = f"{path}.tmp{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, data)
        if gid is not None:
            os.fchown(fd, -1, gid)
        os.fchmod(fd, mode)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def write_config(directory: str, out: str, name: str = "freeradius", listen: str = "127.0.0.1:1812",
                 user: str | None = DEFAULT_USER, run_dir: str = "/var/run/freeradius",
                 log_dir: str = "/var/log/freeradius", reject_delay: int = 1,
                 server_url: str | None = None) -> dict:
    """Write the raddb directory ``out`` for the realm in ``directory``; returns a summary.

    ``user``: the account FreeRADIUS runs as (files are group-readable by its group);
    None or "": FreeRADIUS keeps the user it is started as.
    """
    check_name("radiusserver", name)
    address, port = _split_hostport(listen, 1812)
    cfg = config.load(os.path.abspath(directory))
    gid = None
    security = ""
    if user:
        try:
            pw = pwd.getpwnam(user)
        except KeyError:
            raise InvalidValue(f"--user {user!r}: no such user (Debian's freeradius runs as "
                               f"{DEFAULT_USER}; give --user '' to keep the starting user)") from None
        gid = pw.pw_gid
        security = f"\tuser = {user}\n\tgroup = {grp.getgrgid(gid).gr_name}\n"
    if not 0 <= reject_delay <= 5:
        raise InvalidValue("--reject-delay must be 0-5 seconds")
    realm, site = cfg["realm"], cfg["site"]
    ca_key, ca_cert = load_ca(cfg.dir)
    eap_key = ec.generate_private_key(ec.SECP256R1())
    eap_cert = _issue(ca_key, ca_cert, eap_key.public_key(), f"{site}.{realm}", 825, True,
                      [f"{site}.{realm}"])
    rest_key = ec.generate_private_key(ec.SECP256R1())
    rest_cert = _issue(ca_key, ca_cert, rest_key.public_key(), f"radius:{name}", 825, False)
    out = os.path.abspath(out)
    for sub in ("", "certs", "mods-enabled", "sites-enabled"):
        d = os.path.join(out, sub)
        os.makedirs(d, mode=0o750, exist_ok=True)
        if gid is not None:
            os.chown(d, -1, gid)
        os.chmod(d, 0o750)
    store = Store(cfg.db)
    try:
        with store.session() as c:
            from .crypto import SecretBox
            box = SecretBox.from_dir(cfg.dir)
            clients = _clients(c, box)
            n_clients = len(c.list("client"))
            with c.transaction():
                obj = {"cert": cert_fingerprint(rest_cert.public_bytes(Encoding.DER))}
                if c.get("radiusserver", name) is None:
                    c.insert("radiusserver", name, obj)
                else:
                    c.update("radiusserver", name, obj)
    finally:
        store.close()
    family = "ipv6addr" if ":" in address else "ipv4addr"
    files = {
        "radiusd.conf": RADIUSD.format(realm=realm, site=site, out=out, run_dir=run_dir,
                                       logdir=log_dir, security=security, reject_delay=reject_delay),
        "dictionary": "$INCLUDE /usr/share/freeradius/dictionary\n",
        "clients.conf": clients,
        "mods-enabled/rest": REST.format(url=server_url or _server_url(cfg)),
        "mods-enabled/eap": EAP.format(site=site, realm=realm),
        "mods-enabled/always": ALWAYS,
        "sites-enabled/otpme-auth": SITE.format(family=family, address=address, port=port),
        "sites-enabled/otpme-auth-inner": INNER.format(),
    }
    for rel, text in files.items():
        _write(os.path.join(out, rel), text, 0o640, gid)
    _write(os.path.join(out, "certs", "ca.pem"), cert_pem(ca_cert), 0o644, gid)
    _write(os.path.join(out, "certs", "eap.pem"), cert_pem(eap_cert), 0o644, gid)
    _write(os.path.join(out, "certs", "eap.key"), _key_pem(eap_key), 0o640, gid)
    _write(os.path.join(out, "certs", "rest.pem"), cert_pem(rest_cert), 0o644, gid)
    _write(os.path.join(out, "certs", "rest.key"), _key_pem(rest_key), 0o640, gid)
    return {"out": out, "clients": n_clients, "listen": f"{address}:{port}",
            "domain": f"{site}.{realm}", "server": server_url or _server_url(cfg)}
