"""The keys smartcard shares with other plugins (see :class:`otpme_auth.Key`).

Written here, by smartcard: ``SMARTCARD`` and ``HMAC_RESPONDER`` (pre-auth), and online's ``CHALLENGE_RESPONSE``
(credentials_collected).  Read here, written by online (declared alike in
``otpme_auth_online.keys``): ``CHALLENGES``.
"""

from collections.abc import Callable

from otpme_auth import Key

SMARTCARD = Key("smartcard.card", "the one YubiKey connected for this login: {'serial': int "
                "or None, 'slots': [configured OTP slots], 'touch': [touch-triggered slots], "
                "'required': use_smartcard=true}; "
                "online asks for no password when it can answer an hmac challenge", dict)
HMAC_RESPONDER = Key("smartcard.hmac_responder", "the connected YubiKey as a function "
                     "respond(slot, challenge bytes) -> Secret (hex of the 20-byte HMAC-SHA1); "
                     "raises TimeoutError (no answer or touch in time) or OSError (empty slot, "
                     "card removed, PC/SC error) with a reason fit for the log; set in pre-auth "
                     "with smartcard.card; offline keys and opens card tokens' caches with it",
                     Callable)
# -- defined by online (the exchange is its protocol) ---------------------------
CHALLENGE_RESPONSE = Key("online.challenge_response", "the answer to one of online.challenges, "
                         "written by the responder plugin that answered it (smartcard, "
                         "sshagent) in credentials_collected: {'challenge_id': str, "
                         "'response': Secret}; online sends it instead of what was typed", dict)
CHALLENGES = Key("online.challenges", "the server's challenge methods for this login (hmac "
                 "and ssh pre-auth methods; docs/protocol.md), when a server answered", list)
