"""otpme-auth: a plugin-oriented PAM authentication framework."""

__version__ = "0.1.0"
