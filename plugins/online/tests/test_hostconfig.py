"""host.conf: the quoted form of seed 001 §21 is understood, anything else fails closed."""

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from otpme_auth.errors import ConfigError
from otpme_auth_online.hostconfig import KEYS, parse, render

BASE = ("realm = example.org\nhost = h1\nservers = 127.0.0.1:8443\nca_file = /etc/ca.pem\n"
        "cert_file = /etc/host.pem\nkey_file = /etc/host.key\n")
PW = "correct horse battery"


def test_seed_001_quoted_lists():
    config = parse(BASE + 'VALID_LOGIN_USERS="joe,alice"\nDENY_LOGIN_USERS="alice"\n')
    assert config.valid_users == {"joe", "alice"} and config.deny_users == {"alice"}
    assert config.refuses("alice") == "alice is in DENY_LOGIN_USERS"
    assert config.refuses("joe") is None
    assert config.refuses("bob") == "bob is not in VALID_LOGIN_USERS"
    single = parse(BASE + "DENY_LOGIN_USERS = 'alice, bob'\n")
    assert single.deny_users == {"alice", "bob"}


@pytest.mark.parametrize("line, expected", [
    ('DENY_LOGIN_USERS="alice', 'line 7: the value\'s " quote is not closed'),
    ('DENY_LOGIN_USERS="alice" bob', "line 7: unexpected 'bob' after the closing quote"),
    ("DENY_LOGIN_USERS=alice # bob", "line 7: the value holds a '#'"),
    ("DENY_LOGIN_USERS=al\"ice", "line 7: the value holds a quote"),
    ("DENY_LOGIN_USERS=alice\\ bob", "line 7: the value holds a backslash"),
    ("DENY_LOGIN_USERS=alice;bob", "line 7: DENY_LOGIN_USERS: 'alice;bob' is not a user name"),
    ("VALID_LOGIN_USERS=\"\"", "line 7: VALID_LOGIN_USERS is empty"),
    ("export DENY_LOGIN_USERS=alice", "line 7: not understood; expected KEY = VALUE"),
    ("DENY_USERS=alice", "line 7: unknown key DENY_USERS"),
    ("alice", "line 7: not understood"),
    ("DENY_LOGIN_USERS=a\nDENY_LOGIN_USERS=b", "line 8: DENY_LOGIN_USERS is given twice"),
])
def test_what_is_not_understood_fails_with_file_and_line(line, expected):
    with pytest.raises(ConfigError) as info:
        parse(BASE + line + "\n", "/etc/otpme-auth/host.conf")
    assert str(info.value).startswith("/etc/otpme-auth/host.conf line")
    assert expected in str(info.value)


names = st.from_regex(r"[A-Za-z0-9._@$][A-Za-z0-9._@$-]{0,15}", fullmatch=True)


@settings(max_examples=300)
@given(st.lists(names, min_size=1, max_size=6), st.sampled_from(["", '"', "'"]),
       st.sampled_from([",", " ", ", ", " ,  "]), st.sampled_from(["=", " = ", "=  ", "\t=\t"]),
       st.sampled_from(["VALID_LOGIN_USERS", "DENY_LOGIN_USERS"]))
def test_every_written_form_of_a_list_reads_back(users, quote, sep, eq, key):
    config = parse(BASE + "%s%s%s%s%s\n" % (key, eq, quote, sep.join(users), quote))
    got = config.valid_users if key == "VALID_LOGIN_USERS" else config.deny_users
    assert got == set(users)


@settings(max_examples=500)
@given(st.text(st.characters(blacklist_characters="\n"), max_size=60))
def test_any_value_is_understood_exactly_or_refused(value):
    """Never another exception; a list it accepts is exactly its names, nothing is half-read."""
    try:
        config = parse(BASE + "DENY_LOGIN_USERS = " + value + "\n")
    except ConfigError as exc:
        assert "host.conf" in str(exc)
        return
    stripped = value.strip(" \t\r")
    if stripped[:1] in "'\"" and stripped:
        stripped = stripped[1:-1]
    assert config.deny_users == set(stripped.replace(",", " ").split())
    for name in config.deny_users:
        assert not set(name) & set("\"'#\\;=") and name[0] != "-"


@settings(max_examples=300)
@given(st.text(max_size=200))
def test_any_text_is_a_config_or_a_config_error(text):
    try:
        parse(text)
    except ConfigError:
        pass


@settings(max_examples=200)
@given(st.dictionaries(st.sampled_from(KEYS), st.text(
    st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=30).filter(
        lambda v: not ('"' in v and "'" in v) and v.strip())))
def test_render_reads_back(values):
    values.update({k: v for k, v in parse(BASE).values.items() if k not in values})
    for key in ("VALID_LOGIN_USERS", "DENY_LOGIN_USERS"):
        values.pop(key, None)
    assert parse(render(values)).values == {k: v for k, v in values.items() if v}


def test_quoted_deny_list_refuses_through_pam(pam_harness, system_user, realm):
    """Through real libpam: DENY_LOGIN_USERS="USER" refuses before any prompt (it let them in)."""
    user = system_user()
    realm.add_user(user, PW)
    jotp = realm.add_host("h1", tokens=["%s/pass" % user])
    realm.start()
    conf = realm.join("h1", jotp)
    pam_harness.service("login", pam_harness.line("host_config=%s" % conf),
                        pam_harness.line("host_config=%s" % conf, type="account"))
    assert pam_harness.run("login", user, answers=[PW]).ok
    with open(conf, "a") as fh:
        fh.write('DENY_LOGIN_USERS="%s"\n' % user)
    result = pam_harness.run("login", user, answers=[PW])
    assert result.code == "AUTH_ERR", result.log
    assert "Password" not in result.output
    assert any("%s is in DENY_LOGIN_USERS" % user in line for line in result.log)
    with open(conf, "a") as fh:
        fh.write('VALID_LOGIN_USERS="%s\n' % user)  # unclosed: refused, never half-read
    os.chmod(conf, 0o644)
    result = pam_harness.run("login", user, answers=[PW])
    assert not result.ok
    assert any("host.conf line" in line and "quote is not closed" in line for line in result.log)
