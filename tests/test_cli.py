"""otpme-auth: what an administrator sees."""

import io
import os
import subprocess
import sys

import pytest

from otpme_auth.cli import main


def run(*argv):
    out = io.StringIO()
    code = main(list(argv), out=out)
    return code, out.getvalue()


def test_check_config_shows_plugins_options_values_and_origins():
    code, out = run("check-config", "passfile [passfile_path=/etc/pass words] debug create_home umask=0077")
    assert code == 0
    assert "passfile               enabled by passfile" in out
    assert "mkhomedir              enabled by create_home" in out
    assert "= /etc/pass words  (passfile_path=/etc/pass words)" in out  # as written, no repr
    assert "debug" in out and "(debug)" in out
    assert "try_first_pass" in out and "(default)" in out
    assert "umask" in out and "0077" in out
    assert "installed but not enabled by this line (they will not run)" in out
    assert "tripwire" in out


def _gate_registry():
    """A third-party gate with a long name and an option whose value is a parsed object."""
    import ipaddress

    from otpme_auth.testing import make_plugin

    from otpme_auth import Option, allow
    from otpme_auth.registry import StaticRegistry

    def networks(text):
        try:
            return tuple(ipaddress.ip_network(part) for part in text.split(","))
        except ValueError:
            raise ValueError("not a list of networks: '%s'" % text) from None
    gate = make_plugin("rhost_allow_list", options=[
        Option("rhost_allow", networks, (), "networks that may log in (CIDR, comma-separated)",
               enables=True, show=lambda nets: ",".join(str(n) for n in nets))],
        otpme_auth_verify=lambda ctx: allow())
    return StaticRegistry({"rhost_allow_list": gate})


def test_check_config_shows_help_and_values_as_written_with_long_plugin_names():
    out = io.StringIO()
    assert main(["check-config", "rhost_allow=10.0.0.0/8,192.0.2.0/24 debug"], out=out,
                registry=_gate_registry()) == 0
    text = out.getvalue()
    assert "= 10.0.0.0/8,192.0.2.0/24  (rhost_allow=10.0.0.0/8,192.0.2.0/24)" in text
    assert "IPv4Network" not in text
    assert "networks that may log in (CIDR, comma-separated)" in text
    assert "log details of each step" in text  # the core's help too
    option_lines = [line for line in text.splitlines() if " = " in line]
    assert len({line.index(" = ") for line in option_lines}) == 1  # one column, any name length


def test_list_plugins_shows_each_option_with_default_and_help():
    out = io.StringIO()
    assert main(["list-plugins"], out=out, registry=_gate_registry()) == 0
    assert "rhost_allow  default (none); networks that may log in" in out.getvalue()


def test_a_parser_that_quotes_the_value_is_not_quoted_twice(capsys):
    out = io.StringIO()
    assert main(["check-config", "rhost_allow=10.0.0.300"], out=out,
                registry=_gate_registry()) == 2
    err = capsys.readouterr().err
    assert err.count("10.0.0.300") == 1 and "not a list of networks" in err
    assert run("check-config", "create_home umask=99")[0] == 2
    err = capsys.readouterr().err
    assert "(got '99')" in err  # a parser that does not quote gets the value appended


def test_login_takes_rhost_tty_and_ruser(tmp_path):
    from otpme_auth.testing import make_plugin

    from otpme_auth import allow, deny
    from otpme_auth.registry import StaticRegistry
    seen = {}

    def verify(ctx):
        seen.update(rhost=ctx.rhost, tty=ctx.tty, ruser=ctx.pam.ruser)
        return allow() if ctx.rhost == "192.0.2.7" else deny("not from there")
    registry = StaticRegistry({"where": make_plugin("where", otpme_auth_verify=verify)})
    out = io.StringIO()
    assert main(["login", "alice", "where", "--rhost", "192.0.2.7", "--tty", "pts/3",
                 "--ruser", "bob"], out=out, registry=registry) == 0
    assert seen == {"rhost": "192.0.2.7", "tty": "pts/3", "ruser": "bob"}
    assert main(["login", "alice", "where", "--rhost", "198.51.100.1"], out=out,
                registry=registry) == 1


def test_check_config_error_is_one_line_and_exit_2(capsys):
    code, out = run("check-config", "passfile cache_login_tokenz")
    assert code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cache_login_tokenz" in err


def test_typo_gets_a_suggestion(capsys):
    assert run("check-config", "passfile passfile_pth=/x")[0] == 2
    assert "did you mean passfile_path?" in capsys.readouterr().err


def test_check_config_shows_the_default_verifier():
    code, out = run("check-config", "create_home")
    assert code == 0 and "online                 enabled by (default verifier)" in out


def test_check_config_warns_when_no_verifier():
    from otpme_auth.testing import make_plugin

    from otpme_auth import flag
    from otpme_auth.registry import StaticRegistry
    home = make_plugin("home", options=[flag("create_home", enables=True)],
                       otpme_auth_post_login=lambda ctx: None)
    out = io.StringIO()
    assert main(["check-config", "create_home"], out=out,
                registry=StaticRegistry({"home": home})) == 0
    assert "no verifier is enabled; authentication will fail closed" in out.getvalue()


def test_list_plugins():
    code, out = run("list-plugins")
    assert code == 0
    assert "passfile  (otpme-auth-passfile" in out and "ok" in out
    assert "enabled by: mkhomedir, create_home" in out


def test_refresh_plugins_writes_the_cache(tmp_path):
    code, out = run("refresh-plugins", "--cache-dir", str(tmp_path))
    assert code == 0 and str(tmp_path) in out
    assert any(name.startswith("plugins-") for name in os.listdir(tmp_path))


def test_login_in_a_terminal(tmp_path):
    from otpme_auth_passfile import CHEAPEST, hash_line
    passwd = tmp_path / "passwd"
    passwd.write_text(hash_line("alice", "s3cret", **CHEAPEST) + "\n")
    os.chmod(passwd, 0o600)
    cli = os.path.join(os.path.dirname(sys.executable), "otpme-auth")
    for answer, expected, rc in (("s3cret", "PAM_SUCCESS", 0), ("nope", "PAM_AUTH_ERR", 1)):
        proc = subprocess.run([cli, "login", "alice", "passfile", "passfile_path=%s" % passwd],
                              input=answer + "\n", capture_output=True, text=True)
        assert proc.returncode == rc and expected in proc.stdout, proc.stderr
        assert "s3cret" not in proc.stderr
        # The log goes to stderr (issue 9 point 8: without /dev/log syslog loses it).
        summary = ("authenticated alice (by passfile)" if rc == 0
                   else "authentication of alice failed: DENY by passfile")
        assert summary in proc.stderr, proc.stderr


def test_usage_error_exits_2():
    with pytest.raises(SystemExit) as info:
        main(["no-such-command"])
    assert info.value.code == 2


def test_every_command_and_argument_says_what_it_is_for():
    """`otpme-auth COMMAND --help` answers: no bare argument, the plugins' commands included."""
    import argparse

    from otpme_auth.cli import add_plugin_commands, build_parser
    parser = build_parser()
    add_plugin_commands(parser.commands)
    bare = []

    def walk(prefix, sub):
        for action in sub._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, child in action.choices.items():
                    walk(prefix + [name], child)
            if not isinstance(action, argparse._HelpAction) and not action.help:
                bare.append("%s %s" % (" ".join(prefix), "/".join(action.option_strings)
                                       or action.dest))
    walk([], parser)
    assert not bare, "arguments without help: %s" % ", ".join(bare)
