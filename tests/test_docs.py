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
