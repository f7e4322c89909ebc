"""The keys online shares with other plugins (see :class:`otpme_auth.Key`).

Written here, by online: ``OFFLINE_USED_REPORTED``, ``CHALLENGES`` (and the protocol-level
``LOGIN_ANSWER`` and ``GREETING`` of :mod:`otpme_auth.keys`).  Read here, written by
offline (declared alike in ``otpme_auth_offline.keys``): ``OFFLINE_FIRST``,
``PROMPT_HINT``, ``OFFLINE_USED_CODES``; written by smartcard (declared alike in
``otpme_auth_smartcard.keys``): ``SMARTCARD``, ``CHALLENGE_RESPONSE``.
"""

from otpme_auth import Key

OFFLINE_USED_REPORTED = Key("online.offline_used_reported", "the part of offline.used_codes the "
                            "server took; offline then forgets it", list)
CHALLENGES = Key("online.challenges", "the server's challenge methods for this login (the "
                 "pre-auth methods of type hmac or ssh: dicts with type, challenge_id, "
                 "challenge, slot or public_key; docs/protocol.md); set in collect_credentials "
                 "when a server answered", list)
# -- written by smartcard ---------------------------------------------------------
SMARTCARD = Key("smartcard.card", "the one YubiKey connected: {'serial', 'slots', 'touch'}; "
                "online asks for no password when it can answer an hmac challenge", dict)
CHALLENGE_RESPONSE = Key("smartcard.challenge_response", "the card's answer to one of "
                         "online.challenges: {'challenge_id': str, 'response': Secret (hex)}; "
                         "online sends it instead of what was typed", dict)
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
