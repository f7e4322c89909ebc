"""The reply of ``webkdc-validate`` (the XML user-information protocol), parsed strictly.

What a user-information service prints for ``webkdc-validate``::

    <authdata user="alice">
      <success>yes</success>                        yes | no (required, once)
      <factors>                                     optional
        <factor>o</factor> <factor>o1</factor>
        <expiration>1393891200</expiration>
      </factors>
      <persistent-factors>...</persistent-factors>  optional, same shape
      <loa>2</loa>                                  optional, a whole number
      <user-message>text</user-message>             optional
      <login-state>...</login-state>                optional, ignored
    </authdata>

The parse refuses (:class:`ReplyError`) anything that is not exactly that:
not well-formed XML, a DTD or entity (defusedxml), another root, a namespace,
``<success>`` missing, repeated or not ``yes``/``no``, a ``user`` attribute
naming someone else, a known element of the wrong shape.  Unknown elements are
skipped, as WebAuth's own parser skips them (the protocol grows by adding
elements).  The caller fails closed on a :class:`ReplyError`.
"""

MAX_REPLY = 256 * 1024
KNOWN_FACTOR_CHILDREN = ("factor", "expiration", "valid-threshold")


class ReplyError(ValueError):
    """The reply is not a ``webkdc-validate`` answer we can trust."""


class Validation:
    """A parsed reply: ``success``, ``factors``, ``loa``, ``user_message``."""

    __slots__ = ("success", "factors", "persistent", "loa", "user_message")

    def __init__(self, success, factors=(), persistent=(), loa=None, user_message=None):
        self.success = success
        self.factors = tuple(factors)
        self.persistent = tuple(persistent)
        self.loa = loa
        self.user_message = user_message

    def __repr__(self):
        return "<Validation success=%s factors=%s loa=%s>" % (self.success, ",".join(self.factors),
                                                             self.loa)


def parse(data, user):
    """Parse ``data`` (bytes) as the ``webkdc-validate`` reply for ``user``."""
    from xml.etree.ElementTree import ParseError

    from defusedxml import DefusedXmlException
    from defusedxml.ElementTree import fromstring

    if not isinstance(data, bytes):
        raise TypeError("the reply is bytes")
    if len(data) > MAX_REPLY:
        raise ReplyError("the reply is larger than %d bytes" % MAX_REPLY)
    if not data.strip():
        raise ReplyError("the reply is empty")
    try:
        root = fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except ParseError as exc:
        raise ReplyError("not well-formed XML (%s)" % exc) from None
    except DefusedXmlException as exc:
        raise ReplyError("forbidden XML construct (%s)" % type(exc).__name__) from None
    except (ValueError, LookupError) as exc:  # bad or unknown encodings declared in the prolog
        raise ReplyError("undecodable XML (%s)" % exc) from None
    if root.tag != "authdata":
        raise ReplyError("the root element is <%s>, not <authdata>" % _name(root.tag))
    _no_text(root)
    for attr in root.attrib:
        if attr != "user":
            raise ReplyError("unexpected attribute %s on <authdata>" % _name(attr))
    if "user" in root.attrib and root.attrib["user"] != user:
        raise ReplyError("the reply is for another user")
    seen = set()
    success = None
    result = {}
    for child in root:
        tag = child.tag
        if not isinstance(tag, str) or tag.startswith("{"):
            raise ReplyError("namespaced or special element in the reply")
        if tag in seen and tag in ("success", "factors", "persistent-factors", "loa",
                                   "user-message"):
            raise ReplyError("<%s> is given twice" % tag)
        seen.add(tag)
        if tag == "success":
            value = _leaf(child)
            if value not in ("yes", "no"):
                raise ReplyError("<success> is neither yes nor no")
            success = value == "yes"
        elif tag in ("factors", "persistent-factors"):
            result[tag] = _factors(child)
        elif tag == "loa":
            result["loa"] = _number(child)
        elif tag == "user-message":
            result["user-message"] = _leaf(child, strip=False)
        elif tag == "login-state":
            pass  # opaque state for the WebKDC; a PAM login keeps none
        # unknown elements are skipped, as WebAuth does
    if success is None:
        raise ReplyError("the reply has no <success>")
    return Validation(success, result.get("factors", ()), result.get("persistent-factors", ()),
                      result.get("loa"), result.get("user-message"))


def _leaf(element, strip=True):
    if len(element):
        raise ReplyError("<%s> must hold only text" % element.tag)
    text = element.text or ""
    if element.attrib:
        raise ReplyError("unexpected attribute on <%s>" % element.tag)
    return text.strip() if strip else text


def _number(element):
    value = _leaf(element)
    if not value.isascii() or not value.isdigit() or len(value) > 20:
        raise ReplyError("<%s> is not a whole number" % element.tag)
    return int(value)


def _factors(element):
    _no_text(element)
    factors = []
    for child in element:
        if not isinstance(child.tag, str) or child.tag.startswith("{"):
            raise ReplyError("namespaced or special element in <%s>" % element.tag)
        if child.tag == "factor":
            value = _leaf(child)
            if not value or not value.isascii() or not value.isprintable() or " " in value:
                raise ReplyError("a bad <factor> in <%s>" % element.tag)
            factors.append(value)
        elif child.tag in ("expiration", "valid-threshold"):
            _number(child)
    return factors


def _no_text(element):
    if (element.text or "").strip():
        raise ReplyError("text directly inside <%s>" % element.tag)
    for child in element:
        if (child.tail or "").strip():
            raise ReplyError("text directly inside <%s>" % element.tag)


def _name(tag):
    text = str(tag)
    return "".join(c if c.isprintable() else "?" for c in text)[:40]
