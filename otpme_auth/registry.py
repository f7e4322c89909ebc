"""Installed plugins: discovered once through entry points, then cached.

Entry-point discovery (``importlib.metadata``) costs ~25 ms of import alone,
more than the whole login may spend.  So the registry is scanned only when
the installed packages change, and kept in a small cache file:

* one cache per installation: its file is named after the installation's site
  directories, the ones ``install-pam`` bakes into the entry script
  (:func:`otpme_auth.install.site_dirs`), never after the calling program's
  ``sys.prefix`` or ``PATH`` (pam_python takes ``sys.prefix`` from ``PATH``), so
  ``otpme-auth refresh-plugins`` writes the very file the PAM module reads.
* fresh: the cache records the modification time and inode of each of those
  directories; installing, upgrading or removing a package changes its
  site-packages directory, and the next login rescans.
  ``otpme-auth refresh-plugins`` (and ``check-config``) rescan on demand.
* no stale failure: a cache that records a broken plugin is not trusted; the
  registry rescans (in memory, and rewrites the cache), so a fixed plugin is
  usable at the next login without a refresh.
* trusted: the cache tells which module to import, so it is read only if it
  and its directory are owned by root (or the running user) and writable by
  no one else; otherwise it is ignored (and a warning logged) and the
  registry is scanned in memory.
* .pth files: the entry script puts the site directories on ``sys.path``
  without reading their ``.pth`` files (``site.addsitedir`` at every login
  cost more than the rest of the registry).  The scan records which
  directories hold a ``.pth`` file a plugin may need (an editable install's
  finder or path; setuptools' ``distutils-precedence.pth`` is not one), and
  the registry reads those, as ``site`` would, before it imports a plugin.
  A ``.pth`` file added or removed changes the directory: the next login rescans.

A scan imports each plugin, asks it for its options (to know which options
enable it) and validates its hooks with pluggy; a broken plugin is recorded
with its error, and a line that enables it fails closed.
"""

import os
import sys

from . import __version__
from .errors import PluginError

GROUP = "otpme_auth"
FORMAT = "otpme-auth-registry 2"
DEFAULT_CACHE_DIR = "/var/cache/otpme-auth"
#: .pth files no plugin needs: setuptools' shim for ``import distutils``.
IGNORED_PTH = frozenset({"distutils-precedence.pth"})


class PluginInfo:
    """What the registry knows of one installed plugin."""

    __slots__ = ("name", "entry", "dist", "version", "options", "enabling", "hooks", "error")

    def __init__(self, name, entry, dist="", version="", options=(), enabling=(), hooks=(), error=""):
        self.name = name
        self.entry = entry
        self.dist = dist
        self.version = version
        self.options = tuple(options)
        self.enabling = tuple(enabling)
        self.hooks = tuple(hooks)
        self.error = error

    def __repr__(self):
        return "<PluginInfo %s %s%s>" % (self.name, self.entry, " BROKEN" if self.error else "")

    def to_line(self):
        fields = [self.name, self.entry, self.dist, self.version, ",".join(self.options),
                  ",".join(self.enabling), ",".join(self.hooks), _flat(self.error)]
        return "plugin\t" + "\t".join(fields)

    @classmethod
    def from_line(cls, line):
        kind, *fields = line.split("\t")
        if kind != "plugin" or len(fields) != 8:
            raise ValueError("bad registry line")
        name, entry, dist, version, options, enabling, hooks, error = fields
        split = lambda s: tuple(x for x in s.split(",") if x)  # noqa: E731
        return cls(name, entry, dist, version, split(options), split(enabling), split(hooks), error)


def _flat(text):
    return " ".join(str(text).split())


def fingerprint(paths):
    """A string that changes when a package is installed, upgraded or removed in ``paths``."""
    parts = [FORMAT, __version__]
    for path in paths:
        try:
            st = os.stat(path or ".")
        except OSError:
            continue
        parts.append("%s:%d:%d" % (path, st.st_mtime_ns, st.st_ino))
    return "|".join(parts)


def pth_dirs(paths):
    """Those of ``paths`` that hold a ``.pth`` file a plugin may need (recorded in the cache)."""
    dirs = []
    for path in paths:
        try:
            names = os.listdir(path)
        except OSError:
            continue
        if any(n.endswith(".pth") and n not in IGNORED_PTH for n in names):
            dirs.append(path)
    return dirs


#: The site directories whose .pth files this process has read (every PAM call of an
#: application builds its own Registry; pam_python keeps the interpreter between them).
_PTH_READ = set()


def read_pth(dirs):
    """Read the ``.pth`` files of site directories ``dirs`` as ``site`` does.

    The entries they add go right after the last of ``dirs`` on ``sys.path``,
    so the installation still comes before Debian's dist-packages.
    """
    import site
    before = list(sys.path)
    for path in dirs:
        site.addsitedir(path)
    added = [p for p in sys.path if p not in before]
    at = max([before.index(d) + 1 for d in dirs if d in before] or [0])
    sys.path[:] = before[:at] + added + before[at:]


def load_object(entry):
    """Import ``module[:attribute]`` and return the object."""
    module, _, attr = entry.partition(":")
    obj = __import__(module, fromlist=["_"])
    for part in attr.split(".") if attr else ():
        obj = getattr(obj, part)
    return obj


def declared_options(obj):
    """The options a plugin object declares (its declare hook, or none)."""
    declare = getattr(obj, "otpme_auth_declare_options", None)
    if declare is None:
        return []
    options = declare()
    if not isinstance(options, (list, tuple)):
        raise TypeError("otpme_auth_declare_options must return a list of Option")
    from .options import Option
    seen = set()
    for opt in options:
        if not isinstance(opt, Option):
            raise TypeError("otpme_auth_declare_options returned %r, not an Option" % (opt,))
        if opt.name in seen:
            raise TypeError("option %s is declared twice" % opt.name)
        seen.add(opt.name)
    return list(options)


class Registry:
    """The installed plugins, from the cache when it is fresh and trusted."""

    def __init__(self, cache_dir=DEFAULT_CACHE_DIR, log=None, paths=None, unread_pth=()):
        """:param paths: the installation's site directories (the entry script's
        ``SITE_DIRS``); by default those of the installation this code runs from.
        :param unread_pth: those of ``paths`` whose ``.pth`` files this process has
        not read (the entry script added them to ``sys.path`` itself): the registry
        reads them when the scan found that they matter."""
        self.cache_dir = cache_dir
        self.log = log
        if paths is None:
            from .install import site_dirs
            paths = site_dirs()
        self.paths = list(paths)
        self.unread_pth = list(unread_pth)
        self._plugins = None
        self._objects = {}

    # -- reading --------------------------------------------------------

    def installed(self):
        """name -> PluginInfo for every installed plugin."""
        if self._plugins is None:
            fp = fingerprint(self.paths)
            cached = self._read_cache(fp) if self.cache_dir else None
            if cached is not None and any(info.error for info in cached[0].values()):
                cached = None  # a recorded failure may have been fixed since: look again
            if cached is None:
                self.refresh(fp)
            else:
                self._read_pth(cached[1])
                self._plugins = cached[0]
        return self._plugins

    def _read_pth(self, dirs):
        unread = [d for d in dirs if d in self.unread_pth and d not in _PTH_READ]
        if unread:
            read_pth(unread)
            _PTH_READ.update(unread)

    def load(self, name):
        """Import an installed plugin and return its object."""
        if name not in self._objects:
            info = self.installed()[name]
            try:
                self._objects[name] = load_object(info.entry)
            except Exception as exc:
                raise PluginError(name, "cannot import %s: %s: %s" % (
                    info.entry, type(exc).__name__, exc)) from exc
        return self._objects[name]

    def options_of(self, name):
        """The options an installed plugin declares (imports it)."""
        try:
            return declared_options(self.load(name))
        except PluginError:
            raise
        except Exception as exc:
            raise PluginError(name, "declaring options failed: %s: %s" % (
                type(exc).__name__, exc)) from exc

    def cache_path(self):
        import binascii
        key = binascii.crc32("\0".join(self.paths).encode())
        return os.path.join(self.cache_dir, "plugins-%08x.cache" % key)

    def _read_cache(self, fp):
        path = self.cache_path()
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            return None
        try:
            if not (_trusted(os.fstat(fd)) and _trusted(os.stat(self.cache_dir))):
                self._warn("ignoring plugin cache %s: it must be owned by root and writable "
                           "by no one else" % path)
                return None
            data = []
            while True:  # os.read, not a text file object: this runs at every login
                chunk = os.read(fd, 65536)
                if not chunk:
                    break
                data.append(chunk)
        finally:
            os.close(fd)
        try:
            lines = b"".join(data).decode("utf-8").split("\n")
        except UnicodeDecodeError:
            lines = []
        if len(lines) < 3 or lines[0] != FORMAT or lines[1] != "fingerprint\t" + fp \
                or lines[2].split("\t")[0] != "pth":
            return None
        # Only the installation's own directories, whatever the file says.
        pth = [d for d in lines[2].split("\t")[1:] if d in self.paths]
        plugins = {}
        try:
            for line in lines[3:]:
                if line:
                    info = PluginInfo.from_line(line)
                    plugins[info.name] = info
        except ValueError:
            self._warn("ignoring corrupt plugin cache %s" % path)
            return None
        return plugins, pth

    def _write_cache(self, fp, plugins, pth):
        path = self.cache_path()
        tmp = "%s.%d.tmp" % (path, os.getpid())
        body = "\n".join([FORMAT, "fingerprint\t" + fp, "\t".join(["pth"] + pth)]
                         + [plugins[n].to_line() for n in sorted(plugins)]) + "\n"
        try:
            os.makedirs(self.cache_dir, mode=0o755, exist_ok=True)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                         0o644)
            try:
                os.write(fd, body.encode("utf-8"))
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, path)
        except OSError as exc:
            self._debug("not caching the plugin registry in %s: %s" % (self.cache_dir, exc.strerror))
            try:
                os.unlink(tmp)
            except OSError:
                pass

    def _warn(self, message):
        if self.log:
            self.log.warning(message)

    def _debug(self, message):
        if self.log:
            self.log.debug(message)

    # -- scanning -------------------------------------------------------

    def scan(self):
        """Discover, import and validate every installed plugin (slow; cached)."""
        from importlib.metadata import entry_points

        from .manager import validate_plugin
        from .options import CORE, CORE_OPTIONS, valid_name

        core_names = {o.name for o in CORE_OPTIONS}
        found = {}
        for ep in entry_points(group=GROUP):
            dist = getattr(ep, "dist", None)
            found.setdefault(ep.name, []).append(
                (ep.value, dist.name if dist else "", dist.version if dist else ""))
        plugins = {}
        for name, providers in sorted(found.items()):
            entry, dist, version = providers[0]
            info = PluginInfo(name, entry, dist, version)
            plugins[name] = info
            if len({p[0] for p in providers}) > 1:
                info.error = "provided by more than one package (%s)" % ", ".join(
                    sorted(p[1] for p in providers))
                continue
            if not valid_name(name) or name in core_names or name == CORE:
                info.error = "the name %r is not allowed for a plugin" % name
                continue
            try:
                obj = load_object(entry)
                options = declared_options(obj)
                validate_plugin(name, obj)
                from .host import find_impls
                hooks = sorted(find_impls(name, obj))
            except Exception as exc:
                info.error = "%s: %s" % (type(exc).__name__, exc)
                continue
            self._objects[name] = obj
            clash = [o.name for o in options if o.name in core_names]
            if clash:
                info.error = "declares %s, owned by the core" % ", ".join(clash)
                continue
            info.options = tuple(o.name for o in options)
            info.enabling = tuple(o.name for o in options if o.enables)
            info.hooks = tuple(hooks)
        return plugins

    def refresh(self, fp=None):
        """Rescan now and rewrite the cache; returns the plugins."""
        fp = fp or fingerprint(self.paths)
        pth = pth_dirs(self.paths)
        self._read_pth(pth)
        self._plugins = self.scan()
        if self.cache_dir:
            self._write_cache(fp, self._plugins, pth)
        return self._plugins


def _trusted(st):
    return st.st_uid in (0, os.geteuid()) and not st.st_mode & 0o022


class StaticRegistry(Registry):
    """A registry of given plugin objects (the plugin kit and tests use it)."""

    def __init__(self, plugins):
        super().__init__(cache_dir=None, paths=())
        self._given = dict(plugins)
        self._objects = dict(plugins)

    def scan(self):
        from .host import find_impls
        from .manager import validate_plugin
        infos = {}
        for name, obj in self._given.items():
            validate_plugin(name, obj)
            options = declared_options(obj)
            infos[name] = PluginInfo(name, "<given>", options=[o.name for o in options],
                                     enabling=[o.name for o in options if o.enables],
                                     hooks=sorted(find_impls(name, obj)))
        return infos


__all__ = ["Registry", "StaticRegistry", "PluginInfo"]
