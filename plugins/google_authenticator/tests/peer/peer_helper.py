"""Run the real pam_google_authenticator.so on a secret file, at a chosen time.

Uses Debian's ``libpam-google-authenticator``, ``pamtester``, ``libpam-wrapper``
(so the PAM service file lives in a temporary directory, not /etc/pam.d) and
``libfaketime`` (a frozen clock).  Nothing outside the given directory is touched.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time

LIBDIR = "/usr/lib/x86_64-linux-gnu"
MODULE = f"{LIBDIR}/security/pam_google_authenticator.so"
PAM_WRAPPER = f"{LIBDIR}/libpam_wrapper.so"
FAKETIME = f"{LIBDIR}/faketime/libfaketime.so.1"
SET_ITEMS = f"{LIBDIR}/pam_wrapper/pam_set_items.so"
PROMPTS = ("Verification code: ", "Password & verification code: ")


def peer_available() -> bool:
    """True when the peer module and every tool needed to drive it are installed."""
    return (shutil.which("pamtester") is not None
            and all(os.path.exists(p) for p in (MODULE, PAM_WRAPPER, FAKETIME, SET_ITEMS)))


def run_peer(workdir, data: bytes, response: str, now: int, options=(), rhost=None, authtok=None):
    """Authenticate once with the peer.

    :param workdir: a private directory (a pytest ``tmp_path``)
    :param data: the secret file content before the login
    :param response: what the user types at the prompt
    :param now: the frozen Unix time the module sees
    :param options: extra module arguments (``noskewadj``, ``grace_period=60`` ...)
    :param rhost: PAM_RHOST, if any
    :param authtok: PAM_AUTHTOK set by a module stacked before (for
        ``try_first_pass``/``use_first_pass``), if any
    :returns: ``(success, file content after the login, prompted)``
    """
    workdir = os.fspath(workdir)
    secret = os.path.join(workdir, "secret")
    if os.path.exists(secret):
        os.chmod(secret, 0o600)
    with open(secret, "wb") as fh:
        fh.write(data)
    os.chmod(secret, 0o600)
    services = os.path.join(workdir, "services")
    os.makedirs(services, exist_ok=True)
    with open(os.path.join(services, "gapeer"), "w") as fh:
        if authtok is not None:
            fh.write(f"auth optional {SET_ITEMS}\n")
        # user=<our uid>: the module then needs no passwd entry for the PAM user
        # and accepts a file we own, so this runs without root too.
        fh.write(f"auth required {MODULE} secret={secret} user={os.getuid()} {' '.join(options)}\n")
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LD_PRELOAD": f"{PAM_WRAPPER} {FAKETIME}",
        "PAM_WRAPPER": "1",
        "PAM_WRAPPER_SERVICE_DIR": services,
        "FAKETIME": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(now)),
        "FAKETIME_NO_CACHE": "1",
        "TZ": "UTC",
    }
    if authtok is not None:
        env["PAM_AUTHTOK"] = authtok
    argv = ["pamtester"]
    if rhost is not None:
        argv += ["-I", f"rhost={rhost}"]
    argv += ["gapeer", "root", "authenticate"]
    proc = subprocess.run(argv, input=response + "\n", env=env, capture_output=True, text=True,
                          timeout=30)
    with open(secret, "rb") as fh:
        after = fh.read()
    output = proc.stdout + proc.stderr
    return proc.returncode == 0, after, any(prompt in output for prompt in PROMPTS)
