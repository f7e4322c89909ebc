"""Shares as objects: admin verbs, references from users and roles, nodes, and what the
login answer carries on each host (SQLite and PostgreSQL)."""

import contextlib
import io

import pytest
from hypothesis import given, settings, strategies as st

from otpme_auth_server import realm
from otpme_auth_server.errors import InvalidValue

from srvkit import adm as _adm, adm_ok, join, shown_jotp


def adm(d, *args, stdin=None):
    """(exit code, stdout, stderr) of one admin command."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code, out = _adm(d, *args, stdin=stdin)
    return code, out, err.getvalue()


def _login(h, d, user, pw):
    status, body = h.auth(user, pw)
    assert status == 200 and body["status"] == "ok", body
    return body


def test_share_verbs_and_login_answer(realm_dir, server, tmp_path):
    d = realm_dir
    h1 = join(server.port, d, "h1", shown_jotp(adm_ok(d, "host", "add", "h1")), str(tmp_path / "1"))
    h2 = join(server.port, d, "h2", shown_jotp(adm_ok(d, "host", "add", "h2")), str(tmp_path / "2"))
    for h in ("h1", "h2"):
        adm_ok(d, "host", "unlimit_logins", h)
    adm_ok(d, "user", "add", "--no-login-token", "alice")
    adm_ok(d, "token", "add", "--type", "password", "alice/pass", "-", stdin="pw-of-alice\n")
    # A share must exist before a user can have it (no more free-form names).
    code, _, err = adm(d, "user", "add_share", "alice", "home")
    assert code == 2 and "share 'home' does not exist" in err and "share add home" in err
    out = adm_ok(d, "share", "add", "home", "--type", "nfs", "--source", "nfs1:/export/home/%u",
                 "--options", "vers=4.2,soft", "--mountpoint", "home", "--ro")
    assert "share home (nfs) added" in out
    adm_ok(d, "share", "add", "scratch", "--type", "tmpfs", "--options", "size=16m")
    adm_ok(d, "share", "add", "team", "--type", "cifs", "--source", "//fs1/team")
    adm_ok(d, "user", "add_share", "alice", "home")
    adm_ok(d, "user", "add_share", "alice", "scratch")
    # No host may mount a share until it is a node of it.
    assert _login(h1, d, "alice", "pw-of-alice")["shares"] == []
    adm_ok(d, "share", "add_node", "home", "h1")
    adm_ok(d, "share", "add_node", "scratch", "h2")
    shares = _login(h1, d, "alice", "pw-of-alice")["shares"]
    assert shares == [{"name": "home", "type": "nfs", "source": "nfs1:/export/home/%u",
                       "options": ["vers=4.2", "soft"], "mountpoint": "home", "ro": True,
                       "force_group": None, "force_create_mode": None,
                       "force_directory_mode": None}]
    assert [s["name"] for s in _login(h2, d, "alice", "pw-of-alice")["shares"]] == ["scratch"]
    # A role carrying a share gives it to the users whose token is in the role (nested too).
    adm_ok(d, "role", "add", "staff")
    adm_ok(d, "role", "add", "all")
    adm_ok(d, "role", "add_role", "all", "staff")
    adm_ok(d, "role", "add_token", "staff", "alice/pass")
    adm_ok(d, "role", "add_share", "all", "team")
    adm_ok(d, "share", "add_node", "team", "h1")
    assert [s["name"] for s in _login(h1, d, "alice", "pw-of-alice")["shares"]] == ["home", "team"]
    # force_* only where the type supports them, validated.
    assert adm(d, "share", "force_create_mode", "home", "0660")[0] == 2
    assert adm(d, "share", "force_create_mode", "team", "999")[0] == 2
    adm_ok(d, "share", "force_create_mode", "team", "660")
    adm_ok(d, "share", "force_directory_mode", "team", "0770")
    adm_ok(d, "share", "force_group", "team", "staff")
    team = _login(h1, d, "alice", "pw-of-alice")["shares"][1]
    assert (team["force_group"], team["force_create_mode"], team["force_directory_mode"]) == \
        ("staff", "0660", "0770")
    show = adm_ok(d, "share", "show", "team")
    assert "force_create_mode: 0660" in show and "nodes: h1" in show
    assert adm_ok(d, "share", "list").split() == ["home", "scratch", "team"]
    adm_ok(d, "share", "remove_node", "home", "h1")
    assert [s["name"] for s in _login(h1, d, "alice", "pw-of-alice")["shares"]] == ["team"]
    # Deleting a share removes every reference to it.
    adm_ok(d, "share", "del", "team")
    assert "team" not in adm_ok(d, "role", "show", "all")
    assert _login(h1, d, "alice", "pw-of-alice")["shares"] == []
    # Removing a host removes it from the shares' nodes.
    adm_ok(d, "host", "del", "h2")
    assert "nodes: -" in adm_ok(d, "share", "show", "scratch")
    for h in (h1, h2):
        h.close()


def test_bad_share_input_is_one_clear_line(realm_dir):
    d = realm_dir
    cases = [
        (("share", "add", "x"), "give --type"),
        (("share", "add", "x", "--type", "zfs", "--source", "a"), "is not one of"),
        (("share", "add", "x", "--type", "nfs"), "needs --source HOST:/PATH"),
        (("share", "add", "x", "--type", "bind", "--source", "relative"), "an absolute path"),
        (("share", "add", "x", "--type", "cifs", "--source", "//h/s", "--options", "password=hunter2"),
         "would store a secret"),
        (("share", "add", "x", "--type", "sshfs", "--source", "h:", "--options", "ssh_command=evil"),
         "would store a secret"),
        (("share", "add", "x", "--type", "bind", "--source", "/srv", "--options", "a b"), "not valid"),
        (("share", "add", "x", "--type", "bind", "--source", "/srv", "--mountpoint", "../etc"),
         "no '..'"),
        (("share", "add", "bad/name", "--type", "bind", "--source", "/srv"), "not valid"),
        (("share", "add_node", "nope", "h"), "does not exist"),
        (("share", "del", "nope"), "does not exist"),
        (("role", "add_share", "nope", "x"), "does not exist"),
    ]
    for args, said in cases:
        code, out, err = adm(d, *args)
        assert code == 2 and said in err and "Traceback" not in err, (args, err)
        assert "hunter2" not in err
    adm_ok(d, "share", "add", "s", "--type", "bind", "--source", "/srv/s")
    assert adm(d, "share", "add", "s", "--type", "bind", "--source", "/srv/s")[0] == 2
    assert adm(d, "share", "add_node", "s", "no-such-host")[0] == 2


def test_free_form_share_names_of_older_releases(realm_dir, server, tmp_path):
    """A user holding a free-form name (stored before shares were objects) keeps it: it is
    shown as having no share object, never mounted, removable, and becomes a reference as
    soon as a share of that name is created."""
    d = realm_dir
    h1 = join(server.port, d, "h1", shown_jotp(adm_ok(d, "host", "add", "h1")), str(tmp_path / "1"))
    adm_ok(d, "host", "unlimit_logins", "h1")
    adm_ok(d, "user", "add", "--no-login-token", "bob")
    adm_ok(d, "token", "add", "--type", "password", "bob/pass", "-", stdin="pw-of-bob\n")
    _set_user_field(d, "bob", "shares", ["oldshare"])
    assert "shares without a share object" in adm_ok(d, "user", "show", "bob")
    assert _login(h1, d, "bob", "pw-of-bob")["shares"] == []
    adm_ok(d, "share", "add", "oldshare", "--type", "bind", "--source", "/srv/old")
    adm_ok(d, "share", "add_node", "oldshare", "h1")
    assert "without a share object" not in adm_ok(d, "user", "show", "bob")
    assert [s["name"] for s in _login(h1, d, "bob", "pw-of-bob")["shares"]] == ["oldshare"]
    adm_ok(d, "user", "remove_share", "bob", "oldshare")
    assert _login(h1, d, "bob", "pw-of-bob")["shares"] == []
    h1.close()


def _set_user_field(d, user, field, value):
    """Write a field the way an older release stored it (straight into the store)."""
    from otpme_auth_server import config
    from otpme_auth_server.store import Store
    store = Store(config.load(d).db)
    with store.session() as c, c.transaction():
        u = c.need("user", user)
        u[field] = value
        c.update("user", user, u)
    store.close()


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(realm.SHARE_TYPES), st.text(max_size=60), st.text(max_size=60),
       st.text(max_size=40))
def test_share_parsers_accept_or_refuse_cleanly(stype, source, options, mountpoint):
    class C:  # the parsers run before anything is stored
        def insert(self, *a, **k):
            pass
    try:
        data = realm.share_add(C(), "s", stype, source, options, mountpoint or None)
    except InvalidValue:
        return
    assert all("," not in o and " " not in o for o in data["options"])
    assert data["mountpoint"] is None or ".." not in data["mountpoint"].split("/")
