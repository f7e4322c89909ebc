"""Keys that plugins share through the context (plugins never import each other).

A producer writes ``ctx.stash[GREETING] = "..."``; a consumer reads
``ctx.stash.get(GREETING)``.  Each key's doc says who writes and who reads it.
"""

from .context import ONE_TIME_CODE, PASSWORD, Key

GREETING = Key("greeting", "text to greet the user with; written by online (server), read by greeting")
HOME_DIRECTORY = Key("home_directory", "the home directory created or found by mkhomedir")
OFFLINE_FIRST = Key("offline_first", "set (to a reason) in pre-auth by a plugin that will answer "
                    "from the offline cache without the server (unlock_via_offline_token); "
                    "written by offline, read by online, which then does not contact the server")
PROMPT_HINT = Key("prompt_hint", "the prompt for the main secret when no server can word it "
                  "(e.g. 'Password+OTP: ' for a cached token with a second factor); written by "
                  "offline in pre-auth from its cache, read by online when unreachable")
OFFLINE_USED_CODES = Key("offline_used_codes", "the one-time codes this host accepted offline "
                         "and has not yet reported to the server: a list of {'token': name, "
                         "'counter': n}; written by offline in pre-auth, read by online, which "
                         "sends them with its pre-auth (docs/protocol.md)")
OFFLINE_USED_REPORTED = Key("offline_used_reported", "the part of OFFLINE_USED_CODES the server "
                            "took; written by online, read by offline, which then forgets it")
LOGIN_ANSWER = Key("login_answer", "the server's answer to a successful online login (a dict: "
                   "user, token, token_type, session, offline, shares, auto_mount, greeting, "
                   "password_policy; docs/protocol.md); written by online, read by offline, "
                   "sessionkeep, automount")

__all__ = ["PASSWORD", "ONE_TIME_CODE", "GREETING", "HOME_DIRECTORY", "LOGIN_ANSWER",
           "OFFLINE_FIRST", "OFFLINE_USED_CODES", "OFFLINE_USED_REPORTED", "PROMPT_HINT", "Key"]
