"""start_ssh_agent: a real ssh-agent for the session, started as the user, stopped at close.

At open_session: unless the session already has an agent (``SSH_AUTH_SOCK`` in the
PAM environment, or one we started), start ``ssh-agent -a SOCK`` as the user with
the socket in the user's runtime directory (``/run/user/UID``, which must be the
user's own directory: pam_systemd makes it), and export ``SSH_AUTH_SOCK`` and
``SSH_AGENT_PID`` with pam_putenv.  At close_session: stop the agent we started
(checked: the process is the user's ssh-agent listening on our socket).
"""

import os
import re
import secrets
import signal
import stat
import subprocess

SSH_AGENT = "/usr/bin/ssh-agent"
#: PAM environment entry naming the socket of the agent we started (for close_session).
OURS = "OTPME_AUTH_SSH_AGENT_SOCK"
RUNTIME = "/run/user/%d"


def _wanted(ctx, options):
    from . import KEYS_MARK
    mark = ctx.pam.getenv(KEYS_MARK)
    if mark is not None:
        ctx.pam.putenv(KEYS_MARK, None)  # ours; not for the user's environment
    if options.use_ssh_agent == "false" or options.start_ssh_agent == "false":
        return False
    if options.start_ssh_agent == "true":
        return True
    return mark == "1"


def start(ctx, options, plugin):
    if not _wanted(ctx, options):
        return
    if ctx.pam.getenv(OURS) or ctx.pam.getenv("SSH_AUTH_SOCK"):
        ctx.log.info("the session already has an ssh agent; not starting another", plugin)
        return
    import pwd
    try:
        pw = pwd.getpwnam(ctx.user)
    except KeyError:
        ctx.log.warning("start_ssh_agent: no local user %r" % ctx.user, plugin)
        return
    runtime = RUNTIME % pw.pw_uid
    try:
        st = os.lstat(runtime)
    except OSError:
        ctx.log.warning("start_ssh_agent: %s does not exist (no pam_systemd?); no agent started"
                        % runtime, plugin)
        return
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != pw.pw_uid or st.st_mode & 0o077:
        ctx.log.warning("start_ssh_agent: %s is not %s's private directory; no agent started"
                        % (runtime, ctx.user), plugin)
        return
    sock = os.path.join(runtime, "otpme-ssh-agent.%s" % secrets.token_hex(6))
    kwargs = {}
    if os.geteuid() == 0 and pw.pw_uid != 0:
        kwargs = {"user": pw.pw_uid, "group": pw.pw_gid,
                  "extra_groups": os.getgrouplist(ctx.user, pw.pw_gid)}
    try:
        proc = subprocess.run([SSH_AGENT, "-s", "-a", sock], stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=10, cwd="/",
                              env={"PATH": "/usr/bin:/bin", "HOME": pw.pw_dir,
                                   "USER": ctx.user, "LOGNAME": ctx.user}, **kwargs)
    except (OSError, subprocess.TimeoutExpired) as exc:
        ctx.log.warning("start_ssh_agent: %s did not start: %s" % (SSH_AGENT, exc), plugin)
        return
    match = re.search(r"SSH_AGENT_PID=(\d+);", proc.stdout)
    if proc.returncode != 0 or not match:
        ctx.log.warning("start_ssh_agent: %s failed (exit %d)" % (SSH_AGENT, proc.returncode), plugin)
        return
    ctx.pam.putenv("SSH_AUTH_SOCK", sock)
    ctx.pam.putenv("SSH_AGENT_PID", match.group(1))
    ctx.pam.putenv(OURS, sock)
    ctx.log.info("started ssh-agent %s for %s at %s" % (match.group(1), ctx.user, sock), plugin)


def _is_our_agent(pid, uid, sock):
    try:
        st = os.stat("/proc/%d" % pid)
        exe = os.readlink("/proc/%d/exe" % pid)
        with open("/proc/%d/cmdline" % pid, "rb") as fh:
            argv = fh.read().split(b"\0")
    except OSError:
        return False
    return st.st_uid == uid and exe == SSH_AGENT and sock.encode() in argv


def stop(ctx, options, plugin):
    sock = ctx.pam.getenv(OURS)
    if not sock:
        return
    pid = ctx.pam.getenv("SSH_AGENT_PID") or ""
    import pwd
    try:
        uid = pwd.getpwnam(ctx.user).pw_uid
    except KeyError:
        return
    if pid.isdigit() and _is_our_agent(int(pid), uid, sock):
        try:
            os.kill(int(pid), signal.SIGTERM)
        except ProcessLookupError:
            pass
        ctx.log.info("stopped ssh-agent %s of %s" % (pid, ctx.user), plugin)
    else:
        ctx.log.info("the ssh-agent of %s at %s is gone already" % (ctx.user, sock), plugin)
    for name in (OURS, "SSH_AUTH_SOCK", "SSH_AGENT_PID"):
        ctx.pam.putenv(name, None)
