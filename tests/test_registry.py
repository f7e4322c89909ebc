"""Plugin discovery: entry points scanned once, cached, kept fresh, trusted only when safe."""

import os
import types

import pluggy
import pytest
from otpme_auth.testing import make_plugin

from otpme_auth import allow, hookimpl
from otpme_auth.errors import PluginError
from otpme_auth.log import Log
from otpme_auth.manager import validate_plugin
from otpme_auth.registry import FORMAT, PluginInfo, Registry


@pytest.fixture
def paths(tmp_path):
    """A private 'sys.path' whose directory mtimes make the fingerprint."""
    site = tmp_path / "site"
    site.mkdir()
    return [str(site)]


@pytest.fixture
def cache_dir(tmp_path):
    d = tmp_path / "cache"
    d.mkdir(mode=0o700)
    return str(d)


def counting_registry(cache_dir, paths, log=None):
    reg = Registry(cache_dir, log=log, paths=paths)
    reg.scans = 0
    real = reg.scan

    def scan():
        reg.scans += 1
        return real()
    reg.scan = scan
    return reg


def test_real_entry_points_are_found():
    installed = Registry(cache_dir=None).installed()
    assert {"passfile", "raiser", "tripwire"} <= set(installed)
    assert installed["passfile"].options == ("passfile_path",)
    assert "otpme_auth_verify" in installed["passfile"].hooks
    assert installed["passfile"].dist == "otpme-auth-passfile"
    assert not installed["passfile"].error


def test_cache_is_written_then_used(cache_dir, paths):
    first = counting_registry(cache_dir, paths)
    plugins = first.installed()
    assert first.scans == 1
    st = os.stat(first.cache_path())
    assert st.st_mode & 0o022 == 0
    second = counting_registry(cache_dir, paths)
    assert set(second.installed()) == set(plugins) and second.scans == 0


def test_a_cached_failure_does_not_outlive_its_fix(cache_dir, paths):
    """A cache written while a plugin was broken must not keep refusing logins."""
    counting_registry(cache_dir, paths).installed()
    reg = counting_registry(cache_dir, paths)
    with open(reg.cache_path()) as fh:
        lines = fh.read().split("\n")
    broken = [line for line in lines if line.startswith("plugin\tpassfile\t")]
    assert broken
    lines = [line + "ImportError: was broken" if line in broken else line for line in lines]
    with open(reg.cache_path(), "w") as fh:
        fh.write("\n".join(lines))
    assert not reg.installed()["passfile"].error  # fixed since: rescanned
    assert reg.scans == 1
    again = counting_registry(cache_dir, paths)
    assert not again.installed()["passfile"].error and again.scans == 0  # and rewritten


def test_the_cache_is_named_by_the_installation_not_the_caller(cache_dir, paths, monkeypatch):
    name = Registry(cache_dir, paths=paths).cache_path()
    monkeypatch.setattr("sys.prefix", "/somewhere/else")
    monkeypatch.setattr("sys.path", ["/other"] + list(__import__("sys").path))
    assert Registry(cache_dir, paths=paths).cache_path() == name


def test_installing_a_package_makes_the_next_login_rescan(cache_dir, paths):
    counting_registry(cache_dir, paths).installed()
    os.mkdir(os.path.join(paths[0], "newpkg-1.0.dist-info"))  # what pip does
    again = counting_registry(cache_dir, paths)
    again.installed()
    assert again.scans == 1


def test_untrusted_cache_is_ignored(cache_dir, paths):
    counting_registry(cache_dir, paths).installed()
    reg = counting_registry(cache_dir, paths)
    os.chmod(reg.cache_path(), 0o666)  # anyone could have written it
    log = Log("t", to_syslog=False)
    reg.log = log
    reg.installed()
    assert reg.scans == 1
    assert any("ignoring plugin cache" in line for _, line in log.records)


def test_untrusted_cache_dir_is_ignored(cache_dir, paths):
    counting_registry(cache_dir, paths).installed()
    os.chmod(cache_dir, 0o777)
    reg = counting_registry(cache_dir, paths)
    reg.installed()
    assert reg.scans == 1


def test_cache_symlink_is_not_followed(cache_dir, paths, tmp_path):
    reg = counting_registry(cache_dir, paths)
    target = tmp_path / "elsewhere"
    target.write_text(FORMAT + "\n")
    os.symlink(target, reg.cache_path())
    reg.installed()
    assert reg.scans == 1


@pytest.mark.parametrize("garbage", ["", "junk", FORMAT + "\nfingerprint\tX\n",
                                     "%s\nfingerprint\t{fp}\nplugin\tonly-two-fields\n"])
def test_corrupt_cache_means_rescan(cache_dir, paths, garbage):
    from otpme_auth.registry import fingerprint
    reg = counting_registry(cache_dir, paths)
    with open(reg.cache_path(), "w") as fh:
        fh.write(garbage.replace("{fp}", fingerprint(paths)).replace("%s", FORMAT))
    os.chmod(reg.cache_path(), 0o600)
    reg.installed()
    assert reg.scans == 1


def test_unwritable_cache_dir_still_works(tmp_path, paths):
    reg = Registry(str(tmp_path / "file-not-dir"), paths=paths)
    (tmp_path / "file-not-dir").write_text("x")
    assert "passfile" in reg.installed()


def test_plugin_info_line_roundtrip():
    info = PluginInfo("p", "mod:obj", "dist", "1.0", ("a", "b"), ("a",), ("otpme_auth_verify",),
                      "ImportError: no\tmodule\nnamed x")
    back = PluginInfo.from_line(info.to_line())
    assert (back.name, back.entry, back.options, back.enabling, back.hooks) == (
        "p", "mod:obj", ("a", "b"), ("a",), ("otpme_auth_verify",))
    assert back.error == "ImportError: no module named x"


# -- validation by pluggy --------------------------------------------------

def test_pluggy_rejects_a_misspelt_hook():
    plugin = types.ModuleType("typo")
    plugin.otpme_auth_verfy = hookimpl(lambda ctx: allow())
    with pytest.raises(pluggy.PluginValidationError, match="otpme_auth_verfy"):
        validate_plugin("typo", plugin)


def test_pluggy_rejects_an_argument_the_hook_does_not_offer():
    plugin = make_plugin("bad", otpme_auth_verify=lambda ctx, password: allow())
    with pytest.raises(pluggy.PluginValidationError):
        validate_plugin("bad", plugin)


def test_hookimpl_takes_no_ordering_options():
    with pytest.raises(TypeError, match="order"):
        hookimpl(tryfirst=True)


def test_host_rejects_what_pluggy_would_not_see():
    from otpme_auth.host import find_impls
    plugin = make_plugin("bad", otpme_auth_verify=lambda ctx, password: allow())
    with pytest.raises(PluginError, match="password"):
        find_impls("bad", plugin)


def test_hooks_module_is_a_valid_pluggy_spec():
    from otpme_auth.hookspecs import HOOKS
    from otpme_auth.manager import build_plugin_manager
    pm = build_plugin_manager()
    for name, args in HOOKS.items():
        caller = getattr(pm.hook, name)
        assert caller.has_spec() and tuple(caller.spec.argnames) == args


def test_pth_files_a_plugin_needs_are_read_once_recorded(cache_dir, tmp_path, monkeypatch):
    """The entry script puts site dirs on sys.path without their .pth files; the registry
    reads those that matter (an editable install's path), from the scan and from the cache."""
    import sys
    site, src = tmp_path / "site", tmp_path / "src"
    site.mkdir()
    src.mkdir()
    (src / "cold_pth_probe_module.py").write_text("VALUE = 1\n")
    (site / "__editable__.probe-0.1.pth").write_text(str(src) + "\n")
    from otpme_auth import registry
    monkeypatch.setattr(sys, "path", [str(site)] + sys.path)
    for _ in range(2):  # the scan, then the cache
        sys.path[:] = [p for p in sys.path if p != str(src)]
        monkeypatch.setattr(registry, "_PTH_READ", set())
        reg = counting_registry(cache_dir, [str(site)])
        reg.unread_pth = [str(site)]
        reg.installed()
        assert sys.path.index(str(src)) == sys.path.index(str(site)) + 1
    assert reg.scans == 0
    with open(reg.cache_path()) as fh:
        assert "pth\t%s\n" % site in fh.read()
    # The next PAM call of the same process does not read them again.
    sys.path[:] = [p for p in sys.path if p != str(src)]
    reg = counting_registry(cache_dir, [str(site)])
    reg.unread_pth = [str(site)]
    reg.installed()
    assert str(src) not in sys.path


def test_only_setuptools_distutils_shim_means_no_pth_to_read(tmp_path):
    from otpme_auth.registry import pth_dirs
    site = tmp_path / "site"
    site.mkdir()
    (site / "distutils-precedence.pth").write_text("import os\n")
    assert pth_dirs([str(site), str(tmp_path / "missing")]) == []
    (site / "extra.pth").write_text("/nonexistent\n")
    assert pth_dirs([str(site)]) == [str(site)]
