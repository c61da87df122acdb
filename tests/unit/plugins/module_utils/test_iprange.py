# -*- coding: utf-8 -*-
# Copyright: underlay.alicloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
import ipaddress

import pytest

from ansible_collections.underlay.alicloud.plugins.module_utils import iprange


@pytest.mark.parametrize('entries, expected', [
    ([], []),
    (['172.31.199.189', '172.31.199.185', '172.31.199.186', '172.31.199.187', '172.31.199.188'], ['172.31.199.185-172.31.199.189']),
    (['10.0.0.9', '10.0.0.10', '10.0.0.12'], ['10.0.0.9-10.0.0.10', '10.0.0.12']),   # numeric, not string, order
    (['10.0.0.5-10.0.0.7', '10.0.0.8', '10.0.0.1'], ['10.0.0.1', '10.0.0.5-10.0.0.8']),
    (['10.0.0.5-10.0.0.9', '10.0.0.6-10.0.0.7'], ['10.0.0.5-10.0.0.9']),             # nested range
    (['10.0.0.5', '10.0.0.5'], ['10.0.0.5']),
    (['10.0.0.1-10.0.0.1'], ['10.0.0.1']),
    (['10.0.0.255', '10.0.1.0'], ['10.0.0.255-10.0.1.0']),                           # across an octet
    (['2408:4005:39c::a', '2408:4005:39c::b', '2408:4005:39c::10'], ['2408:4005:39c::a-2408:4005:39c::b', '2408:4005:39c::10']),
    (['2408:4005:39c:0:0:0:0:1'], ['2408:4005:39c::1']),                             # compressed text
    (['fd00::1', '10.0.0.1', '10.0.0.2'], ['10.0.0.1-10.0.0.2', 'fd00::1']),          # IPv4 before IPv6
    ('10.0.0.3', ['10.0.0.3']),
])
def test_canonical(entries, expected):
    assert iprange.canonical(entries) == expected


@pytest.mark.parametrize('entry, message', [
    ('10.0.0.300', "'10.0.0.300' is not an IP address"),
    ('10.0.0.9-10.0.0.1', 'first address is above the last one'),
    ('10.0.0.1-fd00::1', 'mixes IPv4 and IPv6'),
    ('10.0.0.0/24', 'is not an IP address'),
    ('', 'is not an IP address'),
])
def test_parse_errors(entry, message):
    with pytest.raises(iprange.IPRangeError, match=message.replace('(', r'\(')):
        iprange.parse([entry])


def test_set_operations():
    left = iprange.parse(['10.0.0.1-10.0.0.10', 'fd00::1-fd00::3'])
    right = iprange.parse(['10.0.0.3', '10.0.0.5-10.0.0.6', '10.0.0.10-10.0.0.20', 'fd00::2'])
    assert iprange.format_ranges(iprange.subtract(left, right)) == ['10.0.0.1-10.0.0.2', '10.0.0.4', '10.0.0.7-10.0.0.9', 'fd00::1', 'fd00::3']
    assert iprange.format_ranges(iprange.intersect(left, right)) == ['10.0.0.3', '10.0.0.5-10.0.0.6', '10.0.0.10', 'fd00::2']
    assert iprange.size(left) == 13
    assert iprange.contains(left, '10.0.0.10') and not iprange.contains(left, '10.0.0.11')
    assert not iprange.contains(left, '::a00:1')       # same integer as 10.0.0.1, other family
    assert iprange.subtract(left, left) == [] and iprange.intersect(left, []) == []
    assert iprange.addresses(iprange.parse(['10.0.0.1-10.0.0.3']), limit=2) == ['10.0.0.1', '10.0.0.2']


def test_huge_ipv6_range_stays_cheap():
    whole = iprange.parse(['fd00::-fd00::ffff:ffff:ffff:ffff'])
    hole = iprange.parse(['fd00::5'])
    assert iprange.size(iprange.subtract(whole, hole)) == 2 ** 64 - 1
    assert iprange.format_ranges(iprange.subtract(whole, hole))[0] == 'fd00::-fd00::4'


def test_reserved_addresses():
    v4 = iprange.format_ranges(iprange.reserved_interval_set(ipaddress.ip_network('192.168.0.0/24')))
    assert v4 == ['192.168.0.0', '192.168.0.253-192.168.0.255']
    v6 = iprange.format_ranges(iprange.reserved_interval_set(ipaddress.ip_network('2408:4005:39c:1::/64')))
    assert v6 == ['2408:4005:39c:1::', '2408:4005:39c:1:ffff:ffff:ffff:fff7-2408:4005:39c:1:ffff:ffff:ffff:ffff']
