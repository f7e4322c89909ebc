"""rhostgate: refuse logins whose remote host (PAM_RHOST) is outside a list of networks.

An example of a third-party otpme-auth plugin that decides in pre-auth only (a *gate*;
docs/writing-plugins.md builds it).  It verifies no credential, so its PAM line says
``gate`` and another module (pam_unix, or an otpme-auth line) authenticates::

    auth  requisite  pam_python.so pam_otpme_auth.py gate rhost_allow=10.0.0.0/8,192.0.2.0/24
    auth  required   pam_unix.so
"""

# [docs:imports]
from otpme_auth import LoginRefused, Option, flag, hookimpl
# [/docs:imports]

NAME = "rhostgate"


# [docs:options]
def networks(text):
    """``10.0.0.0/8,2001:db8::/32`` -> a tuple of networks (ValueError names the bad one)."""
    import ipaddress  # only when a line uses the plugin: keep the login path light
    result = []
    for part in text.split(","):
        try:
            result.append(ipaddress.ip_network(part.strip(), strict=False))
        except ValueError:
            raise ValueError("'%s' is not a network such as 10.0.0.0/8" % part.strip()) from None
    return tuple(result)


@hookimpl
def otpme_auth_declare_options():
    return [
        Option("rhost_allow", networks, (), "networks (CIDR, comma-separated) that may log in",
               enables=True, show=lambda nets: ",".join(str(n) for n in nets)),
        flag("rhost_allow_local", "also allow logins without a remote host (console, su)"),
    ]
# [/docs:options]


# [docs:pre_auth]
@hookimpl
def otpme_auth_pre_auth(ctx, options):
    if not ctx.rhost:
        if options.rhost_allow_local:
            return None
        raise LoginRefused("no remote host, and rhost_allow_local is not set",
                           "You may not log in here.")
    address = _address(ctx.rhost)
    if address is None or not any(address in net for net in options.rhost_allow):
        ctx.log.info("%s from %s is outside rhost_allow" % (ctx.user, ctx.rhost), NAME)
        raise LoginRefused("%s is not in rhost_allow" % ctx.rhost, "You may not log in from there.")
    return None


def _address(rhost):
    """PAM_RHOST as an address; None for a host name (a gate trusts no DNS)."""
    import ipaddress
    try:
        return ipaddress.ip_address(rhost.split("%")[0])
    except ValueError:
        return None
# [/docs:pre_auth]
