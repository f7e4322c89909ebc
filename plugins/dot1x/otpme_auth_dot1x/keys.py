"""The keys dot1x shares with other plugins (see :class:`otpme_auth.Key`).

Written here, by dot1x; read by online (declared alike in ``otpme_auth_online.keys``).
"""

from otpme_auth import Key

PENDING = Key("dot1x.pending", "the link is down until 802.1x brings it up with the typed "
              "credential: do not contact the server before otpme_auth_credentials_collected "
              "(the value says why)", str)
LINK_UP = Key("dot1x.link_up", "802.1x brought the link up after the prompt (in "
              "otpme_auth_credentials_collected): a server unreachable before may answer now", bool)
