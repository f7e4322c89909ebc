"""Logging to syslog (facility authpriv), and optionally a file.

We run inside someone else's process (sshd, login, a screen locker), so we
keep its syslog identity, as Linux-PAM's ``pam_syslog`` does, and say who we
are in the message: ``sshd[123]: pam_otpme_auth(sshd:auth): ...``.  (Opening
syslog with an ident of our own would relabel every later line of sshd.)

We use the ``syslog`` module directly: ``logging`` costs 15 ms of import on
the login path.  Callers pass only texts without secrets; :func:`clean`
flattens a message to one line so a crafted user name cannot forge lines.
"""

import os
import syslog

LEVELS = {"error": syslog.LOG_ERR, "warning": syslog.LOG_WARNING,
          "info": syslog.LOG_INFO, "debug": syslog.LOG_DEBUG}
#: PAM function -> the module type Linux-PAM names in its log lines.
PAM_TYPES = {"authenticate": "auth", "setcred": "auth", "acct_mgmt": "account",
             "open_session": "session", "close_session": "session"}


def process_ident():
    """The application's own syslog name (glibc's default: its short program name)."""
    try:  # os.read, not open(): no text-file machinery on every login
        fd = os.open("/proc/self/comm", os.O_RDONLY | os.O_CLOEXEC)
        try:
            name = os.read(fd, 64)
        finally:
            os.close(fd)
    except OSError:
        return "otpme-auth"
    return name.decode("utf-8", "replace").strip() or "otpme-auth"


def clean(text, limit=1000):
    """One printable line: control characters become '?', long texts are cut."""
    text = "".join(c if c.isprintable() else "?" for c in str(text))
    return text if len(text) <= limit else text[:limit] + "..."


class Log:
    """A logger for one PAM call.  ``records`` keeps ``(level, line)`` for tests and the CLI."""

    def __init__(self, service="?", debug=False, file=None, to_syslog=True, function="authenticate"):
        self.service = service
        self.prefix = "pam_otpme_auth(%s:%s): " % (clean(service, 64), PAM_TYPES.get(function, "auth"))
        self.debug_enabled = debug
        self.file = file
        self.to_syslog = to_syslog
        self.records = []
        self._secrets = []
        if to_syslog:
            # Python would otherwise open syslog itself, named after sys.argv[0].
            syslog.openlog(process_ident(), syslog.LOG_PID, syslog.LOG_AUTHPRIV)

    def add_secret(self, value):
        """Scrub ``value`` from every later line (defence in depth: we never log secrets)."""
        if value and value not in self._secrets:
            self._secrets.append(value)
            self._secrets.sort(key=len, reverse=True)

    def _emit(self, level, message, plugin):
        if level == "debug" and not self.debug_enabled:
            return
        message = str(message)
        for secret in self._secrets:
            message = message.replace(secret, "<redacted>")
        line = "%s%s%s" % (self.prefix, "[%s] " % plugin if plugin else "", clean(message))
        self.records.append((level, line))
        if self.to_syslog:
            syslog.syslog(syslog.LOG_AUTHPRIV | LEVELS[level], line)
        if self.file:
            self._append(level, line)

    def _append(self, level, line):
        try:
            fd = os.open(self.file, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW
                         | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            self.file = None  # say it once, then keep to syslog
            self.error("cannot write log_file: %s" % exc.strerror)
            return
        try:
            os.write(fd, ("otpme-auth[%d] %s: %s\n" % (os.getpid(), level, line)).encode(
                "utf-8", "replace"))
        finally:
            os.close(fd)

    def error(self, message, plugin=None):
        self._emit("error", message, plugin)

    def warning(self, message, plugin=None):
        self._emit("warning", message, plugin)

    def info(self, message, plugin=None):
        self._emit("info", message, plugin)

    def debug(self, message, plugin=None):
        self._emit("debug", message, plugin)
