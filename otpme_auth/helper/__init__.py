"""The privileged check helper: how a PAM module running as the user (a screen locker)
checks that user's own credentials against the host key and the root-only offline cache.

* :mod:`.protocol` - the request and the reply, parsed strictly (both sides use it);
* :mod:`.client` - the stand-in verifier the login path uses when it is not root;
* :mod:`.service` - the root service (``otpme-auth helper``), socket-activated by systemd.

The design, and why a socket service rather than a setuid program: docs/lockers.md.
"""

DEFAULT_SOCKET = "/run/otpme-auth/helper.sock"
