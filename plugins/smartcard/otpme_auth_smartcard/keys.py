"""The keys smartcard shares with other plugins (see :class:`otpme_auth.Key`).

Written here, by smartcard: ``SMARTCARD`` (pre-auth), and online's ``CHALLENGE_RESPONSE``
(credentials_collected).  Read here, written by online (declared alike in
``otpme_auth_online.keys``): ``CHALLENGES``.
"""

from otpme_auth import Key

SMARTCARD = Key("smartcard.card", "the one YubiKey connected for this login: {'serial': int "
                "or None, 'slots': [configured OTP slots], 'touch': [touch-triggered slots]}; "
                "online asks for no password when it can answer an hmac challenge", dict)
# -- defined by online (the exchange is its protocol) ---------------------------
CHALLENGE_RESPONSE = Key("online.challenge_response", "the answer to one of online.challenges, "
                         "written by the responder plugin that answered it (smartcard, "
                         "sshagent) in credentials_collected: {'challenge_id': str, "
                         "'response': Secret}; online sends it instead of what was typed", dict)
CHALLENGES = Key("online.challenges", "the server's challenge methods for this login (hmac "
                 "and ssh pre-auth methods; docs/protocol.md), when a server answered", list)
