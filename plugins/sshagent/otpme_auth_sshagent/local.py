"""sshagent_keys: a login proven by the user's ssh-agent, with no server (pam_ssh_agent_auth).

Enabled by ``authorized_keys=PATH`` (``%u`` user, ``%h`` home, ``%%``) or
``authorized_keys_command=CMD`` (run as ``authorized_keys_command_user`` with the
user name as its argument; sshd's AuthorizedKeysCommand contract).  A verifier:
ALLOW when a key of the agent that is in the authorized set signs a fresh local
nonce and the signature verifies against the authorized public key; DENY (final)
otherwise, with the reason in the log.  Meant for ``auth sufficient`` in
``/etc/pam.d/sudo``: a user with the key forwarded or loaded needs no password.

The key file, the command, and every directory above them must be owned by root
and writable by root alone (a user-writable key file makes sudo passwordless);
``allow_user_owned_authorized_keys_file`` (loud: logged as a warning at every
login) also accepts the user as owner.
"""

from otpme_auth import ConfigError, allow, deny, flag, hookimpl, path, text

NAME = "sshagent_keys"
#: What the agent signs: a label, the user, the service, then 32 fresh random bytes.
LABEL = b"otpme-auth sshagent local login v1\0"


@hookimpl
def otpme_auth_declare_options():
    return [
        path("authorized_keys", None, "the user's authorized keys (%u user, %h home); file and "
             "directories root-owned, writable by root alone", enables=True,
             placeholders=("%h", "%u")),
        text("authorized_keys_command", None, "a command printing the user's authorized keys "
             "(its argument: the user name); root-owned like a key file", enables=True),
        text("authorized_keys_command_user", None, "the user the command runs as (required "
             "with authorized_keys_command)"),
        flag("allow_user_owned_authorized_keys_file", "INSECURE: also accept a key file (and "
             "its directories) owned by the user; then the user can make sudo passwordless"),
    ]


def _authorized(ctx, options, pw, note):
    from .authkeys import expand, parse, read_trusted, run_command
    owners = (0,)
    if options.allow_user_owned_authorized_keys_file:
        owners = (0, pw.pw_uid)
        ctx.log.warning("allow_user_owned_authorized_keys_file is set: a key file owned by %s "
                        "is trusted, so %s can grant itself this login" % (ctx.user, ctx.user), NAME)
    blobs = []
    if options.authorized_keys:
        file = expand(options.authorized_keys, ctx.user, pw.pw_dir)
        blobs += parse(read_trusted(file, owners), note)
    if options.authorized_keys_command:
        if not options.authorized_keys_command_user:
            raise ConfigError("authorized_keys_command needs authorized_keys_command_user")
        blobs += parse(run_command(options.authorized_keys_command,
                                   options.authorized_keys_command_user, ctx.user), note)
    return blobs


@hookimpl
def otpme_auth_verify(ctx, options):
    import os

    from .agent import Agent, AgentError, connect, find_socket, verify
    from .authkeys import KeysRefused
    import pwd
    try:
        pw = pwd.getpwnam(ctx.user)
    except KeyError:
        return deny("no local user %r" % ctx.user, final=True)
    try:
        blobs = _authorized(ctx, options, pw, lambda m: ctx.log.info(m, NAME))
    except KeysRefused as exc:
        ctx.log.error(str(exc), NAME)
        return deny(str(exc), final=True)
    if not blobs:
        return deny("no usable authorized key for %s" % ctx.user, final=True)
    sock_path = find_socket(ctx.pam.getenv("SSH_AUTH_SOCK"))
    if sock_path is None:
        return deny("no ssh agent: SSH_AUTH_SOCK is not set", final=True)
    try:
        agent = Agent(connect(sock_path, pw.pw_uid, pw.pw_gid, ctx.user))
    except AgentError as exc:
        return deny(str(exc), final=True)
    try:
        held = [(t, b, k) for t, b, k in agent.keys() if b in blobs]
        if not held:
            return deny("the agent holds none of the %d authorized key(s) of %s"
                        % (len(blobs), ctx.user), final=True)
        problems = []
        for ktype, blob, key in held:
            data = LABEL + b"%s\0%s\0" % (ctx.user.encode(), ctx.service.encode()) + os.urandom(32)
            try:
                verify(blob, data, agent.sign(key, data))
            except AgentError as exc:
                problems.append(str(exc))
                continue
            reason = "the agent's %s key is authorized and signed a fresh nonce" % ktype
            ctx.log.info(reason, NAME)
            return allow(reason)
        return deny("no authorized key of the agent gave a good signature: %s"
                    % "; ".join(problems), final=True)
    finally:
        agent.close()
