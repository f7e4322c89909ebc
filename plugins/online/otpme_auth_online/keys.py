"""The keys online shares with other plugins (see :class:`otpme_auth.Key`).

Written here, by online: ``HOST_DISABLED``, ``OFFLINE_USED_REPORTED``, ``CHALLENGES`` (and
the protocol-level ``LOGIN_ANSWER`` and ``GREETING`` of :mod:`otpme_auth.keys`).  Defined
here, written by the responder plugin that answers one of ``CHALLENGES``:
``CHALLENGE_RESPONSE``.  Read here, written by
offline (declared alike in ``otpme_auth_offline.keys``): ``OFFLINE_FIRST``,
``PROMPT_HINT``, ``OFFLINE_USED_CODES``, ``OFFLINE_CHALLENGES``; written by smartcard
(declared alike in
``otpme_auth_smartcard.keys``): ``SMARTCARD``; written by sshagent (declared alike in
``otpme_auth_sshagent.keys``): ``SSHAGENT_KEYS``.
"""

from otpme_auth import Key

HOST_DISABLED = Key("online.host_disabled", "the server answered that this host may not log "
                    "anyone in: its error code, 'host_disabled' (the host is disabled) or "
                    "'host_unknown' (removed from the realm, or joined again elsewhere); the login "
                    "is refused, and offline and sessionkeep drop the host's caches and kept "
                    "sessions in login_failed (docs/offline.md)", str)
OFFLINE_USED_REPORTED = Key("online.offline_used_reported", "the part of offline.used_codes the "
                            "server took; offline then forgets it", list)
CHALLENGES = Key("online.challenges", "the server's challenge methods for this login (the "
                 "pre-auth methods of type hmac or ssh: dicts with type, challenge_id, "
                 "challenge, slot or public_key; docs/protocol.md); set in collect_credentials "
                 "when a server answered", list)
CHALLENGE_RESPONSE = Key("online.challenge_response", "the answer to one of online.challenges, "
                         "written by the responder plugin that answered it (smartcard, "
                         "sshagent) in credentials_collected: {'challenge_id': str, "
                         "'response': Secret}; online sends it instead of what was typed", dict)
# -- written by smartcard ---------------------------------------------------------
SMARTCARD = Key("smartcard.card", "the one YubiKey connected: {'serial', 'slots', 'touch'}; "
                "online asks for no password when it can answer an hmac challenge", dict)
# -- written by sshagent ----------------------------------------------------------
SSHAGENT_KEYS = Key("sshagent.keys", "the public keys the user's ssh-agent holds and sshagent "
                    "would sign with, each 'type base64-blob' (the first two fields of an "
                    "authorized_keys line); online asks for no password when the server's ssh "
                    "challenge names one of them", list)
# -- written by offline -----------------------------------------------------------
OFFLINE_FIRST = Key("offline.first", "offline answers from the cache: do not contact the "
                    "server (the value says why)", str)
PROMPT_HINT = Key("offline.prompt_hint", "how to word the prompt when no server can", str)
OFFLINE_USED_CODES = Key("offline.used_codes", "codes used offline, to report with the "
                         "pre-auth", list)
# -- written by dot1x -------------------------------------------------------------
DOT1X_PENDING = Key("dot1x.pending", "the link is down until 802.1x brings it up with the typed "
                    "credential: do not contact the server before otpme_auth_credentials_collected "
                    "(the value says why)", str)
DOT1X_LINK_UP = Key("dot1x.link_up", "802.1x brought the link up after the prompt (in "
                    "otpme_auth_credentials_collected): a server unreachable before may answer now",
                    bool)
OFFLINE_CHALLENGES = Key("offline.challenges", "offline ssh logins: one method per authentic, "
                         "unexpired ssh record of the user; with no server, online asks for "
                         "nothing when the agent (sshagent.keys) holds one of their keys, or the "
                         "connected card (smartcard.card) has the slot of a cached card token "
                         "({'type': 'hmac', 'slot'})", list)
