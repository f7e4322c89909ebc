"""The PAM line: tokens, declared options, which plugins run, typed frozen views.

The rules (docs/options.md says the same for administrators):

* Arguments are bare words, ``key=value``, or Linux-PAM ``[key=value with spaces]``.
* A bare word that names an installed plugin enables it.  An option declared
  with ``enables=True`` (``create_home``, ``cache_login_tokens``) enables its
  plugin too.  Nothing else enables a plugin: installing a package never
  changes anyone's authentication.
* The core owns a few options (``debug``, ``try_first_pass``, ...) that every
  plugin sees; no plugin may declare them.
* An option owned by two enabled plugins must be written ``plugin.option``.
* Unknown option, an option of a plugin the line does not enable, a bad value,
  a flag with a value, an option given twice: :class:`ConfigError` with one
  line naming the option.  The caller fails closed (PAM_SERVICE_ERR).
"""

from .errors import ConfigError

_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_")


def valid_name(name):
    """Option and plugin names: lower-case letters, digits and ``_``, not starting with a digit."""
    return bool(name) and not name[0].isdigit() and all(c in _NAME_CHARS for c in name)


# --------------------------------------------------------------------------
# Tokenising a line the way libpam does
# --------------------------------------------------------------------------

def split_line(text):
    """Split module arguments exactly as Linux-PAM does (``_pam_StrTok``).

    Words are separated by blanks, tabs and newlines.  A word that starts with
    ``[`` runs to the first ``]`` (brackets dropped, ``\\]`` kept as ``]``), so
    ``[authtok_prompt=Your code: ]`` is one argument with its spaces.
    pam_python hands us the already split ``argv``; this serves the CLI.
    """
    args = []
    i, n = 0, len(text)
    while i < n:
        if text[i] in " \t\n":
            i += 1
            continue
        if text[i] == "[":
            i += 1
            word = []
            while i < n and text[i] != "]":
                if text[i] == "\\" and i + 1 < n and text[i + 1] == "]":
                    i += 1
                word.append(text[i])
                i += 1
            i += 1  # past the closing bracket (or the end)
            args.append("".join(word))
        else:
            start = i
            while i < n and text[i] not in " \t\n":
                i += 1
            args.append(text[start:i])
    return args


class Token:
    """One argument of the line: ``[plugin.]name[=value]``."""

    __slots__ = ("raw", "qualifier", "name", "value", "position")

    def __init__(self, raw, position):
        self.raw = raw
        self.position = position
        key, eq, value = raw.partition("=")
        self.value = value if eq else None
        qualifier, dot, name = key.partition(".")
        if dot:
            self.qualifier, self.name = qualifier, name
        else:
            self.qualifier, self.name = None, key
        if not valid_name(self.name) or (self.qualifier is not None and not valid_name(self.qualifier)):
            raise ConfigError("argument %d %s is not an option: names are [a-z0-9_], "
                              "written name, name=value or plugin.name=value" % (position, _show(raw)))

    @property
    def key(self):
        return "%s.%s" % (self.qualifier, self.name) if self.qualifier else self.name


def show_value(value):
    """The written form of a typed option value: ``on``/``off``, ``(none)``, items joined
    by commas, anything else by ``str``."""
    if value is None:
        return "(none)"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, (list, tuple, set, frozenset)):
        return ",".join(show_value(v) for v in value) or "(none)"
    return str(value)


def _show(value, limit=60):
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 4] + "...'"


# --------------------------------------------------------------------------
# Declaring options
# --------------------------------------------------------------------------

class Option:
    """One option a plugin (or the core) owns.

    :param name: as written on the PAM line.
    :param parse: turns the written value into the typed value, raising
        ``ValueError`` with a short reason; ``None`` for a bare flag.
    :param default: the value when the line does not give the option.
    :param help: one line for ``check-config`` and docs/options.md.
    :param enables: giving this option enables its plugin.
    :param show: turns a typed value back into how an administrator writes it, for
        ``check-config`` (default: :func:`show_value`; give one when ``parse``
        returns objects, e.g. networks).
    """

    __slots__ = ("name", "parse", "default", "help", "enables", "kind", "show")

    def __init__(self, name, parse=None, default=None, help="", enables=False, kind=None,
                 show=None):
        if not valid_name(name):
            raise ValueError("bad option name %r" % (name,))
        self.name = name
        self.parse = parse
        self.default = False if parse is None and default is None else default
        self.help = help
        self.enables = enables
        self.kind = kind or ("flag" if parse is None else "value")
        self.show = show

    @property
    def is_flag(self):
        return self.parse is None

    def display(self, value):
        """``value`` as the administrator would write it (never a Python ``repr``)."""
        if self.show is not None and value is not None:
            return str(self.show(value)) or "(none)"
        if self.kind == "mode" and isinstance(value, int) and not isinstance(value, bool):
            return "0%03o" % value
        return show_value(value)

    def __repr__(self):
        return "<Option %s (%s) default=%r>" % (self.name, self.kind, self.default)


def flag(name, help="", enables=False):
    """A bare word: True when given, False otherwise."""
    return Option(name, None, False, help, enables, "flag")


def text(name, default=None, help="", enables=False, allow_empty=False):
    """Free text (use ``[name=with spaces]`` for spaces)."""
    def parse(value):
        if not value and not allow_empty:
            raise ValueError("must not be empty")
        return value
    return Option(name, parse, default, help, enables, "text")


def integer(name, default=None, help="", minimum=None, maximum=None, enables=False):
    """A whole number, optionally bounded."""
    def parse(value):
        if not value.isdigit() or len(value) > 12:
            raise ValueError("must be a whole number")
        number = int(value)
        _check_range(number, minimum, maximum)
        return number
    return Option(name, parse, default, help, enables, "integer")


def seconds(name, default=None, help="", maximum=None, enables=False):
    """A duration in seconds, fractions allowed (``0.5``)."""
    def parse(value):
        whole, dot, frac = value.partition(".")
        if not (whole.isdigit() and (not dot or frac.isdigit())) or len(value) > 12:
            raise ValueError("must be a number of seconds such as 3 or 0.5")
        number = float(value)
        _check_range(number, 0, maximum)
        return number
    return Option(name, parse, default, help, enables, "seconds")


def choice(name, choices, default=None, help="", enables=False):
    """One of a fixed set of words."""
    choices = tuple(choices)

    def parse(value):
        if value not in choices:
            raise ValueError("must be one of " + "|".join(choices))
        return value
    return Option(name, parse, default, help, enables, "|".join(choices))


def octal_mode(name, default=None, help=""):
    """A file mode written in octal, such as ``0600``."""
    def parse(value):
        if not value or len(value) > 5 or any(c not in "01234567" for c in value):
            raise ValueError("must be an octal file mode such as 0600")
        mode = int(value, 8)
        if mode > 0o7777:
            raise ValueError("must be at most 07777")
        return mode
    return Option(name, parse, default, help, False, "mode")


def path(name, default=None, help="", enables=False, placeholders=()):
    """An absolute path (``placeholders`` such as ``${USER}`` or ``~`` may start it)."""
    def parse(value):
        if not value.startswith("/") and not any(value.startswith(p) for p in placeholders):
            raise ValueError("must be an absolute path")
        if "\0" in value:
            raise ValueError("must not contain NUL")
        return value
    return Option(name, parse, default, help, enables, "path")


def _check_range(number, minimum, maximum):
    if minimum is not None and number < minimum:
        raise ValueError("must be at least %s" % minimum)
    if maximum is not None and number > maximum:
        raise ValueError("must be at most %s" % maximum)


# --------------------------------------------------------------------------
# The options every plugin sees
# --------------------------------------------------------------------------

CORE_OPTIONS = (
    flag("debug", "log details of each step (never a secret) at LOG_DEBUG"),
    flag("trace", "log each hook call with its plugin and result (credentials redacted)"),
    flag("gate", "this line only checks (pre-auth, account): it runs no verifier, never "
         "grants, and answers PAM_IGNORE when nothing refuses"),
    flag("try_first_pass", "use the password of a previous module; prompt if it is absent or wrong"),
    flag("use_first_pass", "use the password of a previous module; never prompt"),
    flag("forward_pass", "ask password and one-time code in one prompt and forward the password"),
    flag("nullok", "accept an empty password (and, for one-time codes, users without data)"),
    text("authtok_prompt", None, "the text of the password / code prompt", allow_empty=False),
    flag("echo_verification_code", "show the one-time code as it is typed"),
    path("log_file", None, "also append log lines to this file (created 0600, never through a symlink)"),
    path("helper_socket", "/run/otpme-auth/helper.sock", "the root helper's socket, used when "
         "the module runs as a user (a screen locker) and a plugin of the line needs root"),
)
CORE = "core"


# --------------------------------------------------------------------------
# Seed 000 compatibility: pam_otpme's options on any line
# --------------------------------------------------------------------------

#: Options of seed 000 (pam_otpme) that tune a feature rather than turn it on.
#: pam_otpme accepts them on any line (``try_first_pass message_timeout=2``);
#: so do we: when the plugin that owns one is installed but not enabled by the
#: line, it has nothing to act on (``check-config`` checks its value; the login
#: path does not import the plugin to do so).  (The seed: message_timeout applies to every message;
#: home_skel "requires create_home"; the KDF options apply to a cache.)
SEED_TUNING = frozenset({
    "message_timeout", "connect_timeout", "connection_timeout", "send_password",
    "offline_key_func", "check_offline_pass_strength", "home_skel",
    "dot1x_connection", "dot1x_token_type", "dot1x_token_types", "dot1x_timeout",
})

#: Options of seed 000 whose plugin does not exist yet (smartcards, ssh-agent,
#: 802.1x): the values that ask for nothing are accepted; a value that requires
#: the feature fails closed, since no login could honour it.
SEED_PLANNED = {
    "use_smartcard": ("auto", "false"),     # auto: use a card if one is detected (none can be)
    "use_ssh_agent": ("auto", "false"),
    "start_ssh_agent": ("auto", "false"),
    "do_dot1x": (),                         # auto|force both act; without a plugin, refuse
    "dot1x_connection": None,               # None: any value (tuning of do_dot1x)
    "dot1x_token_type": None,
    "dot1x_timeout": None,
}


# --------------------------------------------------------------------------
# Frozen views
# --------------------------------------------------------------------------

class OptionsView:
    """The typed, read-only options of one plugin (or of the core).

    ``view.name`` or ``view["name"]`` gives the value; ``view.origin(name)``
    tells where it came from (``default`` or the argument as written).
    """

    __slots__ = ("_owner", "_values", "_origins")

    def __init__(self, owner, values, origins):
        object.__setattr__(self, "_owner", owner)
        object.__setattr__(self, "_values", dict(values))
        object.__setattr__(self, "_origins", dict(origins))

    def __getattr__(self, name):
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError("%s has no option %r" % (self._owner, name)) from None

    def __getitem__(self, name):
        return self._values[name]

    def __setattr__(self, name, value):
        raise AttributeError("options are read-only")

    def __contains__(self, name):
        return name in self._values

    def __iter__(self):
        return iter(self._values)

    def items(self):
        return self._values.items()

    def origin(self, name):
        return self._origins[name]

    def given(self, name):
        """True if the line gave this option (not its default)."""
        return self._origins.get(name, "default") != "default"

    def __repr__(self):
        return "<OptionsView %s %s>" % (self._owner, self._values)


def default_view(owner, declared):
    """A view of only defaults (used by tests and the plugin kit)."""
    return OptionsView(owner, {o.name: o.default for o in declared},
                       {o.name: "default" for o in declared})


# --------------------------------------------------------------------------
# Resolving a line
# --------------------------------------------------------------------------

class LineConfig:
    """What a PAM line means: the core options and the enabled plugins in line order."""

    __slots__ = ("core", "plugins", "enabled_by", "idle")

    def __init__(self, core, plugins, enabled_by, idle=()):
        self.core = core          # OptionsView
        self.plugins = plugins    # list of (name, OptionsView), in line order
        self.enabled_by = enabled_by  # name -> the argument that enabled it
        self.idle = list(idle)    # (argument, why it does nothing here): seed 000 options

    @property
    def plugin_names(self):
        return [name for name, _ in self.plugins]


def enables_verifier(names, installed):
    """True if any of the plugins ``names`` answers ``otpme_auth_verify``."""
    return any("otpme_auth_verify" in installed[n].hooks for n in names if n in installed)


def resolve(args, installed, load_options, default_verifiers=(), check_idle=False):
    """Decide which plugins a line enables and give each its typed options.

    ``check_idle``: also check the values of seed 000 options whose plugin the line
    does not enable (:data:`SEED_TUNING`), which imports that plugin; ``check-config``
    does, the login path does not (it never imports a plugin the line does not enable,
    and such an option does nothing there).

    :param args: the module arguments (pam_python's argv without the script).
    :param installed: name -> :class:`otpme_auth.registry.PluginInfo`.
    :param load_options: ``load_options(name)`` returns the declared
        :class:`Option` list of an enabled plugin (importing it).
    :param default_verifiers: the first installed one is enabled, as though written
        first on the line, when the line enables no verifier and is not a ``gate``
        (seed 000: a line that names none means an online login).  Every PAM
        function of a line must pass the same, so that all of them resolve the
        line alike (the entry script's ``DEFAULT_VERIFIERS``).
    :raises ConfigError: one line naming the offending argument.
    """
    tokens = [Token(raw, i + 1) for i, raw in enumerate(args)]
    core_names = {o.name: o for o in CORE_OPTIONS}

    # 1. Which plugins the line enables, in line order.
    enabled = {}
    enabling_owner = {}
    for info in installed.values():
        for opt in info.enabling:
            enabling_owner.setdefault(opt, []).append(info.name)
    for tok in tokens:
        if tok.qualifier is None and tok.value is None and tok.name in installed \
                and tok.name not in core_names:
            enabled.setdefault(tok.name, tok.raw)
            continue
        if tok.qualifier is not None:
            info = installed.get(tok.qualifier)
            if info is None and tok.qualifier != CORE:
                raise ConfigError("%s: no plugin named %r is installed" % (_show(tok.raw), tok.qualifier))
            if info is not None and tok.name in info.enabling:
                enabled.setdefault(info.name, tok.raw)
            continue
        owners = enabling_owner.get(tok.name, ())
        if tok.name in core_names:
            continue
        if len(owners) > 1:
            raise ConfigError("%s enables more than one plugin (%s): write %s" % (
                tok.name, ", ".join(sorted(owners)),
                " or ".join("%s.%s" % (o, tok.name) for o in sorted(owners))))
        if owners:
            enabled.setdefault(owners[0], tok.raw)
    for name in enabled:
        if installed[name].error:
            raise ConfigError("plugin %s is installed but broken: %s" % (name, installed[name].error))
    gate = any(t.name == "gate" and t.qualifier in (None, CORE) for t in tokens)
    if gate:
        verifiers = [n for n in enabled if enables_verifier([n], installed)]
        if verifiers:
            raise ConfigError("gate: this line runs no verifier, but %s is one (remove it, or "
                              "drop gate)" % ", ".join(verifiers))
    elif not enables_verifier(enabled, installed):
        # The default verifier counts as written first on the line.
        for name in default_verifiers:
            if name in installed and not installed[name].error:
                enabled = dict([(name, "(default verifier)")] + list(enabled.items()))
                break

    # 2. The declared options of the enabled plugins (imports them).
    declared = {CORE: core_names}
    for name in enabled:
        specs = {}
        for opt in load_options(name):
            if opt.name in core_names:
                raise ConfigError("plugin %s declares %r, which the core owns" % (name, opt.name))
            specs[opt.name] = opt
        declared[name] = specs

    # 3. Give every argument to exactly one owner.
    values = {owner: {} for owner in declared}
    origins = {owner: {} for owner in declared}
    idle = []
    for tok in tokens:
        if tok.qualifier is None and tok.value is None and tok.name in enabled \
                and tok.name not in core_names:
            continue  # a plugin name
        why = _seed_idle(tok, declared, installed, enabled, load_options if check_idle else None)
        if why:
            idle.append((tok.raw, why))
            continue
        owner = _owner_of(tok, declared, installed, enabled)
        spec = declared[owner][tok.name]
        if tok.name in values[owner]:
            raise ConfigError("%s is given twice" % tok.key)
        values[owner][tok.name] = _parse_value(spec, tok)
        origins[owner][tok.name] = tok.raw if len(tok.raw) <= 80 else tok.raw[:77] + "..."

    views = {}
    for owner, specs in declared.items():
        vals = {n: o.default for n, o in specs.items()}
        orig = {n: "default" for n in specs}
        vals.update(values[owner])
        orig.update(origins[owner])
        views[owner] = OptionsView(owner, vals, orig)

    core = views[CORE]
    if core.try_first_pass and core.use_first_pass:
        raise ConfigError("try_first_pass and use_first_pass exclude each other: give one")
    if core.forward_pass and core.use_first_pass:
        raise ConfigError("forward_pass and use_first_pass exclude each other: give one")
    return LineConfig(core, [(n, views[n]) for n in enabled], enabled, idle)


def _seed_idle(tok, declared, installed, enabled, load_options):
    """Why a seed 000 option does nothing on this line (it is accepted), or None.

    Only for an option no enabled plugin (nor the core) owns: see
    :data:`SEED_TUNING` and :data:`SEED_PLANNED`.
    """
    if tok.qualifier is not None or tok.name in declared[CORE] \
            or any(tok.name in declared[n] for n in enabled):
        return None
    owners = sorted(i.name for i in installed.values() if tok.name in i.options)
    if owners and tok.name in SEED_TUNING:
        if any(tok.name in installed[o].enabling for o in owners):
            return None
        if load_options is not None:  # check-config: the value is checked too
            spec = next((o for o in load_options(owners[0]) if o.name == tok.name), None)
            if spec is not None:
                _parse_value(spec, tok)
        return "an option of plugin %s, which this line does not enable" % owners[0]
    if owners or tok.name not in SEED_PLANNED:
        return None
    allowed = SEED_PLANNED[tok.name]
    if tok.value is None:
        raise ConfigError("%s needs a value (%s=...)" % (tok.name, tok.name))
    if allowed is not None and tok.value not in allowed:
        raise ConfigError("%s=%s needs a plugin that provides %s, and none is installed "
                          "(accepted without one: %s)" % (
                              tok.name, _show(tok.value)[1:-1], tok.name,
                              " ".join("%s=%s" % (tok.name, v) for v in allowed) or "nothing"))
    return "no installed plugin provides %s" % tok.name


def _owner_of(tok, declared, installed, enabled):
    if tok.qualifier is not None:
        if tok.qualifier == CORE:
            if tok.name not in declared[CORE]:
                raise ConfigError("%s: the core has no option %r" % (tok.key, tok.name))
            return CORE
        if tok.qualifier not in enabled:
            raise ConfigError("%s: plugin %s is not enabled on this line (name it, or give "
                              "one of its enabling options)" % (tok.key, tok.qualifier))
        if tok.name not in declared[tok.qualifier]:
            raise ConfigError("%s: plugin %s has no option %r" % (tok.key, tok.qualifier, tok.name))
        return tok.qualifier
    if tok.name in declared[CORE]:
        return CORE
    owners = [n for n in enabled if tok.name in declared[n]]
    if len(owners) == 1:
        return owners[0]
    if owners:
        raise ConfigError("%s is an option of %s: write %s" % (
            tok.name, " and ".join(owners), " or ".join("%s.%s" % (o, tok.name) for o in owners)))
    sleeping = sorted(i.name for i in installed.values() if tok.name in i.options)
    if sleeping:
        hint = installed[sleeping[0]].enabling
        how = "name it" + (" or give %s" % " or ".join(hint) if hint else "")
        raise ConfigError("%s is an option of plugin %s, which this line does not enable (%s)"
                          % (tok.name, " / ".join(sleeping), how))
    hint = _suggest(tok.name, declared, installed)
    if tok.value is None and tok.name not in installed:
        raise ConfigError("unknown option or plugin %r%s (not the core's, not an installed "
                          "plugin's; see otpme-auth list-plugins)" % (tok.name, hint))
    raise ConfigError("unknown option %r%s" % (tok.name, hint))


def _suggest(name, declared, installed):
    """' (did you mean X?)' for a likely typo, from every name the line could have meant."""
    import difflib  # only on this error path
    known = set(installed)
    for specs in declared.values():
        known.update(specs)
    for info in installed.values():
        known.update(info.options)
    close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.75)
    return " (did you mean %s?)" % close[0] if close else ""


def _parse_value(spec, tok):
    if spec.is_flag:
        if tok.value is not None:
            raise ConfigError("%s is a flag and takes no value (write %s alone)" % (tok.key, tok.key))
        return True
    if tok.value is None:
        raise ConfigError("%s needs a value (%s=...)" % (tok.key, tok.key))
    try:
        return spec.parse(tok.value)
    except ValueError as exc:
        # The host quotes the value unless the parser's message already does.
        reason = str(exc)
        quoted = (_show(tok.value), "'%s'" % tok.value, '"%s"' % tok.value)
        got = "" if any(q in reason for q in quoted) else " (got %s)" % _show(tok.value)
        raise ConfigError("bad value for %s: %s%s" % (tok.key, reason, got)) from None
