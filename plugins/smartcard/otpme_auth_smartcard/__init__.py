"""smartcard: YubiKey HMAC-SHA1 challenge-response over PC/SC (seed 000's ``use_smartcard``).

Enabled by the bare word ``smartcard`` or by ``use_smartcard=auto|true|false``, anywhere on
the line (it answers the challenge online's pre-auth brought, after every plugin's
``collect_credentials``, so the order of the words does not matter)::

    auth required pam_python.so pam_otpme_auth.py online use_smartcard=auto

* pre-auth: with ``use_smartcard`` other than ``false``, the PC/SC readers whose name
  contains ``smartcard_reader`` are looked at (the OTP applet's APDUs to libpcsclite
  through ctypes, a real ``pcscd``; :mod:`.card`).
  Exactly one YubiKey: its serial and HMAC-SHA1 slots go on the context
  (``smartcard.card``), so online asks for no password when the server offers
  an ``hmac`` challenge for a configured slot.  Several: refused (the user removes the
  others).  None, or pcscd not running: ``auto`` goes on with the other tokens, ``true``
  refuses.
* credentials collected: the server's ``hmac`` challenge (``online.challenges``, written by
  online) goes to the slot the token names; a touch-triggered slot first tells the user
  to touch the key; no answer within ``smartcard_timeout`` refuses.  The 20-byte answer
  goes on the context (``CHALLENGE_RESPONSE``) for online to send; the server verifies.
* Never logged: challenges' answers and secrets.

Nothing of PC/SC (ctypes, libpcsclite; yubikit and pyscard are never imported here) is loaded until a line enables the plugin
and the hook runs: they are imported inside :mod:`.card`.
"""

from otpme_auth import Key, LoginRefused, choice, hookimpl, seconds, text

from .keys import CHALLENGE_RESPONSE, CHALLENGES, HMAC_RESPONDER, SMARTCARD

NAME = "smartcard"
_DEVICE = Key("smartcard.device", "pre-auth -> collect: the card's reader (a card.Card)")


@hookimpl
def otpme_auth_declare_options():
    return [
        choice("use_smartcard", ("auto", "true", "false"), "auto",
               "auto: use a connected YubiKey if there is one; true: no login without one; "
               "false: ignore any card", enables=True),
        text("smartcard_reader", "yubico",
             "use PC/SC readers whose name contains this (case-insensitive)"),
        seconds("smartcard_timeout", 15, "seconds to wait for the card's answer (and the touch)",
                maximum=120),
    ]


@hookimpl
def otpme_auth_add_cli_commands(subparsers):
    from .tool import add_command
    add_command(subparsers)


def _refuse(reason, message):
    raise LoginRefused(reason, message)


@hookimpl
def otpme_auth_pre_auth(ctx, options):
    if options.use_smartcard == "false":
        return None
    from . import card
    try:
        cards = card.find(options.smartcard_reader)
    except card.CardError as exc:
        if options.use_smartcard == "true":
            _refuse("smartcard required, none usable: %s" % exc,
                    "A YubiKey is required to log in, but no smartcard service is running.")
        ctx.log.info("no smartcard: %s" % exc, NAME)
        return None
    if len(cards) > 1:
        _refuse("%d smartcards connected (serials %s)" % (len(cards), ", ".join(
            str(c.serial) for c in cards)),
            "More than one YubiKey is connected: remove all but your own and try again.")
    if not cards:
        if options.use_smartcard == "true":
            _refuse("smartcard required, none connected",
                    "A YubiKey is required to log in: insert it and try again.")
        ctx.log.debug("no smartcard connected", NAME)
        return None
    (found,) = cards
    ctx.stash[_DEVICE] = found
    ctx.stash[SMARTCARD] = {"serial": found.serial, "slots": sorted(found.slots),
                            "touch": sorted(found.touch),
                            "required": options.use_smartcard == "true"}
    ctx.stash[HMAC_RESPONDER] = _responder(ctx, options, found)
    ctx.log.info("YubiKey %s connected (HMAC-SHA1 slots %s)" % (
        found.serial, ",".join(map(str, sorted(found.slots))) or "none"), NAME)
    return None


def _responder(ctx, options, found):
    """``respond(slot, challenge) -> Secret`` (hex of the 20-byte HMAC-SHA1) for other
    plugins (offline: the challenge of a cached card token; docs/offline.md).

    Raises :class:`TimeoutError` (no answer or touch within ``smartcard_timeout``) or
    :class:`OSError` (empty slot, card gone, PC/SC error), with a reason fit for the log.
    The answer itself is never logged.
    """
    def respond(slot, challenge):
        from otpme_auth import Secret

        from . import card
        if slot not in found.slots:
            raise OSError("slot %s of YubiKey %s is empty" % (slot, found.serial))
        if slot in found.touch:
            ctx.conversation.info("Touch your YubiKey (within %d seconds)..."
                                  % options.smartcard_timeout)
        try:
            response = found.hmac(slot, bytes(challenge), options.smartcard_timeout)
        except card.CardTimeout:
            raise TimeoutError("YubiKey %s: no answer within %ds" % (
                found.serial, options.smartcard_timeout)) from None
        except card.CardError as exc:
            raise OSError("YubiKey %s: %s" % (found.serial, exc)) from None
        return Secret(response.hex(), source="plugin")
    return respond


@hookimpl
def otpme_auth_credentials_collected(ctx, options):
    # Not collect_credentials: online brings the challenge in its collect_credentials,
    # which may run after ours (the line's order); this hook runs after all of them.
    found = ctx.stash.get(_DEVICE)
    if found is None or CHALLENGE_RESPONSE in ctx.stash:
        return
    challenges = ctx.stash.get(CHALLENGES)
    if challenges is None:
        if options.use_smartcard == "true":
            ctx.log.info("no server challenge for the card (server unreachable)", NAME)
        return
    hmacs = [m for m in challenges if m.get("type") == "hmac"]
    usable = [m for m in hmacs if m.get("slot", 2) in found.slots]
    if not usable:
        if options.use_smartcard == "true" or (hmacs and not ctx.credentials):
            _refuse("YubiKey %s cannot answer: %s" % (found.serial, "the user has no smartcard "
                    "token usable here" if not hmacs else "slot %s of this card is empty"
                    % "/".join(str(m.get("slot", 2)) for m in hmacs)),
                    "This YubiKey is not enrolled for you." if hmacs else
                    "You have no smartcard token for this host.")
        return
    method = usable[0]
    slot = method.get("slot", 2)
    try:
        challenge = bytes.fromhex(method["challenge"])
    except (KeyError, TypeError, ValueError):
        _refuse("the server's challenge is not hex", "The server sent a bad challenge.")
    if slot in found.touch:
        ctx.conversation.info("Touch your YubiKey (within %d seconds)..." % options.smartcard_timeout)
    from . import card
    try:
        response = found.hmac(slot, challenge, options.smartcard_timeout)
    except card.CardTimeout:
        _refuse("YubiKey %s: no answer within %ds" % (found.serial, options.smartcard_timeout),
                "The YubiKey did not answer in time%s." % (
                    " (it was not touched)" if slot in found.touch else ""))
    except card.CardError as exc:
        _refuse("YubiKey %s: %s" % (found.serial, exc),
                "The YubiKey could not answer (was it removed?).")
    from otpme_auth import Secret
    ctx.stash[CHALLENGE_RESPONSE] = {"challenge_id": method["challenge_id"],
                                     "response": Secret(response.hex(), source="plugin")}
    ctx.log.info("YubiKey %s answered the server's challenge (slot %d)" % (found.serial, slot), NAME)
