"""The ``[appdefaults]`` of krb5.conf, found and read as MIT Kerberos does.

Files: ``$KRB5_CONFIG`` (a ``:``-separated list) or ``/etc/krb5.conf``; as in
MIT krb5 the environment variable is not honoured in a setuid/setgid process
(``AT_SECURE``), so a user running ``sudo`` cannot point the module at a
krb5.conf of their own.  Missing files are skipped; ``include FILE`` and
``includedir DIR`` are followed.  The first value of a relation wins (MIT's
profile order), and the ``pam-webauth-otp`` subsection wins over the top level.

The profile syntax is parsed strictly: a line that is none of a section
header, a relation, a subsection's opening or closing brace, a comment or an
include is a :class:`Krb5ConfError` naming the file and line.
"""

import os

DEFAULT = "/etc/krb5.conf"
SUBSECTION = "pam-webauth-otp"


class Krb5ConfError(ValueError):
    """krb5.conf cannot be read or does not parse."""


def files(environ=None):
    """The krb5.conf files MIT krb5 would read, in order."""
    environ = os.environ if environ is None else environ
    value = environ.get("KRB5_CONFIG")
    if value and not secure_context():
        return [f for f in value.split(":") if f]
    return [DEFAULT]


def secure_context():
    """True when the process runs setuid/setgid (the kernel's AT_SECURE)."""
    if os.getuid() != os.geteuid() or os.getgid() != os.getegid():
        return True
    try:
        with open("/proc/self/auxv", "rb") as fh:
            auxv = fh.read()
    except OSError:
        return True   # cannot tell: be safe and ignore the environment
    import struct
    for offset in range(0, len(auxv) - 15, 16):
        key, value = struct.unpack_from("=QQ", auxv, offset)
        if key == 23:  # AT_SECURE
            return value != 0
        if key == 0:
            break
    return False


def appdefaults(filenames=None):
    """``{option: (value, where)}`` for the webauth module, subsection first.

    ``where`` says which file and line (for error messages).
    """
    top, sub = {}, {}
    for filename in filenames if filenames is not None else files():
        _read(filename, top, sub, depth=0)
    merged = dict(top)
    merged.update(sub)
    return merged


def _read(filename, top, sub, depth):
    if depth > 8:
        raise Krb5ConfError("%s: includes nest too deeply" % filename)
    try:
        with open(filename, "rb") as fh:
            data = fh.read(1024 * 1024 + 1)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise Krb5ConfError("cannot read %s: %s" % (filename, exc.strerror)) from None
    if len(data) > 1024 * 1024:
        raise Krb5ConfError("%s is larger than 1 MiB" % filename)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise Krb5ConfError("%s is not UTF-8 text" % filename) from None
    section = None
    stack = []        # names of the open subsections
    for number, raw in enumerate(text.splitlines(), 1):
        where = "%s line %d" % (filename, number)
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if not stack and (line.startswith("include ") or line.startswith("includedir ")):
            word, _, target = line.partition(" ")
            target = target.strip()
            if word == "include":
                _read(target, top, sub, depth + 1)
            else:
                for name in sorted(_included(target, where)):
                    _read(os.path.join(target, name), top, sub, depth + 1)
            continue
        if line.startswith("["):
            if stack:
                raise Krb5ConfError("%s: a section starts inside an open { }" % where)
            end = line.find("]")
            if end < 2 or line[end + 1:].strip() not in ("", "*"):
                raise Krb5ConfError("%s: a bad section header" % where)
            section = line[1:end].strip()
            continue
        if line.rstrip("*").strip() == "}":
            if not stack:
                raise Krb5ConfError("%s: a } with no open {" % where)
            stack.pop()
            continue
        if section is None:
            raise Krb5ConfError("%s: a relation outside any [section]" % where)
        tag, eq, value = line.partition("=")
        tag = tag.strip()
        if not eq or not tag or any(c.isspace() for c in tag):
            raise Krb5ConfError("%s: not 'name = value'" % where)
        value = value.strip()
        if value.rstrip("*").strip() == "{":
            stack.append(tag)
            continue
        if value.endswith("*") and not value.startswith('"'):
            value = value[:-1].rstrip()  # the 'final' marker
        value = _unquote(value, where)
        if section != "appdefaults":
            continue
        if not stack:
            top.setdefault(tag, (value, where))
        elif stack == [SUBSECTION]:
            sub.setdefault(tag, (value, where))
    if stack:
        raise Krb5ConfError("%s: a { is never closed" % filename)


def _included(directory, where):
    try:
        names = os.listdir(directory)
    except OSError as exc:
        raise Krb5ConfError("%s: cannot read includedir %s: %s" % (where, directory, exc.strerror)) from None
    # MIT: names of alphanumerics, '-' and '_' only, or ending in .conf
    return [n for n in names if n.endswith(".conf") or all(c.isalnum() or c in "-_" for c in n)]


def _unquote(value, where):
    if not value.startswith('"'):
        return value
    if len(value) < 2 or not value.endswith('"'):
        raise Krb5ConfError("%s: an unterminated quoted value" % where)
    out, body, i = [], value[1:-1], 0
    escapes = {"n": "\n", "t": "\t", "b": "\b", "\\": "\\", '"': '"'}
    while i < len(body):
        c = body[i]
        if c == "\\" and i + 1 < len(body):
            out.append(escapes.get(body[i + 1], body[i + 1]))
            i += 2
            continue
        if c == '"':
            raise Krb5ConfError("%s: a quote inside a quoted value" % where)
        out.append(c)
        i += 1
    return "".join(out)
