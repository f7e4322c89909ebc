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


def _agent_answering(body):
    """An Agent whose peer has already written ``body`` as one framed message."""
    import socket

    from otpme_auth_sshagent.agent import Agent
    ours, theirs = socket.socketpair()
    theirs.sendall(len(body).to_bytes(4, "big") + body)
    theirs.shutdown(socket.SHUT_WR)
    return Agent(ours), theirs


def _s(b):
    return len(b).to_bytes(4, "big") + b


def test_the_key_list_is_read_from_the_agent_protocol():
    """REQUEST_IDENTITIES' answer: accepted types kept, others and short RSA skipped."""
    ed = parse_public_key(ED)[1]
    rsa1024 = _s(b"ssh-rsa") + _s(b"\x01\x00\x01") + _s(b"\x00" + b"\xff" * 128)
    dss = _s(b"ssh-dss") + _s(b"x")
    body = bytes([12]) + (3).to_bytes(4, "big") + b"".join(
        _s(blob) + _s(b"comment") for blob in (ed, rsa1024, dss))
    agent, peer = _agent_answering(body)
    try:
        assert agent.keys() == [("ssh-ed25519", ed, ed)]
    finally:
        agent.close()
        peer.close()


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=1, max_size=400))
def test_any_agent_answer_is_a_key_list_or_an_agent_error(body):
    """The agent is the user's program: whatever it answers, root's login gets a list
    or a clear AgentError, never another exception."""
    agent, peer = _agent_answering(body)
    try:
        try:
            keys = agent.keys()
        except AgentError:
            return
        assert isinstance(keys, list)
    finally:
        agent.close()
        peer.close()


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=1, max_size=300))
def test_any_sign_answer_is_a_blob_or_an_agent_error(body):
    agent, peer = _agent_answering(body)
    try:
        try:
            assert isinstance(agent.sign(parse_public_key(ED)[1], b"x" * 32), bytes)
        except AgentError:
            pass
    finally:
        agent.close()
        peer.close()
