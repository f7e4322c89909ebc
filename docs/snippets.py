"""Code in the docs comes from the examples, by cog (https://nedbatchelder.com/code/cog).

    cog -r -I docs docs/writing-plugins.md        # regenerate after changing an example
    cog --check -I docs docs/writing-plugins.md   # what tests/test_docs.py runs in CI

A region of an example file is marked ``# [docs:NAME]`` ... ``# [/docs:NAME]``.
"""

import pathlib

import cog

ROOT = pathlib.Path(__file__).resolve().parent.parent


def region(path, name=None):
    """The text of ``path`` (relative to the repository), or of its region ``name``."""
    text = (ROOT / path).read_text(encoding="utf-8")
    if name is None:
        return text
    start, end = "# [docs:%s]\n" % name, "# [/docs:%s]\n" % name
    if start not in text or end not in text:
        raise ValueError("%s has no region %s" % (path, name))
    return text.split(start, 1)[1].split(end, 1)[0]


def show(path, name=None, lang="python", drop_comments=False):
    """Write a fenced code block with the file or region."""
    text = region(path, name)
    if drop_comments:
        text = "".join(line for line in text.splitlines(True) if not line.startswith("#"))
    cog.outl("```%s" % lang)
    cog.out(text.strip("\n") + "\n")
    cog.outl("```")
