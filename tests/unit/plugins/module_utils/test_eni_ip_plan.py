"""Unit tests for the pure ENI address planner."""
import pytest

from ansible_collections.underlay.alicloud.plugins.module_utils.eni_ip_plan import (
    EniIpPlanError,
    batches,
    count_batches,
    plan_family,
    sort_ips,
)

CUR = ['10.0.0.12', '10.0.0.9', '10.0.0.10']


def test_sort_is_numeric_and_deduplicated():
    assert sort_ips(['10.0.0.10', '10.0.0.9', '10.0.0.9']) == ['10.0.0.9', '10.0.0.10']


def test_reach_count_adds_only_the_difference():
    plan = plan_family(CUR, count=5, limit=5)
    assert plan['add'] == [] and plan['remove'] == []
    assert plan['add_count'] == 2 and plan['total_after'] == 5


def test_count_already_met_is_a_no_op():
    plan = plan_family(CUR, count=3)
    assert (plan['add'], plan['add_count'], plan['remove']) == ([], 0, [])


def test_count_below_current_without_purge_keeps_everything():
    plan = plan_family(CUR, count=1)
    assert plan['remove'] == [] and plan['total_after'] == 3


def test_purge_to_count_drops_highest_unprotected_first():
    plan = plan_family(CUR, count=1, purge=True, protected=['10.0.0.12'])
    assert plan['remove'] == ['10.0.0.9', '10.0.0.10']
    assert plan['after'] == ['10.0.0.12']


def test_purge_to_count_exact_choice():
    plan = plan_family(CUR, count=1, purge=True)
    assert plan['remove'] == ['10.0.0.10', '10.0.0.12']
    assert plan['after'] == ['10.0.0.9']


def test_purge_to_exact_list():
    plan = plan_family(CUR, addresses=['10.0.0.9', '10.0.0.20'], purge=True)
    assert plan['add'] == ['10.0.0.20']
    assert plan['remove'] == ['10.0.0.10', '10.0.0.12']
    assert plan['after'] == ['10.0.0.9', '10.0.0.20']


def test_protected_ip_refused_and_named():
    with pytest.raises(EniIpPlanError, match=r'10\.0\.0\.10.*protected'):
        plan_family(CUR, addresses=['10.0.0.9', '10.0.0.12'], purge=True, protected=['10.0.0.10'])


def test_shrink_blocked_by_protected_names_them():
    with pytest.raises(EniIpPlanError, match=r'10\.0\.0\.10, 10\.0\.0\.12 in use'):
        plan_family(CUR, count=1, purge=True, protected=['10.0.0.10', '10.0.0.12', '10.0.0.9'])


def test_quota_names_the_limit():
    with pytest.raises(EniIpPlanError, match='quota allows 5 per ENI'):
        plan_family(CUR, count=6, limit=5)


def test_listed_addresses_count_towards_quota():
    with pytest.raises(EniIpPlanError, match='4 .* allows 3'):
        plan_family(CUR, addresses=['10.0.0.30'], limit=3)


def test_count_smaller_than_list_is_rejected():
    with pytest.raises(EniIpPlanError, match='2 addresses listed but the count asks for only 1'):
        plan_family([], count=1, addresses=['10.0.0.5', '10.0.0.6'])


@pytest.mark.parametrize('bad', [-1, '3', True, 1.5])
def test_bad_count(bad):
    with pytest.raises(EniIpPlanError, match='non-negative integer'):
        plan_family([], count=bad)


def test_bad_address_named():
    with pytest.raises(EniIpPlanError, match="'10.0.0.300' is not an IP address"):
        plan_family([], addresses=['10.0.0.300'])


def test_wrong_family_named():
    with pytest.raises(EniIpPlanError, match='2001:db8::1 is not an IPv4 address'):
        plan_family([], addresses=['2001:db8::1'])


def test_primary_cannot_be_secondary():
    with pytest.raises(EniIpPlanError, match="primary address"):
        plan_family([], addresses=['10.0.0.5'], primary='10.0.0.5')


def test_ipv6_family():
    plan = plan_family(['2408:4005:3a1:a400::10'], count=3, version=6, limit=6,
                       label='ipv6_addresses')
    assert plan['add_count'] == 2
    plan = plan_family(['2408:4005:3a1:a400::10'], addresses=['2408:4005:3a1:a400::0011'], version=6)
    assert plan['add'] == ['2408:4005:3a1:a400::11']


def test_batching():
    assert batches(list(range(23)), 10) == [list(range(10)), list(range(10, 20)), [20, 21, 22]]
    assert count_batches(23, 10) == [10, 10, 3]
    assert count_batches(0, 10) == []
