"""The keys sessionkeep reads from other plugins (see :class:`otpme_auth.Key`).

Read here, written by online (declared alike in ``otpme_auth_online.keys``):
``HOST_DISABLED``.  The protocol-level ``LOGIN_ANSWER`` and ``GREETING`` are in
:mod:`otpme_auth.keys`.
"""

from otpme_auth import Key

# -- written by online ---------------------------------------------------------
HOST_DISABLED = Key("online.host_disabled", "the server answered that this host may not log "
                    "anyone in: its error code, 'host_disabled' (the host is disabled) or "
                    "'host_unknown' (removed from the realm, or joined again elsewhere); the login "
                    "is refused, and offline and sessionkeep drop the host's caches and kept "
                    "sessions in login_failed (docs/offline.md)", str)
