"""What an sshagent line imports: no paramiko at all; cryptography only to check a signature."""

from otpme_auth.testing.imports import HEAVY, heavy, login_imports

FORBIDDEN = HEAVY + ("paramiko", "cryptography", "otpme_auth_sshagent.session",
                     "otpme_auth_sshagent.authkeys", "otpme_auth_sshagent.local")


def test_online_line_without_an_agent_imports_no_paramiko(tmp_path, monkeypatch):
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    code, modules = login_imports(tmp_path, ["online", "sshagent",
                                             "host_config=%s" % (tmp_path / "missing.conf")],
                                  answers=["pw"])
    assert code == "AUTHINFO_UNAVAIL"
    assert "otpme_auth_sshagent" in modules
    assert heavy(modules, FORBIDDEN) == [], heavy(modules, FORBIDDEN)


def test_line_without_sshagent_imports_none_of_it(tmp_path):
    code, modules = login_imports(tmp_path, ["online", "host_config=%s" % (tmp_path / "x.conf")],
                                  answers=["pw"])
    assert heavy(modules, HEAVY + ("paramiko", "otpme_auth_sshagent")) == []


def test_listing_the_agents_keys_imports_no_paramiko_nor_cryptography(tmp_path, monkeypatch):
    """Issue 13 point 4: with an agent present, pre-auth lists its keys over the agent
    protocol itself (REQUEST_IDENTITIES, a few bytes): neither paramiko nor cryptography
    is imported; the agent is asked to sign only when a challenge names one of its keys."""
    import os
    import subprocess
    import time

    from agentlib import need_tools
    need_tools()
    key = str(tmp_path / "id")
    subprocess.run(["ssh-keygen", "-q", "-N", "", "-t", "ed25519", "-f", key], check=True)
    sock = str(tmp_path / "agent.sock")
    agent = subprocess.Popen(["ssh-agent", "-D", "-a", sock], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            if os.path.exists(sock):
                break
            time.sleep(0.02)
        subprocess.run(["ssh-add", "-q", key], env={"SSH_AUTH_SOCK": sock}, check=True,
                       capture_output=True)
        monkeypatch.setenv("SSH_AUTH_SOCK", sock)
        code, modules = login_imports(tmp_path, ["online", "sshagent", "use_ssh_agent=true",
                                                 "host_config=%s" % (tmp_path / "missing.conf")],
                                      answers=["pw"])
    finally:
        agent.terminate()
        agent.wait(10)
    assert code == "AUTHINFO_UNAVAIL"
    assert "otpme_auth_sshagent.agent" in modules  # the agent was asked for its keys
    assert heavy(modules, HEAVY + ("paramiko", "cryptography")) == [], \
        heavy(modules, HEAVY + ("paramiko", "cryptography"))
