"""sshagent: log in with a key in the user's ssh-agent; start an agent at session open.

Enabled by the bare word ``sshagent``, or by ``use_ssh_agent=`` / ``start_ssh_agent=``
(seed 000's options, so a seed line keeps its meaning), anywhere on the line.  It is not
a verifier: the online plugin stays the line's verifier, and this plugin answers the
server's challenge for it, as smartcard does for ``hmac`` (docs/hooks.md, "Challenge
responders").

* pre-auth: with an agent reachable (``SSH_AUTH_SOCK``), the public keys it holds that we
  would sign with go on the context (``sshagent.keys``): online asks for no password when
  the server's ``ssh`` challenge names one of them.  With ``use_ssh_agent=true`` the agent
  must be reachable and hold an acceptable key, or the login is refused before any prompt.
* credentials collected (after every plugin's ``collect_credentials``, so after online's
  pre-auth whatever the order on the line): we find the agent key whose public key the
  server's challenge names (``online.challenges``), ask the agent to sign the server's
  nonce (rsa-sha2-512 for RSA keys, never ssh-rsa SHA-1), check the signature's algorithm
  (the verifier, server or offline, checks the signature),
  and put it on the context (``online.challenge_response``, a ``Secret``); online sends it
  instead of anything typed.  With no server (``online.challenges`` absent), the same for
  the offline plugin's local nonces (``offline.challenges`` -> ``offline.challenge_response``;
  offline checks the signature against its cached record, docs/offline.md).
* post-login: with ``use_ssh_agent=true`` the login must have been made by the
  agent's key, else it is refused.
* open/close session: ``start_ssh_agent`` (see :mod:`.session`).

The server-less check against ``authorized_keys`` (for sudo) is the sibling
plugin ``sshagent_keys`` of this distribution (:mod:`.local`).
"""

from otpme_auth import Key, LoginRefused, choice, hookimpl
from otpme_auth.keys import LOGIN_ANSWER

from .keys import (
    CHALLENGE_RESPONSE, CHALLENGES, OFFLINE_CHALLENGE_RESPONSE, OFFLINE_CHALLENGES, SSHAGENT_KEYS,
)

NAME = "sshagent"
_AGENT = Key("sshagent.agent", "the open agent connection of this login, or an AgentError")
_SIGNED = Key("sshagent.signed", "the key type the agent signed the server's challenge with")
#: PAM environment entry from authenticate to open_session: the server listed ssh keys.
KEYS_MARK = "OTPME_AUTH_SSH_KEYS"


@hookimpl
def otpme_auth_declare_options():
    return [
        choice("use_ssh_agent", ("auto", "true", "false"), "auto",
               "auto: sign the server's ssh challenge when the agent holds the key; true: "
               "require it; false: never touch an agent (nor start one)", enables=True),
        choice("start_ssh_agent", ("auto", "true", "false"), "auto",
               "start an ssh-agent at session open: auto when the server lists ssh keys "
               "for the user; true always; false never", enables=True),
    ]


def _agent(ctx):
    """The agent of this login (opened once), or raise AgentError."""
    from .agent import Agent, AgentError, connect, find_socket
    found = ctx.stash.get(_AGENT)
    if isinstance(found, AgentError):
        raise found
    if found is not None:
        return found
    try:
        path = find_socket(ctx.pam.getenv("SSH_AUTH_SOCK"))
        if path is None:
            raise AgentError("no ssh agent: SSH_AUTH_SOCK is not set")
        pw = user_entry(ctx.user)
        agent = Agent(connect(path, pw.pw_uid, pw.pw_gid, ctx.user))
    except AgentError as exc:
        ctx.stash[_AGENT] = exc
        raise
    ctx.stash[_AGENT] = agent
    ctx.add_cleanup(agent.close, NAME)
    return agent


def user_entry(user):
    import pwd

    from .agent import AgentError
    try:
        return pwd.getpwnam(user)
    except KeyError:
        raise AgentError("no local user %r to check the agent socket against" % user) from None


@hookimpl
def otpme_auth_pre_auth(ctx, options):
    if options.use_ssh_agent == "false":
        return None
    import base64

    from .agent import AgentError
    try:
        keys = _agent(ctx).keys()
        if not keys:
            raise AgentError("the agent holds no key of an accepted type")
    except AgentError as exc:
        if options.use_ssh_agent == "true":
            raise LoginRefused("use_ssh_agent=true: %s" % exc,
                               "An ssh key in your agent is required to log in.") from None
        ctx.log.debug("not using the ssh agent: %s" % exc, NAME)
        return None
    ctx.stash[SSHAGENT_KEYS] = ["%s %s" % (t, base64.b64encode(b).decode("ascii"))
                                for t, b, _ in keys]
    return None


@hookimpl
def otpme_auth_credentials_collected(ctx, options):
    # Not collect_credentials: online asks the server (and publishes its challenges) in
    # its collect_credentials, which may come after ours on the line.
    offered = ctx.stash.get(SSHAGENT_KEYS)
    if CHALLENGES in ctx.stash:   # a server answered: its challenges, never the cache's
        challenges, answer_key = ctx.stash[CHALLENGES], CHALLENGE_RESPONSE
    else:                         # no server: offline's fresh local nonces (docs/offline.md)
        challenges, answer_key = ctx.stash.get(OFFLINE_CHALLENGES), OFFLINE_CHALLENGE_RESPONSE
        ssh_offered = [m for m in challenges or () if m.get("type") == "ssh"]  # not card tokens'
        if ssh_offered and not offered and options.use_ssh_agent != "false":
            why = ctx.stash.get(_AGENT)
            ctx.log.warning("cannot answer the offline ssh challenge of %s: %s" % (
                ctx.user, why if why is not None else "the agent holds no key of an "
                "accepted type"), NAME)
    if not offered or not challenges or answer_key in ctx.stash:
        return
    for method in challenges:
        if method.get("type") != "ssh":
            continue
        if " ".join(str(method.get("public_key", "")).split()[:2]) not in offered:
            continue
        response = _respond(ctx, method)
        if response is not None:
            from otpme_auth import Secret
            ctx.stash[answer_key] = {"challenge_id": method["challenge_id"],
                                     "response": Secret(response, source="plugin")}
            return
    if answer_key == OFFLINE_CHALLENGE_RESPONSE:
        ctx.log.warning("the agent holds none of the cached ssh keys of %s (offline login)"
                        % ctx.user, NAME)


def _respond(ctx, method):
    """The base64 signature blob answering an ``ssh`` challenge method, or None."""
    import base64

    from .agent import AgentError, check_algorithm, parse_public_key
    challenge = method.get("challenge")
    try:
        if not isinstance(challenge, str) or len(challenge) != 64:
            raise AgentError("the server's ssh challenge is malformed")
        nonce = bytes.fromhex(challenge)
        ktype, blob = parse_public_key(str(method.get("public_key", "")))
    except (ValueError, AgentError) as exc:
        ctx.log.warning("ignoring the server's ssh method: %s" % exc, NAME)
        return None
    try:
        agent = _agent(ctx)
        key = agent.find(blob)
        if key is None:
            ctx.log.info("the agent does not hold the %s key of %s's ssh token"
                         % (ktype, ctx.user), NAME)
            return None
        signature = agent.sign(key, nonce)
        # The algorithm only (no cryptography here): the verifier checks the signature.
        check_algorithm(blob, signature)
    except AgentError as exc:
        ctx.log.info("not using the ssh agent: %s" % exc, NAME)
        return None
    ctx.stash[_SIGNED] = ktype
    ctx.log.info("the agent signed the %s challenge with the %s key" % (
        "server's" if CHALLENGES in ctx.stash else "offline cache's", ktype), NAME)
    return base64.b64encode(signature).decode("ascii")


@hookimpl
def otpme_auth_post_login(ctx, options):
    answer = ctx.stash.get(LOGIN_ANSWER)
    if options.use_ssh_agent == "true":
        # Online: the server's answer names an ssh token; offline: the offline plugin
        # answered only after checking the signature it asked for (token_type ssh).
        by_agent = (ctx.stash.get(_SIGNED) and isinstance(answer, dict)
                    and answer.get("token_type") == "ssh")
        if not by_agent:
            raise LoginRefused("use_ssh_agent=true: the login was not made with the agent's key",
                               "An ssh key in your agent is required to log in.")
    if options.use_ssh_agent != "false" and options.start_ssh_agent == "auto" \
            and isinstance(answer, dict) and answer.get("ssh_keys"):
        # For open_session (another PAM call): the server lists ssh keys for this user.
        ctx.pam.putenv(KEYS_MARK, "1")
    return None


@hookimpl
def otpme_auth_open_session(ctx, options):
    from .session import start
    start(ctx, options, NAME)


@hookimpl
def otpme_auth_close_session(ctx, options):
    from .session import stop
    stop(ctx, options, NAME)
