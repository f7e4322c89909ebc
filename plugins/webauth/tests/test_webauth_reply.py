"""The webkdc-validate reply parser: what it accepts, what it refuses, and fuzzing."""

import pytest
from hypothesis import given, settings, strategies as st

from otpme_auth_webauth.reply import ReplyError, Validation, parse

GOOD = (b'<?xml version="1.0" encoding="UTF-8"?>\n<authdata user="alice">\n'
        b'  <success>yes</success>\n  <factors><factor>o</factor><factor>o1</factor>'
        b'<expiration>1393891200</expiration></factors>\n'
        b'  <persistent-factors><factor>d</factor><expiration>1</expiration>'
        b'<valid-threshold>2</valid-threshold></persistent-factors>\n'
        b'  <loa>2</loa><user-message>Hello &amp; welcome</user-message>'
        b'<login-state>opaque</login-state>\n</authdata>\n')


def test_success():
    v = parse(GOOD, "alice")
    assert v.success and v.factors == ("o", "o1") and v.persistent == ("d",) and v.loa == 2
    assert v.user_message == "Hello & welcome"


def test_refused_code():
    v = parse(b"<authdata><success>no</success></authdata>", "bob")
    assert v.success is False and v.factors == () and v.loa is None


def test_unknown_elements_are_skipped_as_webauth_does():
    assert parse(b"<authdata><future>x</future><success> yes </success></authdata>", "a").success


@pytest.mark.parametrize("data, why", [
    (b"", "empty"),
    (b"   \n", "empty"),
    (b"yes", "not well-formed"),
    (b"<authdata><success>yes</success>", "not well-formed"),
    (b"<authdata><success>yes</success></authdata><x/>", "not well-formed"),
    (b"<other><success>yes</success></other>", "root element is <other>"),
    (b'<a:authdata xmlns:a="urn:x"><success>yes</success></a:authdata>', "root element"),
    (b"<authdata><loa>1</loa></authdata>", "no <success>"),
    (b"<authdata><success>yes</success><success>no</success></authdata>", "twice"),
    (b"<authdata><success>YES</success></authdata>", "neither yes nor no"),
    (b"<authdata><success>true</success></authdata>", "neither yes nor no"),
    (b"<authdata><success><b>yes</b></success></authdata>", "only text"),
    (b'<authdata user="mallory"><success>yes</success></authdata>', "another user"),
    (b'<authdata role="x"><success>yes</success></authdata>', "unexpected attribute"),
    (b"<authdata>yes<success>yes</success></authdata>", "text directly"),
    (b"<authdata><success>yes</success><loa>high</loa></authdata>", "whole number"),
    (b"<authdata><success>yes</success><loa>-1</loa></authdata>", "whole number"),
    (b"<authdata><success>yes</success><factors><factor>a b</factor></factors></authdata>",
     "bad <factor>"),
    (b"<authdata><success>yes</success><factors><expiration>x</expiration></factors></authdata>",
     "whole number"),
    (b'<!DOCTYPE authdata [<!ENTITY y "yes">]><authdata><success>&y;</success></authdata>',
     "forbidden XML"),
    (b'<!DOCTYPE authdata SYSTEM "http://example.org/x.dtd"><authdata><success>yes</success>'
     b'</authdata>', "forbidden XML"),
    (b'<?xml version="1.0" encoding="bogus"?><authdata><success>yes</success></authdata>', ""),
    (b"<authdata><success>yes</success></authdata>" + b" " * (256 * 1024), "larger"),
])
def test_refused(data, why):
    with pytest.raises(ReplyError) as info:
        parse(data, "alice")
    assert why in str(info.value)


def _xmlish():
    tags = st.sampled_from(["authdata", "success", "factors", "factor", "loa", "user-message",
                            "expiration", "persistent-factors", "x"])
    texts = st.sampled_from(["yes", "no", "1", "", " ", "&amp;", "&e;", "<", "]]>", "\x00", "é"])
    leaf = st.builds(lambda t, x: "<%s>%s</%s>" % (t, x, t), tags, texts)
    return st.recursive(leaf, lambda inner: st.builds(
        lambda t, kids: "<%s>%s</%s>" % (t, "".join(kids), t), tags, st.lists(inner, max_size=4)),
        max_leaves=12)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300))
def test_fuzz_bytes_only_ever_give_a_validation_or_a_reply_error(data):
    try:
        result = parse(data, "alice")
    except ReplyError:
        return
    assert isinstance(result, Validation) and result.success in (True, False)


@settings(max_examples=400, deadline=None)
@given(_xmlish(), st.sampled_from(["", ' user="alice"', ' user="bob"']))
def test_fuzz_structured(body, attr):
    data = ("<authdata%s>%s</authdata>" % (attr, body)).encode("utf-8")
    try:
        result = parse(data, "alice")
    except ReplyError:
        return
    # anything accepted has exactly one top-level <success> of yes/no and is for alice
    from xml.etree.ElementTree import fromstring
    top = fromstring(data).findall("success")
    assert len(top) == 1 and 'user="bob"' not in data.decode()
    assert result.success == (top[0].text.strip() == "yes")
