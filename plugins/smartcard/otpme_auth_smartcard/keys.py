"""The keys smartcard shares with other plugins (see :class:`otpme_auth.Key`).

Written here, by smartcard: ``SMARTCARD`` (pre-auth), ``CHALLENGE_RESPONSE`` (collect).
Read here, written by online (declared alike in ``otpme_auth_online.keys``):
``CHALLENGES``.
"""

from otpme_auth import Key

SMARTCARD = Key("smartcard.card", "the one YubiKey connected for this login: {'serial': int "
                "or None, 'slots': [configured OTP slots], 'touch': [touch-triggered slots]}; "
                "online asks for no password when it can answer an hmac challenge", dict)
CHALLENGE_RESPONSE = Key("smartcard.challenge_response", "the card's answer to one of "
                         "online.challenges: {'challenge_id': str, 'response': Secret (hex)}; "
                         "online sends it instead of what was typed", dict)
# -- written by online ---------------------------------------------------------
CHALLENGES = Key("online.challenges", "the server's challenge methods for this login (hmac "
                 "and ssh pre-auth methods; docs/protocol.md), when a server answered", list)
