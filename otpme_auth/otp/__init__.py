"""One-time-code primitives: HOTP, TOTP, OCRA and base32, with no PAM in them.

The submodules are imported on the login path.  They import no third-party
code; HMAC and digests come from CPython's built-in digest modules (``_sha1``,
``_sha256``, ``_sha512``; not OpenSSL, whose load cost ~4 ms) through
:mod:`otpme_auth.otp._hmac`.  This package imports
none of them eagerly: ``from otpme_auth.otp.hotp import totp`` pays for HOTP
and TOTP only, and OCRA lives in :mod:`otpme_auth.otp.ocra` so TOTP users never
load it.  ``tests/otp`` checks the import lists.

Modules:

- :mod:`otpme_auth.otp.hotp`   -- HOTP (RFC 4226), TOTP (RFC 6238), constant-time compare
- :mod:`otpme_auth.otp.base32` -- base32 exactly as google-authenticator-libpam reads it
- :mod:`otpme_auth.otp.ocra`   -- OCRA (RFC 6287): suite parser and computation

Every error raised by these modules is an :class:`OtpError`. Its message names
what was wrong (a length, a format, a range) and never includes a key, a PIN, a
secret or a code value, so it is safe to log.
"""


class OtpError(ValueError):
    """A one-time-code input was invalid.

    The message is safe to log: it never contains a key, secret, PIN or code.
    """


__all__ = ["OtpError"]
