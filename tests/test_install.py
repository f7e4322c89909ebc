"""install-pam: the entry script pam_python loads, the snippets, the repository copies."""

import os
import subprocess
import sys

import pytest

from otpme_auth.cli import main
from otpme_auth.install import SCRIPT_NAME, render_script, repository_files

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_repository_pam_files_are_the_generators_output():
    for name, text in repository_files().items():
        with open(os.path.join(ROOT, "pam", name)) as fh:
            assert fh.read() == text, "pam/%s is stale: regenerate it" % name


def test_install_pam_writes_script_and_snippets(tmp_path, capsys):
    dest, pamd, configs = tmp_path / "lib", tmp_path / "pam.d", tmp_path / "pam-configs"
    units = tmp_path / "systemd"
    assert main(["install-pam", "--dest", str(dest), "--cache-dir", str(tmp_path / "c"),
                 "--pamd", str(pamd), "--pam-configs", str(configs),
                 "--systemd-dir", str(units)]) == 0
    out = capsys.readouterr().out
    script = dest / SCRIPT_NAME
    assert str(script) in out and "pam_python.so" in out and "pam-auth-update --enable" in out
    assert oct(script.stat().st_mode & 0o777) == "0o644"
    for path in (pamd / "otpme-auth", pamd / "otpme-account", pamd / "otpme-session",
                 configs / "otpme-auth"):
        assert str(script) in path.read_text()
    assert "Default: no" in (configs / "otpme-auth").read_text()
    # the helper for screen lockers: a socket unit and the service it starts
    socket_unit = (units / "otpme-auth-helper.socket").read_text()
    assert "ListenStream=/run/otpme-auth/helper.sock" in socket_unit
    assert "SocketMode=0666" in socket_unit
    service_unit = (units / "otpme-auth-helper.service").read_text()
    program = os.path.join(os.path.dirname(sys.executable), "otpme-auth")
    assert "ExecStart=%s helper " % program in service_unit and os.path.exists(program)
    assert "systemctl enable --now otpme-auth-helper.socket" in out


def test_helper_units_are_valid_for_systemd(tmp_path):
    import shutil
    if not shutil.which("systemd-analyze"):
        pytest.fail("systemd-analyze is needed (.ci/apt-packages.txt: systemd)")
    from otpme_auth.install import install
    units = tmp_path / "systemd"
    install(str(tmp_path / "lib"), cache_dir=str(tmp_path / "c"), systemd_dir=str(units),
            out=open(os.devnull, "w"))
    proc = subprocess.run(["systemd-analyze", "verify", "--man=no",
                           str(units / "otpme-auth-helper.socket"),
                           str(units / "otpme-auth-helper.service")],
                          capture_output=True, text=True)
    problems = [line for line in (proc.stdout + proc.stderr).splitlines()
                if "otpme-auth-helper" in line]
    assert proc.returncode == 0 and not problems, proc.stdout + proc.stderr


def test_install_pam_no_snippets(tmp_path):
    dest = tmp_path / "lib"
    assert main(["install-pam", "--dest", str(dest), "--no-snippets",
                 "--cache-dir", str(tmp_path / "c")], out=open(os.devnull, "w")) == 0
    assert os.listdir(dest) == [SCRIPT_NAME]


def test_entry_script_defines_every_pam_function(tmp_path):
    script = tmp_path / SCRIPT_NAME
    script.write_text(render_script(["/x"], "/c"))
    proc = subprocess.run(
        ["/usr/bin/python3", "-I", "-c",
         "import runpy, sys; sys.path.insert(0, %r); ns = runpy.run_path(%r); "
         "print(' '.join(n for n in sorted(ns) if n.startswith('pam_sm_') and callable(ns[n])))"
         % (ROOT, str(script))], capture_output=True, text=True)
    assert proc.stdout.split() == sorted("pam_sm_" + fn for fn in (
        "authenticate", "setcred", "acct_mgmt", "open_session", "close_session", "chauthtok")), \
        proc.stderr


def test_script_imports_under_debians_python(tmp_path):
    """pam_python embeds /usr/bin/python3: the baked site dirs must make us importable there."""
    from otpme_auth.install import install, site_dirs
    install(str(tmp_path), cache_dir=str(tmp_path / "c"), out=open(os.devnull, "w"))
    proc = subprocess.run(
        ["/usr/bin/python3", "-I", "-c",
         "import runpy; ns = runpy.run_path(%r); print(callable(ns['pam_sm_authenticate']))"
         % str(tmp_path / SCRIPT_NAME)], capture_output=True, text=True)
    assert proc.stdout.strip() == "True", proc.stderr + repr(site_dirs())


def test_the_installation_comes_before_debians_packages(tmp_path):
    """An older Debian package (python3-cryptography) must not shadow the installed one."""
    from otpme_auth.install import install, site_dirs
    install(str(tmp_path), cache_dir=str(tmp_path / "c"), out=open(os.devnull, "w"))
    proc = subprocess.run(
        ["/usr/bin/python3", "-I", "-c",
         "import runpy, sys; runpy.run_path(%r); print('\\n'.join(sys.path))"
         % str(tmp_path / SCRIPT_NAME)], capture_output=True, text=True)
    paths = proc.stdout.split()
    ours = min(paths.index(d) for d in site_dirs() if d in paths)
    debian = [i for i, p in enumerate(paths) if p.startswith("/usr/lib/python3")]
    assert debian and ours < min(debian), paths
