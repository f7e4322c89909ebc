"""Render the hook reference of docs/hooks.md from otpme_auth/hookspecs.py.

    .venv/bin/python docs/render_hooks.py > /tmp/ref.md   (paste between the markers)

tests/test_docs.py fails when docs/hooks.md and the docstrings disagree.
"""

import inspect
import re

from otpme_auth import hookspecs


def render():
    out = []
    for name, args in hookspecs.HOOKS.items():
        doc = inspect.getdoc(getattr(hookspecs, name))
        doc = re.sub(r":(?:class|func|mod):`~?(?:[\w.]+\.)?(\w+)`", r"`\1`", doc)
        doc = doc.replace("``", "`").replace(":returns:", "**Returns:**")
        doc = re.sub(r":param (\w+):", r"**\1**:", doc)
        out.append("### `%s(%s)`\n\n%s\n" % (name, ", ".join(args), doc))
    return "\n".join(out)


if __name__ == "__main__":
    print(render())
