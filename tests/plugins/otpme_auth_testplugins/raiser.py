"""A verifier that raises (the login must fail closed, naming this plugin)."""

from otpme_auth import hookimpl


@hookimpl
def otpme_auth_verify(ctx):
    raise RuntimeError("raiser always raises")
