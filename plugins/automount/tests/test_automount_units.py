"""automount's pure parts: where a share may be mounted and with which options."""

import os

import pytest
from hypothesis import given, settings, strategies as st

from otpme_auth_automount.backends import MountError, run_helper
from otpme_auth_automount.mounting import mount_options, mount_point

ROOT = "/media/otpme-auth/%u"


def test_mount_points_stay_inside_the_root():
    share = {"name": "home"}
    assert mount_point(share, "alice", ROOT) == ("/media/otpme-auth/alice",
                                                 "/media/otpme-auth/alice/home")
    assert mount_point(dict(share, mountpoint="net/%s-%u"), "alice", ROOT)[1] == \
        "/media/otpme-auth/alice/net/home-alice"
    assert mount_point(dict(share, mountpoint="/media/otpme-auth/%u/x"), "alice", ROOT)[1] == \
        "/media/otpme-auth/alice/x"
    for bad in ("/etc", "../bob/home", "a/../../bob", "/media/otpme-auth/bob/x",
                "/media/otpme-auth/alice", "/media/otpme-auth/alicex/y", "."):
        with pytest.raises(MountError):
            mount_point(dict(share, mountpoint=bad), "alice", ROOT)


@settings(max_examples=300, deadline=None)
@given(st.text(min_size=1, max_size=40), st.sampled_from(["alice", "b.o-b", "c_1"]))
def test_any_template_is_inside_the_root_or_refused(template, user):
    try:
        root, target = mount_point({"name": "s", "mountpoint": template}, user, ROOT)
    except MountError:
        return
    assert target.startswith(root + "/") and os.path.normpath(target) == target
    assert "/../" not in target + "/"


def test_nosuid_nodev_always_unless_allowed():
    assert mount_options({"options": ["size=1m"]}, "") == ["size=1m", "nosuid", "nodev"]
    # Asked by the share but not permitted by the admin: the defaults stay.
    assert mount_options({"options": ["suid", "dev", "exec"]}, "") == ["nosuid", "nodev"]
    assert mount_options({"options": ["suid"]}, "suid") == ["nodev"]
    assert mount_options({"options": ["dev", "suid"]}, "suid,dev") == []
    # Permitted but not asked: nothing changes.
    assert mount_options({"options": []}, "suid,dev") == ["nosuid", "nodev"]
    assert mount_options({"options": ["rw"], "ro": True}, "") == ["nosuid", "nodev", "ro"]


@pytest.mark.parametrize("opt", ["password=hunter2", "credentials=/root/c", "ssh_command=sh",
                                 "IdentityFile=/k", "a b", "x,y", ""])
def test_options_that_carry_secrets_or_odd_text_are_refused(opt):
    with pytest.raises(MountError) as exc:
        mount_options({"options": [opt]}, "")
    assert "hunter2" not in str(exc.value)


def test_a_missing_helper_is_one_clear_line():
    with pytest.raises(MountError, match="the mount helper mount.nosuchfs is not installed"):
        run_helper(["mount.nosuchfs", "a", "b"], 5)


def test_allow_options_takes_only_suid_dev_exec(run_login):
    import otpme_auth_automount as automount
    from otpme_auth.testing import options_for
    assert options_for(automount, "automount_allow_options=suid,dev",
                       name="automount").automount_allow_options == "suid,dev"
    with pytest.raises(Exception, match="only suid, dev and exec"):
        options_for(automount, "automount_allow_options=suid,nosuidx", name="automount")


def test_log_text_from_a_share_is_one_printable_line():
    from otpme_auth_automount.mounting import _clean
    with pytest.raises(MountError) as exc:
        mount_point({"name": "s", "mountpoint": "/etc/\x1b[2Jx\nfake: line"}, "alice", ROOT)
    assert _clean(exc.value).isprintable() and "\n" not in _clean(exc.value)
