"""Challenge and response prompts of the ``ocra`` plugin (pam_ocra's ``cmsg=``/``rmsg=``).

Directives in a prompt template:

====== =====================================================================
``%c``  the challenge
``%Nc`` the challenge with a space after every N-th character, 1 <= N <= 9
        (``%4c`` on ``12345678`` gives ``1234 5678``; no trailing space)
``%u``  the current time in UTC, ISO 8601, then `` UTC``:
        ``2017-07-20T21:26:43Z UTC``
``%l``  the current local time, ISO 8601 with its offset, then the zone
        abbreviation: ``2017-07-20T16:26:43-0500 CDT``
``%%``  a literal ``%``
====== =====================================================================

Anything else after a ``%`` -- an unknown letter, ``%0c``, a digit not followed by
``c``, a ``%`` at the very end -- is kept literally, unchanged, so a typo in the
PAM line shows up in the prompt instead of silently vanishing.  (pam_ocra drops
the ``%`` of an unknown directive; keeping it is our choice.)

Defaults, from the seed: challenge prompt ``OCRA Challenge: %4c``, response
prompt ``OCRA Response: ``.  Each one defaults on its own when not given.  The
challenge prompt is followed by a newline, the response prompt is not.

Formatting never raises for any template text; the time zone abbreviation comes
from the C library's ``strftime("%Z")``.  ``%u`` and ``%l`` let a user notice a
wrong server clock with time-based (``T``) suites.
"""

import time

DEFAULT_CHALLENGE_PROMPT = "OCRA Challenge: %4c"
DEFAULT_RESPONSE_PROMPT = "OCRA Response: "


def _group(challenge: str, size: int) -> str:
    return " ".join(challenge[i:i + size] for i in range(0, len(challenge), size))


def _utc(now: float) -> str:
    try:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)) + " UTC"
    except (OverflowError, OSError, ValueError):
        return "(time unavailable)"


def _local(now: float) -> str:
    try:
        return time.strftime("%Y-%m-%dT%H:%M:%S%z %Z", time.localtime(now))
    except (OverflowError, OSError, ValueError):
        return "(time unavailable)"


def format_prompt(template: str, challenge: str, now: float) -> str:
    """Expand the directives of ``template`` (see the module documentation).

    :param template: the prompt template (``cmsg=`` or ``rmsg=``)
    :param challenge: the challenge to show
    :param now: Unix time for ``%u``/``%l``
    :returns: the prompt text; never raises for any template
    """
    template = str(template)
    challenge = str(challenge)
    out = []
    i = 0
    n = len(template)
    while i < n:
        ch = template[i]
        if ch != "%":
            j = template.find("%", i)
            j = n if j < 0 else j
            out.append(template[i:j])
            i = j
            continue
        nxt = template[i + 1:i + 2]
        if nxt == "%":
            out.append("%")
            i += 2
        elif nxt == "c":
            out.append(challenge)
            i += 2
        elif nxt == "u":
            out.append(_utc(now))
            i += 2
        elif nxt == "l":
            out.append(_local(now))
            i += 2
        elif "1" <= nxt <= "9" and template[i + 2:i + 3] == "c":
            out.append(_group(challenge, int(nxt)))
            i += 3
        else:
            out.append("%")  # unknown directive: kept as written
            i += 1
    return "".join(out)


def build_prompt(cmsg: str | None, rmsg: str | None, challenge: str, now: float) -> str:
    """The whole prompt shown to the user: challenge prompt, newline, response prompt.

    ``None`` selects the default for that part.
    """
    cmsg = DEFAULT_CHALLENGE_PROMPT if cmsg is None else cmsg
    rmsg = DEFAULT_RESPONSE_PROMPT if rmsg is None else rmsg
    return format_prompt(cmsg, challenge, now) + "\n" + format_prompt(rmsg, challenge, now)


__all__ = ["DEFAULT_CHALLENGE_PROMPT", "DEFAULT_RESPONSE_PROMPT", "build_prompt", "format_prompt"]
