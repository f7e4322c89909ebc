"""The server's failure limit holds for parallel logins through real libpam.

40 pamtester processes with wrong passwords at once (issue 8 found 20 walking
through ``max_fail 5``): the server checks five, the rest are refused as
``blocked`` unchecked, the right password after them is refused too, and none of
the refusals becomes an offline login (a refusal is final).
"""

from concurrent.futures import ThreadPoolExecutor

from test_offline_faults import Site

from offline_testlib import PW


def test_forty_parallel_wrong_logins_check_max_fail(pam_harness, system_user, realm):
    site = Site(realm, pam_harness, system_user)
    # 40 pamtester processes at once on a loaded machine: a 1 s connect_timeout makes some
    # logins go offline (counted by the cache, not the server), which is not what is tested.
    site.options = site.options.replace("connect_timeout=1 ", "connect_timeout=30 ")
    pam_harness.service("login", pam_harness.line(site.options))
    assert site.run(PW).ok  # the offline cache is written: a refusal must not fall back to it
    with ThreadPoolExecutor(40) as pool:
        results = list(pool.map(site.run, ["wrong guess %d" % i for i in range(40)]))
    assert [r.code for r in results] == ["AUTH_ERR"] * 40
    log = realm.server_log()
    assert log.count("user=%s host=h1 token=- reason=wrong_credentials" % site.user) == 5
    assert log.count("user=%s host=h1 token=- reason=blocked" % site.user) == 35
    right = site.run(PW)
    assert right.code == "AUTH_ERR"
    assert any("blocked" in line for line in right.new)
    assert not any("offline cache of token" in line for line in right.new)
    realm.admin("user", "unblock", site.user)
    assert site.run(PW).ok
