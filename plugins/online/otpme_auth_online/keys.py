"""The keys online shares with other plugins (see :class:`otpme_auth.Key`).

Written here, by online: ``OFFLINE_USED_REPORTED`` (and the protocol-level
``LOGIN_ANSWER`` and ``GREETING`` of :mod:`otpme_auth.keys`).  Read here, written by
offline (declared alike in ``otpme_auth_offline.keys``): ``OFFLINE_FIRST``,
``PROMPT_HINT``, ``OFFLINE_USED_CODES``.
"""

from otpme_auth import Key

OFFLINE_USED_REPORTED = Key("online.offline_used_reported", "the part of offline.used_codes the "
                            "server took; offline then forgets it", list)
# -- written by offline -----------------------------------------------------------
OFFLINE_FIRST = Key("offline.first", "offline answers from the cache: do not contact the "
                    "server (the value says why)", str)
PROMPT_HINT = Key("offline.prompt_hint", "how to word the prompt when no server can", str)
OFFLINE_USED_CODES = Key("offline.used_codes", "codes used offline, to report with the "
                         "pre-auth", list)
