"""The keys offline shares with other plugins (see :class:`otpme_auth.Key`).

Written here, by offline: ``OFFLINE_FIRST``, ``PROMPT_HINT``, ``OFFLINE_USED_CODES``,
``OFFLINE_CHALLENGES`` (and ``OFFLINE_CHALLENGE_RESPONSE``, defined here and written by the
responder, sshagent, declared alike in ``otpme_auth_sshagent.keys``).
Read here, written by online (declared alike in ``otpme_auth_online.keys``):
``OFFLINE_USED_REPORTED``, ``HOST_DISABLED``.
"""

from collections.abc import Callable

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
OFFLINE_CHALLENGES = Key("offline.challenges", "offline ssh logins: one method per authentic, "
                         "unexpired ssh record of the user, {'type': 'ssh', 'challenge_id', "
                         "'challenge': 64 hex digits (a fresh nonce), 'public_key'}, the shape of "
                         "the server's ssh method; and one per card-token cache, {'type': 'hmac', 'token', "
                         "'slot', 'serial'} (the card answers in verify_fallback through "
                         "smartcard.hmac_responder); set in pre-auth (docs/offline.md)", list)
# -- defined by offline (its exchange), written by the responder (sshagent) -----
OFFLINE_CHALLENGE_RESPONSE = Key("offline.challenge_response", "the answer to one of "
                                 "offline.challenges, written by the responder in "
                                 "credentials_collected when no server answered: "
                                 "{'challenge_id': str, 'response': Secret (base64 ssh "
                                 "signature blob)}", dict)
# -- written by online ---------------------------------------------------------
OFFLINE_USED_REPORTED = Key("online.offline_used_reported", "the part of offline.used_codes the "
                            "server took; offline then forgets it", list)
HOST_DISABLED = Key("online.host_disabled", "the server answered that this host may not log "
                    "anyone in: its error code, 'host_disabled' (the host is disabled) or "
                    "'host_unknown' (removed from the realm, or joined again elsewhere); the login "
                    "is refused, and offline and sessionkeep drop the host's caches and kept "
                    "sessions in login_failed (docs/offline.md)", str)
# -- written by smartcard (declared alike in otpme_auth_smartcard.keys); card tokens'
#    offline caches (cardlogin.py) -------------------------------------------------
SMARTCARD = Key("smartcard.card", "the one YubiKey connected: {'serial', 'slots', 'touch', "
                "'required'}; offline keys card tokens' caches only with that card", dict)
HMAC_RESPONDER = Key("smartcard.hmac_responder", "respond(slot, challenge) -> Secret: the "
                     "connected YubiKey's HMAC-SHA1 answer (TimeoutError, OSError)", Callable)
