"""The reference otpme-auth authentication server.

A realm (CA, users, tokens, hosts, roles, access groups, policies) served over
HTTP/1.1 + JSON on mutual TLS.  The protocol is described in docs/protocol.md;
nothing here imports the PAM login path or any plugin.
"""

PROTOCOL_VERSION = 1
