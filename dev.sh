#!/usr/bin/env bash
# otpme-auth development entry point.
#
#   ./dev.sh demo         a demo login through real libpam (installs what it needs)
#   ./dev.sh test [ARGS]  the whole test suite (ARGS go to pytest)
#   ./dev.sh setup        only install: Debian packages (as root) and the .venv
#
# The venv is made from Debian's /usr/bin/python3 because pam_python embeds that
# interpreter: the PAM module imports the package from this venv's site-packages.
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$PWD
VENV=$ROOT/.venv
PY=$VENV/bin/python

need_apt() {
    local missing=()
    while read -r pkg; do
        [[ -z "$pkg" || "$pkg" == \#* ]] && continue
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done < .ci/apt-packages.txt
    if ((${#missing[@]})); then
        if [[ $(id -u) != 0 ]]; then
            echo "dev.sh: missing Debian packages: ${missing[*]} (run as root, or apt-get install them)" >&2
            exit 2
        fi
        echo "dev.sh: installing ${missing[*]}" >&2
        # Daemons that some packages start on install (sshd, pcscd, ...) must not be left
        # running: the tests start their own on loopback.  policy-rc.d 101 = "do not start".
        local policy=/usr/sbin/policy-rc.d made_policy=
        if [[ ! -e $policy ]]; then
            printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod 755 "$policy" && made_policy=1
        fi
        local apt=(apt-get -o DPkg::Lock::Timeout=900)
        DEBIAN_FRONTEND=noninteractive "${apt[@]}" update -qq
        DEBIAN_FRONTEND=noninteractive "${apt[@]}" install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
        if [[ -n $made_policy ]]; then rm -f "$policy"; fi
    fi
}

setup() {
    need_apt
    if [[ ! -x $PY ]] || [[ "$($PY -c 'import sys; print(sys.base_prefix)')" != /usr ]]; then
        rm -rf "$VENV"
        /usr/bin/python3 -m venv "$VENV"
    fi
    local pkgs=(-e "$ROOT[test]" -e "$ROOT/server[postgres,smartcard]")
    for d in plugins/*/ examples/*/ tests/plugins/; do
        [[ -f $d/pyproject.toml ]] && pkgs+=(-e "$ROOT/$d")
    done
    "$PY" -m pip install -q --disable-pip-version-check "${pkgs[@]}" 2>&1 | grep -v "^WARNING: Location" || true
    "$PY" -c "import otpme_auth" # fail here, clearly, if the install did not work
}

case "${1:-}" in
    setup) setup ;;
    demo) setup; shift; exec "$PY" "$ROOT/demo/demo.py" "$@" ;;
    test)
        setup; shift
        export OTPME_AUTH_REQUIRE_REAL=1   # tests of real components (libpam, PostgreSQL...) fail rather than skip
        exec "$PY" -m pytest "$@" ;;
    *) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
