"""The keys sshagent shares with other plugins (see :class:`otpme_auth.Key`).

Written here, by sshagent: ``SSHAGENT_KEYS`` (pre-auth), and online's
``CHALLENGE_RESPONSE`` / offline's ``OFFLINE_CHALLENGE_RESPONSE`` (credentials_collected).
Read here, written by online (declared alike in ``otpme_auth_online.keys``): ``CHALLENGES``;
by offline (``otpme_auth_offline.keys``): ``OFFLINE_CHALLENGES``.
"""

from otpme_auth import Key

SSHAGENT_KEYS = Key("sshagent.keys", "the public keys the user's ssh-agent holds and sshagent "
                    "would sign with, each 'type base64-blob' (the first two fields of an "
                    "authorized_keys line); online asks for no password when the server's ssh "
                    "challenge names one of them", list)
# -- defined by online (the exchange is its protocol), written by the responder --------
CHALLENGES = Key("online.challenges", "the server's challenge methods for this login (hmac "
                 "and ssh pre-auth methods; docs/protocol.md), when a server answered", list)
CHALLENGE_RESPONSE = Key("online.challenge_response", "the answer to one of online.challenges, "
                         "written by the responder plugin that answered it (smartcard, "
                         "sshagent) in credentials_collected: {'challenge_id': str, "
                         "'response': Secret}; online sends it instead of what was typed", dict)
# -- defined by offline (offline ssh logins), written by the responder ------------
OFFLINE_CHALLENGES = Key("offline.challenges", "offline ssh logins: one method per authentic, "
                         "unexpired ssh record of the user, {'type': 'ssh', 'challenge_id', "
                         "'challenge': 64 hex digits (a fresh nonce), 'public_key'}, the shape of "
                         "the server's ssh method; set in pre-auth (docs/offline.md)", list)
OFFLINE_CHALLENGE_RESPONSE = Key("offline.challenge_response", "the answer to one of "
                                 "offline.challenges, written by the responder in "
                                 "credentials_collected when no server answered: "
                                 "{'challenge_id': str, 'response': Secret (base64 ssh "
                                 "signature blob)}", dict)
