"""``otpme-auth``: the administrator's command line.

    otpme-auth check-config 'try_first_pass create_home'   what a PAM line means
    otpme-auth login alice passfile debug                  run a login in the terminal
    otpme-auth install-pam --dest /usr/local/lib/security  install the pam_python entry
    otpme-auth list-plugins                                what is installed
    otpme-auth refresh-plugins                             rescan now (after pip install)

Errors are one line on stderr and exit code 2; never a traceback for a mistake.
"""

import argparse
import sys

from .errors import OtpmeAuthError
from .registry import DEFAULT_CACHE_DIR


def _registry(args, log=None):
    if getattr(args, "registry", None) is not None:
        return args.registry  # given by tests
    from .registry import Registry
    # check-config and list-plugins always look afresh: they are how an admin
    # sees the truth after installing something.
    return Registry(cache_dir=None, log=log)


def cmd_check_config(args, out):
    from .log import Log
    from .options import CORE, CORE_OPTIONS, enables_verifier, resolve, show_value, split_line
    text = " ".join(args.options)
    words = split_line(text)
    log = Log("check-config", to_syslog=False)
    registry = _registry(args, log)
    installed = registry.installed()
    line = resolve(words, installed, registry.options_of, _default_verifiers(args),
                   check_idle=True)
    out.write("arguments: %s\n" % (" ".join(_quote(w) for w in words) or "(none)"))
    out.write("\nenabled plugins (in the order they run):\n")
    if not line.plugins:
        out.write("  (none)\n")
    width = max([22] + [len(name) for name in line.plugin_names])
    for name, _ in line.plugins:
        info = installed[name]
        out.write("  %s enabled by %-28s %s %s\n" % (
            name.ljust(width), line.enabled_by[name], info.dist, info.version))
    if line.core.gate:
        out.write("  gate: no verifier runs; authenticate answers PAM_IGNORE unless a plugin "
                  "refuses, and the next module decides\n")
    elif args.function == "authenticate" and not enables_verifier(line.plugin_names, installed):
        out.write("  warning: no verifier is enabled; authentication will fail closed\n")
    views = [(CORE, line.core)] + line.plugins
    specs = {(CORE, o.name): o for o in CORE_OPTIONS}
    for name in line.plugin_names:
        specs.update({(name, o.name): o for o in registry.options_of(name)})
    rows = []
    for owner, view in views:
        for name, value in view.items():
            spec = specs.get((owner, name))
            shown = spec.display(value) if spec is not None else show_value(value)
            rows.append((owner, name, shown, view.origin(name), spec.help if spec else ""))
    out.write("\noptions:\n")
    _table(out, rows)
    if line.idle:
        out.write("\naccepted, but nothing to act on here (seed 000 options):\n")
        for raw, why in line.idle:
            out.write("  %-40s %s\n" % (raw, why))
    sleeping = sorted(set(installed) - set(line.plugin_names))
    if sleeping:
        out.write("\ninstalled but not enabled by this line (they will not run): %s\n"
                  % ", ".join(sleeping))
    return 0


def _default_verifiers(args):
    """``--default-verifier NAME|none``; install-pam's default otherwise."""
    from .install import DEFAULT_VERIFIERS
    chosen = getattr(args, "default_verifier", None)
    if chosen is None:
        return DEFAULT_VERIFIERS
    return () if chosen == "none" else (chosen,)


def _table(out, rows):
    """owner, option, value, origin, help: columns as wide as their longest entry;
    the help on its own indented line, so long names and values never break the table."""
    if not rows:
        return
    widths = [max(len(r[i]) for r in rows) for i in range(2)]
    for owner, name, value, origin, help_text in rows:
        out.write("  %s  %s = %s  (%s)\n" % (owner.ljust(widths[0]), name.ljust(widths[1]),
                                              value, origin))
        if help_text:
            out.write("  %s  %s\n" % (" " * widths[0], help_text))


def _quote(word):
    return "[%s]" % word.replace("]", "\\]") if any(c in word for c in " \t\n") else word


def cmd_list_plugins(args, out):
    registry = _registry(args)
    installed = registry.installed()
    if not installed:
        out.write("no plugins installed\n")
    for name, info in sorted(installed.items()):
        state = "BROKEN: %s" % info.error if info.error else "ok"
        out.write("%s  (%s %s, %s)  %s\n" % (name, info.dist, info.version, info.entry, state))
        if info.enabling:
            out.write("    enabled by: %s\n" % ", ".join((name,) + info.enabling))
        if info.options and not info.error:
            out.write("    options:\n")
            specs = {o.name: o for o in registry.options_of(name)}
            width = max(len(o) for o in info.options)
            for option in info.options:
                spec = specs.get(option)
                default = spec.display(spec.default) if spec else "?"
                out.write("      %s  default %s%s\n" % (
                    option.ljust(width), default, "; " + spec.help if spec and spec.help else ""))
        elif info.options:
            out.write("    options: %s\n" % ", ".join(info.options))
        if info.hooks:
            out.write("    hooks: %s\n" % ", ".join(h.replace("otpme_auth_", "") for h in info.hooks))
    return 0


def cmd_refresh_plugins(args, out):
    from .registry import Registry
    registry = Registry(cache_dir=args.cache_dir)
    plugins = registry.refresh()
    out.write("%d plugin(s); cache %s\n" % (len(plugins), registry.cache_path()))
    return 0


def cmd_login(args, out):
    from .context import PamItems
    from .conversation import TerminalConversation
    from .log import Log
    from .login import run
    from .options import split_line
    words = split_line(" ".join(args.options))
    log = Log(args.service, to_syslog=False)
    log.debug_enabled = "debug" in words
    pam = PamItems(authtok=None, rhost=args.rhost, ruser=args.ruser, tty=args.tty)
    outcome = run(args.function, words, args.user, args.service, TerminalConversation(), pam,
                  registry=getattr(args, "registry", None), cache_dir=args.cache_dir, log=log,
                  default_verifiers=_default_verifiers(args))
    for level, line in log.records:
        sys.stderr.write("%s: %s\n" % (level, line))
    out.write("%s: PAM_%s\n" % (args.function, outcome.code))
    return 0 if outcome.code == "SUCCESS" else 1


def cmd_install_pam(args, out):
    from .install import install
    from .install import PAM_CONFIGS_DIR, PAMD_DIR
    from .install import SYSTEMD_DIR
    if args.no_snippets:
        pamd, configs, units = None, None, None
    else:
        pamd, configs = args.pamd or PAMD_DIR, args.pam_configs or PAM_CONFIGS_DIR
        units = args.systemd_dir or SYSTEMD_DIR
    install(args.dest, cache_dir=args.cache_dir, pamd_dir=pamd, pam_configs_dir=configs, out=out,
            default_verifiers=_default_verifiers(args), systemd_dir=units)
    return 0


PAM_FUNCTIONS = ["authenticate", "setcred", "acct_mgmt", "open_session", "close_session"]


def build_parser():
    parser = argparse.ArgumentParser(prog="otpme-auth",
                                     description=__doc__.split("\n\n")[0].replace("``", ""))
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", help="what to do")
    sub.required = True

    p = sub.add_parser("check-config", help="show what a PAM line's options mean, or the error")
    p.add_argument("options", nargs="*", help="the options of the PAM line (quote the whole line)")
    p.add_argument("--function", default="authenticate", choices=PAM_FUNCTIONS,
                   help="the PAM function whose line this is (default: %(default)s)")
    p.add_argument("--default-verifier", metavar="NAME",
                   help="the plugin enabled when a line names no verifier (default: "
                        "online, as install-pam writes it; none: no default)")
    p.set_defaults(run=cmd_check_config)

    p = sub.add_parser("login", help="run a PAM call in this terminal, like pamtester")
    p.add_argument("user", help="the user to log in (PAM_USER)")
    p.add_argument("options", nargs="*", help="the options of the PAM line")
    p.add_argument("--service", default="otpme-auth-login",
                   help="PAM_SERVICE, as the application names itself (default: %(default)s)")
    p.add_argument("--function", default="authenticate", choices=PAM_FUNCTIONS,
                   help="the PAM function to run (default: %(default)s)")
    p.add_argument("--cache-dir", default=None,
                   help="the plugin registry cache (default: none, scan the plugins each time)")
    p.add_argument("--rhost", default=None, help="PAM_RHOST: the remote host, as sshd sets it")
    p.add_argument("--ruser", default=None, help="PAM_RUSER: the requesting user, as sudo sets it")
    p.add_argument("--tty", default=None, help="PAM_TTY: the terminal (pts/0, or :0 for a display)")
    p.add_argument("--default-verifier", metavar="NAME",
                   help="the plugin enabled when a line names no verifier (default: "
                        "online, as install-pam writes it; none: no default)")
    p.set_defaults(run=cmd_login)

    p = sub.add_parser("install-pam", help="install the pam_python entry script (and pam.d snippets)")
    p.add_argument("--dest", default="/usr/local/lib/security",
                   help="where to write pam_otpme_auth.py (default: %(default)s)")
    p.add_argument("--cache-dir", default=DEFAULT_CACHE_DIR,
                   help="the plugin registry cache the script uses (default: %(default)s)")
    p.add_argument("--pamd", default=None, metavar="DIR",
                   help="where to write the otpme-auth, otpme-account, otpme-session snippets "
                        "(default: /etc/pam.d; inert until a service file includes them)")
    p.add_argument("--pam-configs", default=None, metavar="DIR",
                   help="where to write the Debian pam-auth-update profile (default: "
                        "/usr/share/pam-configs; inert until pam-auth-update --enable otpme-auth)")
    p.add_argument("--systemd-dir", default=None, metavar="DIR",
                   help="where to write the helper's units otpme-auth-helper.socket/.service, "
                        "for screen lockers (default: /etc/systemd/system; inert until "
                        "systemctl enable --now otpme-auth-helper.socket)")
    p.add_argument("--no-snippets", action="store_true",
                   help="write only the entry script")
    p.add_argument("--default-verifier", metavar="NAME",
                   help="the plugin enabled when a line names no verifier (default: "
                        "online, as install-pam writes it; none: no default)")
    p.set_defaults(run=cmd_install_pam)

    from .helper.service import add_command as add_helper_command
    add_helper_command(sub)

    p = sub.add_parser("list-plugins", help="the installed plugins, their options and state")
    p.set_defaults(run=cmd_list_plugins)

    p = sub.add_parser("refresh-plugins", help="rescan installed plugins and rewrite the cache")
    p.add_argument("--cache-dir", default=DEFAULT_CACHE_DIR,
                   help="the plugin registry cache to rewrite (default: %(default)s)")
    p.set_defaults(run=cmd_refresh_plugins)
    parser.commands = sub  # plugins add theirs here (add_plugin_commands)
    return parser


def add_plugin_commands(subparsers, registry=None, err=None):
    """Let installed plugins add their subcommands (otpme_auth_add_cli_commands)."""
    from .host import find_impls
    if registry is None:
        from .registry import Registry
        registry = Registry(cache_dir=None)
    err = err or sys.stderr
    for name, info in sorted(registry.installed().items()):
        if info.error or "otpme_auth_add_cli_commands" not in info.hooks:
            continue
        try:
            func, _ = find_impls(name, registry.load(name))["otpme_auth_add_cli_commands"]
            func(subparsers=subparsers)
        except Exception as exc:  # one broken plugin must not take the CLI down
            err.write("otpme-auth: plugin %s could not add its commands: %s: %s\n"
                      % (name, type(exc).__name__, exc))


def main(argv=None, out=None, registry=None):
    out = out or sys.stdout
    parser = build_parser()
    add_plugin_commands(parser.commands, registry)
    args = parser.parse_args(argv)
    args.registry = registry
    try:
        return args.run(args, out)
    except OtpmeAuthError as exc:
        sys.stderr.write("otpme-auth: %s\n" % exc)
        return 2
    except OSError as exc:
        sys.stderr.write("otpme-auth: %s\n" % exc)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
