"""The docs tell the truth: every hook documented with its exact signature, every option listed."""

import os
import re
import sys

from otpme_auth.hookspecs import HOOKS
from otpme_auth.options import CORE_OPTIONS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "docs"))


def read(name):
    with open(os.path.join(ROOT, name), encoding="utf-8") as fh:
        return fh.read()


def test_every_hook_is_documented_with_its_signature():
    hooks_md = read("docs/hooks.md")
    for name, args in HOOKS.items():
        assert "### `%s(%s)`" % (name, ", ".join(args)) in hooks_md, name


def test_hook_reference_matches_the_docstrings():
    from render_hooks import render
    hooks_md = read("docs/hooks.md")
    start = hooks_md.index("do not edit by hand -->") + len("do not edit by hand -->")
    end = hooks_md.index("<!-- end of rendered reference -->")
    assert hooks_md[start:end].strip() == render().strip(), \
        "docs/hooks.md is stale: .venv/bin/python docs/render_hooks.py"


def test_every_core_option_is_in_the_options_reference():
    options_md = read("docs/options.md")
    for opt in CORE_OPTIONS:
        assert re.search(r"`%s[`=]" % opt.name, options_md), opt.name


def test_every_builtin_plugin_option_is_in_its_readme():
    from otpme_auth.registry import Registry
    installed = Registry(cache_dir=None).installed()
    for name, info in installed.items():
        readme = os.path.join(ROOT, "plugins", name, "README.md")
        if not os.path.exists(readme):
            continue  # not a builtin (examples, test plugins)
        text = read(readme)
        for option in info.options:
            assert "`%s" % option in text, "%s: %s missing from its README" % (name, option)


def test_the_plugin_guide_code_is_the_examples_code():
    """docs/writing-plugins.md's code is cut from examples/ by cog: it cannot drift."""
    import subprocess
    proc = subprocess.run([sys.executable, "-m", "cogapp", "--check", "-I", "docs",
                           "docs/writing-plugins.md"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, (proc.stdout + proc.stderr +
                                  "\nregenerate: cog -r -I docs docs/writing-plugins.md")


def test_every_public_name_of_the_context_and_its_log_is_documented():
    from otpme_auth.context import LoginContext
    from otpme_auth.log import Log
    from otpme_auth.testing import make_context
    context_md = read("docs/context.md")
    ctx = make_context()
    names = {n for n in list(vars(ctx)) + dir(LoginContext) if not n.startswith("_")}
    missing = sorted(n for n in names if "`ctx.%s" % n not in context_md)
    assert not missing, "docs/context.md lacks: %s" % ", ".join(missing)
    log_names = {n for n in list(vars(ctx.log)) + dir(Log) if not n.startswith("_")}
    missing = sorted(n for n in log_names if "ctx.log.%s" % n not in context_md)
    assert not missing, "docs/context.md lacks: %s" % ", ".join(missing)


def test_host_conf_points_at_docs_that_exist():
    """Issue 9 point 7: join wrote a host.conf pointing at docs/online.md, which did not exist."""
    from otpme_auth_online.hostconfig import render
    text = render({"realm": "r", "host": "h", "servers": "s:1", "ca_file": "/c",
                   "cert_file": "/c", "key_file": "/k"})
    docs = re.findall(r"docs/[\w./-]+\.md", text)
    assert docs, text
    for doc in docs:
        assert os.path.exists(os.path.join(ROOT, doc)), doc


def test_docs_links_resolve():
    """Relative links of the deployment and host pages point at files that exist."""
    for page in ("docs/online.md", "docs/deployments.md", "docs/deploy-login.md",
                 "docs/deploy-sshd.md", "docs/deploy-sudo.md"):
        text = read(page)
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", text):
            path = os.path.normpath(os.path.join(ROOT, os.path.dirname(page), target))
            assert os.path.exists(path), (page, target)
