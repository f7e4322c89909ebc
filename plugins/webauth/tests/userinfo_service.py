"""A WebAuth user-information service's ``webkdc-validate``, for the tests, behind a real remctld.

remctld runs it as ``PROGRAM webkdc-validate USER IP`` with the one-time code on
standard input (``stdin=last`` in its config, as a site should configure it so
the code never shows in ``ps``).  It answers as the XML user-information
protocol does (``<authdata>`` with ``<success>``, ``<factors>``, ``<loa>``...).

The right code is 314159 for every user.  Users with special behaviour:
``broken`` (exits 1 with a message, as a failing service does), ``slow`` (sleeps
``USERINFO_SLOW`` seconds first), ``garbage`` (answers something that is not XML),
``evil`` (answers XML with an entity expansion), ``nosuccess`` (no <success>),
``leaky`` (fails with the code in its error message), ``hold`` (answers after a pause).
Each call appends one JSON line to ``$USERINFO_LOG``: its argv and whether
stdin carried a code (the code itself is not written).
"""

import json
import os
import sys
import time

RIGHT = "314159"


def main():
    argv = sys.argv[1:]
    code = sys.stdin.read() if not sys.stdin.isatty() else ""
    with open(os.environ["USERINFO_LOG"], "a") as fh:
        fh.write(json.dumps({"argv": sys.argv, "pid": os.getpid(), "stdin_len": len(code),
                             "cmdline": open("/proc/self/cmdline", "rb").read().decode(
                                 "utf-8", "replace").split("\0")}) + "\n")
    if len(argv) != 3 or argv[0] != "webkdc-validate":
        sys.stderr.write("usage: webkdc-validate USER IP (code on stdin)\n")
        return 2
    user, ip = argv[1], argv[2]
    if user == "broken":
        sys.stderr.write("OTP database unreachable\n")
        return 1
    if user == "leaky":
        sys.stderr.write("code %s refused by the OTP backend\n" % code)
        return 1
    if user == "slow":
        time.sleep(float(os.environ.get("USERINFO_SLOW", "5")))
    if user == "hold":
        time.sleep(float(os.environ.get("USERINFO_HOLD", "1.5")))
    if user == "garbage":
        sys.stdout.write("Status: OK, user valid\n")
        return 0
    if user == "evil":
        sys.stdout.write('<?xml version="1.0"?><!DOCTYPE a [<!ENTITY e "yes">]>'
                         '<authdata user="evil"><success>&e;</success></authdata>')
        return 0
    if user == "nosuccess":
        sys.stdout.write('<authdata user="nosuccess"><loa>1</loa></authdata>')
        return 0
    now = int(time.time())
    if code == RIGHT:
        sys.stdout.write(
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            '<authdata user="%s">\n  <success>yes</success>\n'
            '  <factors>\n    <factor>o</factor>\n    <factor>o1</factor>\n'
            '    <expiration>%d</expiration>\n  </factors>\n'
            '  <persistent-factors>\n    <factor>d</factor>\n    <expiration>%d</expiration>\n'
            '  </persistent-factors>\n  <loa>2</loa>\n</authdata>\n' % (user, now + 3600, now + 86400))
    else:
        sys.stdout.write(
            '<authdata user="%s">\n  <success>no</success>\n'
            '  <user-message>That code is not right.</user-message>\n</authdata>\n' % user)
    return 0


if __name__ == "__main__":
    sys.exit(main())
