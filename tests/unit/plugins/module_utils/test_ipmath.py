"""vSwitch address arithmetic."""
import pytest

from ansible_collections.underlay.alicloud.plugins.module_utils.ipmath import (
    canonical_ip, ip_sort_key, is_reserved, reserved_addresses, usable_count, vswitch_gateway)


@pytest.mark.parametrize('cidr,gateway', [
    ('172.31.192.0/20', '172.31.207.253'), ('192.168.0.0/24', '192.168.0.253'), ('10.0.0.0/16', '10.0.255.253'),
    ('192.168.1.0/29', '192.168.1.5'), ('2408:4005:3a1:a400::/64', '2408:4005:3a1:a400:ffff:ffff:ffff:fffd'),
])
def test_gateway_is_last_address_minus_two(cidr, gateway):
    assert vswitch_gateway(cidr) == gateway


def test_reserved_and_usable_ipv4():
    assert reserved_addresses('192.168.1.0/24') == ['192.168.1.0', '192.168.1.253', '192.168.1.254', '192.168.1.255']
    assert usable_count('192.168.1.0/24') == 252
    assert usable_count('172.31.192.0/20') == 4092
    assert is_reserved('192.168.1.253', '192.168.1.0/24') and is_reserved('192.168.1.0', '192.168.1.0/24')
    assert not is_reserved('192.168.1.252', '192.168.1.0/24') and not is_reserved('192.168.1.1', '192.168.1.0/24')
    assert not is_reserved('10.0.0.0', '192.168.1.0/24') and not is_reserved('::1', '192.168.1.0/24')


def test_reserved_and_usable_ipv6():
    reserved = reserved_addresses('2408:4005:3a1:a400::/64')
    assert len(reserved) == 10 and reserved[0] == '2408:4005:3a1:a400::'
    assert reserved[1] == '2408:4005:3a1:a400:ffff:ffff:ffff:fff7' and reserved[-1] == '2408:4005:3a1:a400:ffff:ffff:ffff:ffff'
    assert usable_count('2408:4005:3a1:a400::/64') == 2 ** 64 - 10
    assert is_reserved('2408:4005:3a1:a400:ffff:ffff:ffff:fff7', '2408:4005:3a1:a400::/64')
    assert not is_reserved('2408:4005:3a1:a400:ffff:ffff:ffff:fff6', '2408:4005:3a1:a400::/64')


def test_bad_cidr_names_the_value():
    with pytest.raises(ValueError, match="'10.0.0.1/24'"):
        vswitch_gateway('10.0.0.1/24')
    with pytest.raises(ValueError, match='nonsense'):
        usable_count('nonsense')


def test_numeric_sort_and_canonical_form():
    ips = ['10.0.0.10', '10.0.0.9', '10.0.0.100', '2001:db8::2', '2001:db8::10']
    assert sorted(ips, key=ip_sort_key) == ['10.0.0.9', '10.0.0.10', '10.0.0.100', '2001:db8::2', '2001:db8::10']
    assert canonical_ip('2001:DB8:0:0::A') == '2001:db8::a'
