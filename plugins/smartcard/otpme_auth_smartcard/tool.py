"""``otpme-auth smartcard list``: the YubiKeys this host sees, as a login would."""


def add_command(subparsers):
    p = subparsers.add_parser("smartcard", help="the YubiKeys (HMAC-SHA1 slots) this host sees")
    sub = p.add_subparsers(dest="smartcard_command", required=True,
                          help="what to do with the connected card")
    ls = sub.add_parser("list", help="list connected YubiKeys, their serials and HMAC-SHA1 slots")
    ls.add_argument("--reader", default="yubico", help="reader name filter (default: yubico)")
    ls.set_defaults(run=_list)


def _list(args, out):
    from .card import CardError, find
    try:
        cards = find(args.reader)
    except CardError as exc:
        out.write("otpme-auth smartcard: %s\n" % exc)
        return 1
    if not cards:
        out.write("no YubiKey connected\n")
    for card in cards:
        slots = ", ".join("%d%s" % (s, " (touch)" if s in card.touch else "") for s in sorted(card.slots))
        out.write("serial %s  firmware %s  reader %s  configured slots: %s\n" % (
            card.serial, ".".join(map(str, card.version)), card.reader, slots or "none"))
    return 0
