"""RADIUS clients (issue 14, seed 001 §5): client add/del/show/list/access_group."""

import contextlib
import io
import re

import pytest

from srvkit import adm as _adm, adm_ok


def adm(d, *args):
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code, out = _adm(d, *args)
    return code, out, err.getvalue()


def test_client_verbs(realm_dir):
    out = adm_ok(realm_dir, "client", "add", "switch1", "--address", "192.0.2.7/24")
    secret = re.search(r"shared secret .*: ([0-9a-f]{32})$", out.strip()).group(1)
    assert "192.0.2.0/24" in out
    shown = adm_ok(realm_dir, "client", "show", "switch1")
    assert "address: 192.0.2.0/24" in shown and "secret" not in shown and secret not in shown
    assert adm_ok(realm_dir, "client", "list").split() == ["switch1"]
    # a second client gets its own secret
    other = adm_ok(realm_dir, "client", "add", "switch2", "--address", "2001:db8::1")
    assert secret not in other and "2001:db8::1/128" in other
    adm_ok(realm_dir, "accessgroup", "add", "radius")
    assert "access group radius" in adm_ok(realm_dir, "client", "access_group", "switch1", "radius")
    assert "accessgroup: radius" in adm_ok(realm_dir, "client", "show", "switch1")
    code, _, err = adm(realm_dir, "accessgroup", "del", "radius")
    assert code != 0 and "used by client 'switch1'" in err
    adm_ok(realm_dir, "client", "del", "switch1")
    assert adm_ok(realm_dir, "client", "list").split() == ["switch2"]


@pytest.mark.parametrize("args, message", [
    (("client", "add", "sw"), "give --address"),
    (("client", "add", "sw", "--address", "not-an-ip"), "is not an address"),
    (("client", "add", "sw", "--address", "0.0.0.0/0"), "every address"),
    (("client", "add", "bad name", "--address", "10.0.0.1"), "client"),
    (("client", "del", "nobody"), "nobody"),
    (("client", "access_group", "nobody", "x"), ""),
])
def test_client_bad_input_is_a_clear_error(realm_dir, args, message):
    code, out, err = adm(realm_dir, *args)
    assert code != 0 and message in err, (code, out, err)
    assert "Traceback" not in err


def test_the_secret_is_stored_sealed(realm_dir):
    out = adm_ok(realm_dir, "client", "add", "sw", "--address", "10.1.2.3")
    secret = out.strip().rsplit(" ", 1)[1]
    import os
    for root, _, files in os.walk(str(realm_dir)):
        for f in files:
            with open(os.path.join(root, f), "rb") as fh:
                assert secret.encode() not in fh.read(), f
