"""The keys offline shares with other plugins (see :class:`otpme_auth.Key`).

Written here, by offline: ``OFFLINE_FIRST``, ``PROMPT_HINT``, ``OFFLINE_USED_CODES``.
Read here, written by online (declared alike in ``otpme_auth_online.keys``):
``OFFLINE_USED_REPORTED``, ``HOST_DISABLED``.
"""

from otpme_auth import Key

OFFLINE_FIRST = Key("offline.first", "set (to a reason) in pre-auth when offline will answer "
                    "from the cache without the server (unlock_via_offline_token); the online "
                    "plugin then does not contact the server", str)
PROMPT_HINT = Key("offline.prompt_hint", "the prompt for the main secret when no server can "
                  "word it (e.g. 'Password+OTP: ' for a cached token with a second factor); "
                  "set in pre-auth from the cache", str)
OFFLINE_USED_CODES = Key("offline.used_codes", "the one-time codes this host accepted offline "
                         "and has not yet reported to the server: a list of {'token': name, "
                         "'counter': n} (docs/protocol.md)", list)
# -- written by online ---------------------------------------------------------
OFFLINE_USED_REPORTED = Key("online.offline_used_reported", "the part of offline.used_codes the "
                            "server took; offline then forgets it", list)
HOST_DISABLED = Key("online.host_disabled", "the server answered that this host may not log "
                    "anyone in: its error code, 'host_disabled' (the host is disabled) or "
                    "'host_unknown' (removed from the realm, or joined again elsewhere); the login "
                    "is refused, and offline and sessionkeep drop the host's caches and kept "
                    "sessions in login_failed (docs/offline.md)", str)
