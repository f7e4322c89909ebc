"""The keys automount reads (see :class:`otpme_auth.Key`).

automount produces no key; it reads ``LOGIN_ANSWER`` (core: the online answer, or the
offline plugin's cached one at an offline login)."""
