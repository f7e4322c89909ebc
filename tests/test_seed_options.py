"""Seed 000 compatibility: every pam_otpme option is accepted on a line as pam_otpme
accepts it (issue 9 point 9).  The list is read from the seed's OPTIONS section."""

import os
import re

import pytest

from otpme_auth.errors import ConfigError
from otpme_auth.install import DEFAULT_VERIFIERS
from otpme_auth.options import resolve
from otpme_auth.registry import Registry

SEED = "/work/shared/seeds"
# Values a line gives when the seed names a value (its defaults and examples).
EXAMPLES = {
    "send_password": "auto", "use_smartcard": "auto", "use_ssh_agent": "auto",
    "start_ssh_agent": "auto", "dot1x_connection": "dot1x-lan",
    "dot1x_token_type": "password", "dot1x_timeout": "30",
    "offline_key_func": "Argon2_i;min_mem:65536,max_mem:262144,iterations:6,threads:4",
    "check_offline_pass_strength":
        "password_strength;0:6,1:6,2:6,3:5,4:5,5:5,6:3,7:3,8:3,9:3,10:3",
    "message_timeout": "2", "connect_timeout": "3", "connection_timeout": "30",
    "home_skel": "/etc/skel",
}
# Acting without its plugin would be a lie: refused, with a clear message.
NEEDS_A_PLUGIN = {"do_dot1x"}

# The seed's option list, as a fallback when the seed file is not on this machine.
KNOWN = ["cache_login_tokens", "try_first_pass", "use_first_pass", "nullok", "send_password",
         "use_smartcard", "use_ssh_agent", "start_ssh_agent", "unlock_via_offline_token",
         "do_dot1x", "dot1x_connection", "dot1x_token_type", "dot1x_timeout",
         "offline_key_func", "check_offline_pass_strength", "offline_greeting",
         "online_greeting", "message_timeout", "show_errors", "connect_timeout",
         "connection_timeout", "create_home", "home_skel", "debug"]


def seed_options():
    """The option names of seed 000's OPTIONS section (``name`` or ``name=...`` lines)."""
    files = [f for f in os.listdir(SEED) if f.startswith("000_")] if os.path.isdir(SEED) else []
    if not files:
        return KNOWN
    text = open(os.path.join(SEED, files[0]), encoding="utf-8").read()
    section = text[text.index("\nOPTIONS\n"):text.index("\nEXAMPLES\n")]
    names = [m.group(1) for m in re.finditer(r"(?m)^([a-z][a-z0-9_]*)(?:=\S*)?$", section)]
    assert set(KNOWN) <= set(names), set(KNOWN) - set(names)
    return names


def _resolve(args, check_idle=False):
    registry = Registry(cache_dir=None)
    return resolve(args, registry.installed(), registry.options_of, DEFAULT_VERIFIERS,
                   check_idle=check_idle)


def _arg(name):
    return "%s=%s" % (name, EXAMPLES[name]) if name in EXAMPLES else name


@pytest.mark.parametrize("name", seed_options())
def test_every_seed_option_on_the_minimal_line(name):
    """``pam_otpme.py try_first_pass OPTION``: accepted (or refused only where acting
    without the plugin would be a lie)."""
    if name in NEEDS_A_PLUGIN and name in _provided():
        # do_dot1x enables its plugin (issue 14) next to the default verifier
        line = _resolve(["try_first_pass", "%s=auto" % name])
        assert {"online", "dot1x"} <= set(line.plugin_names)
        return
    if name in NEEDS_A_PLUGIN:
        with pytest.raises(ConfigError, match="needs a plugin"):
            _resolve(["try_first_pass", "%s=auto" % name])
        return
    args = [_arg(name)] if name in ("try_first_pass", "use_first_pass") else \
        ["try_first_pass", _arg(name)]
    line = _resolve(args)
    assert "online" in line.plugin_names


def test_the_seed_examples():
    seed_typical = ["try_first_pass", "cache_login_tokens", "use_smartcard=auto",
                    "use_ssh_agent=auto", "offline_key_func=" + EXAMPLES["offline_key_func"],
                    "check_offline_pass_strength=" + EXAMPLES["check_offline_pass_strength"],
                    "debug"]
    line = _resolve(seed_typical)
    assert line.plugin_names[:2] == ["online", "offline"]
    # Options of a feature whose plugin is installed (smartcard, issue 12) belong to it;
    # the others are idle.
    planned = {"use_smartcard", "use_ssh_agent"} - _provided()
    assert {raw.split("=")[0] for raw, _ in line.idle} == planned
    assert _resolve(["try_first_pass"]).plugin_names == ["online"]


def test_message_timeout_without_greeting():
    """The issue's example: it failed closed ("an option of plugin greeting, which this
    line does not enable")."""
    line = _resolve(["try_first_pass", "message_timeout=2"])
    assert line.plugin_names == ["online"]
    assert line.idle and "greeting" in line.idle[0][1]
    # check-config checks the value (it imports the plugin); the login path does not.
    with pytest.raises(ConfigError, match="message_timeout"):
        _resolve(["try_first_pass", "message_timeout=soon"], check_idle=True)
    assert _resolve(["try_first_pass", "message_timeout=soon"]).idle


def test_the_login_path_does_not_import_an_idle_plugin():
    registry = Registry(cache_dir=None)
    loaded = []

    def options_of(name):
        loaded.append(name)
        return registry.options_of(name)
    resolve(["try_first_pass", "message_timeout=2", "home_skel=/etc/skel"],
            registry.installed(), options_of, DEFAULT_VERIFIERS)
    assert loaded == ["online"]


def _provided():
    """Seed option names some installed plugin declares."""
    provided = set()
    for info in Registry(cache_dir=None).installed().values():
        provided.update(info.options)
    return provided


# Every seed-000 feature now has an installed plugin (smartcard, sshagent, dot1x), which
# checks its own values; a value that needs a missing plugin is tested no more.


def test_an_unknown_option_still_fails_closed():
    with pytest.raises(ConfigError, match="unknown option"):
        _resolve(["try_first_pass", "mesage_timeout=2"])


def test_every_function_resolves_alike():
    """Issue 9 point 1, at the unit level: setcred, acct_mgmt and the session functions
    resolve a line with the default verifier like authenticate does."""
    from otpme_auth.conversation import ScriptedConversation
    from otpme_auth.login import FUNCTIONS, run
    from otpme_auth.log import Log
    for function in FUNCTIONS:
        outcome = run(function, ["try_first_pass", "host_config=/nonexistent/host.conf",
                                 "connect_timeout=1"], "alice", "sshd",
                      ScriptedConversation([]), log=Log("sshd", to_syslog=False),
                      default_verifiers=DEFAULT_VERIFIERS)
        assert outcome.host is not None, (function, outcome.log.records)
        assert "online" in [p.name for p in outcome.host.plugins], function
