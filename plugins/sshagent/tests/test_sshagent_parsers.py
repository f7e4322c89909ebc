"""The parsers of untrusted input: key files, key strings, agent signature blobs."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from otpme_auth_sshagent.agent import AgentError, parse_public_key, verify
from otpme_auth_sshagent.authkeys import KeysRefused, expand, parse

ED = ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl test")


def test_expand():
    assert expand("/etc/keys/%u", "alice", "/home/alice") == "/etc/keys/alice"
    assert expand("%h/.ssh/k%%", "alice", "/home/alice") == "/home/alice/.ssh/k%"
    for bad in ("/k/%x", "/k/%"):
        with pytest.raises(KeysRefused):
            expand(bad, "alice", "/h")


def test_parse_skips_options_unknown_types_and_comments():
    notes = []
    text = "\n".join(["# c", "", ED, 'from="10.0.0.1" ' + ED, "ssh-dss AAAA x",
                      "cert-authority " + ED, "ssh-ed25519 !!!notbase64", "ssh-rsa " + ED.split()[1]])
    blobs = parse(text, notes.append)
    assert blobs == [parse_public_key(ED)[1]]
    assert len(notes) == 5, notes


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=400))
def test_parse_never_raises(text):
    parse(text, lambda m: None)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.binary(max_size=64))
def test_verify_refuses_garbage_with_a_clear_error(sig, data):
    with pytest.raises(AgentError):
        verify(parse_public_key(ED)[1], data, sig)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_parse_public_key_raises_only_valueerror(text):
    try:
        parse_public_key(text)
    except ValueError:
        pass
