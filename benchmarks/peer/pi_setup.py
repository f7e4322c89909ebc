"""Enrol the benchmark's users and tokens in privacyIDEA (run by privacyIDEA's own venv python).

    pi_setup.py PI_CFG USERS_JSON

USERS_JSON: {"passwd": PATH, "realm": NAME, "pin": PIN,
             "tokens": [[user, "hotp"|"totp", secret_hex], ...]}
Creates a flat-file (passwd) resolver over PATH, a default realm with it, and one
token per entry, through privacyIDEA's own library calls (what /resolver, /realm and
/token/init do, without an HTTP round trip per token: enrolment is not measured).
"""

import json
import sys

from privacyidea.app import create_app
from privacyidea.lib.realm import set_default_realm, set_realm
from privacyidea.lib.resolver import save_resolver
from privacyidea.lib.token import init_token
from privacyidea.lib.user import User


def main():
    cfg, spec_path = sys.argv[1], sys.argv[2]
    with open(spec_path) as f:
        spec = json.load(f)
    app = create_app(config_name="production", config_file=cfg, silent=True)
    with app.app_context():
        save_resolver({"resolver": "benchusers", "type": "passwdresolver", "fileName": spec["passwd"]})
        set_realm(spec["realm"], [{"name": "benchusers"}])
        set_default_realm(spec["realm"])
        for user, ttype, secret in spec["tokens"]:
            init_token({"type": ttype, "otpkey": secret, "genkey": 0, "pin": spec["pin"],
                        "serial": f"{ttype}-{user}", "otplen": 6, "hashlib": "sha1"},
                       user=User(user, spec["realm"]))
    print("enrolled", len(spec["tokens"]))


if __name__ == "__main__":
    main()
