"""Logging to syslog (facility authpriv), and optionally a file.

We use the ``syslog`` module directly: ``logging`` costs 15 ms of import on
the login path.  Callers pass only texts without secrets; :func:`clean`
flattens a message to one line so a crafted user name cannot forge lines.
"""

import os
import syslog

LEVELS = {"error": syslog.LOG_ERR, "warning": syslog.LOG_WARNING,
          "info": syslog.LOG_INFO, "debug": syslog.LOG_DEBUG}


def clean(text, limit=1000):
    """One printable line: control characters become '?', long texts are cut."""
    text = "".join(c if c.isprintable() else "?" for c in str(text))
    return text if len(text) <= limit else text[:limit] + "..."


class Log:
    """A logger for one PAM call.  ``records`` keeps ``(level, line)`` for tests and the CLI."""

    def __init__(self, service="?", debug=False, file=None, to_syslog=True):
        self.service = service
        self.debug_enabled = debug
        self.file = file
        self.to_syslog = to_syslog
        self.records = []
        self._secrets = []
        if to_syslog:
            syslog.openlog("otpme-auth", syslog.LOG_PID, syslog.LOG_AUTHPRIV)

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
        line = "(%s) %s%s" % (clean(self.service, 64), "[%s] " % plugin if plugin else "",
                              clean(message))
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
