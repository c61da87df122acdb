"""Pure egress logic: records, ownership, SNAT plan (overlaps, covered, foreign), IPv6 bandwidth plan, input checks."""
import re

import pytest

from ansible_collections.underlay.alicloud.plugins.module_utils import egress

VSW = {'vsw-a': '172.31.192.0/20', 'vsw-b': '192.168.0.0/24'}
VPC = ['172.16.0.0/12', '192.168.0.0/16']


def entry(eid, name, cidr, vsw=None, ips='47.0.0.1'):
    return egress.snat_record({'SnatEntryId': eid, 'SnatEntryName': name, 'SourceCIDR': cidr, 'SourceVSwitchId': vsw or '',
                               'SnatIp': ips, 'SnatTableId': 'stb-1', 'Status': 'Available'})


def wanted(*sources):
    return [egress.normalise_source(s, VSW, VPC) for s in sources]


def test_records_and_ownership():
    nat = egress.nat_record({'NatGatewayId': 'ngw-1', 'Tags': {'Tag': [{'TagKey': 'managed-by', 'TagValue': 'underlay.alicloud'}]},
                             'NatGatewayPrivateInfo': {'VswitchId': 'vsw-a'}, 'SnatTableIds': {'SnatTableId': ['stb-1']},
                             'IpLists': {'IpList': [{'AllocationId': 'eip-1', 'IpAddress': '47.0.0.1'}]}})
    assert nat['managed'] and nat['vswitch_id'] == 'vsw-a' and nat['eips'] == [{'allocation_id': 'eip-1', 'ip_address': '47.0.0.1'}]
    eip = egress.eip_record({'AllocationId': 'eip-1', 'Bandwidth': '5', 'Tags': {'Tag': [{'Key': 'managed-by', 'Value': 'other'}]}})
    assert eip['bandwidth'] == 5 and not eip['managed']
    assert entry('s1', 'underlay-vsw-a', '172.31.192.0/20')['managed'] and not entry('s2', 'office', '10.0.0.0/8')['managed']
    assert entry('s1', 'x', '1.0.0.0/8', ips='47.0.0.2, 47.0.0.1')['snat_ips'] == ['47.0.0.1', '47.0.0.2']
    v6 = egress.ipv6_record({'Ipv6AddressId': 'ipv6-1', 'Ipv6Address': '2408:0:0:0::10',
                             'Ipv6InternetBandwidth': {'Ipv6InternetBandwidthId': 'bw-1', 'Bandwidth': 3, 'InternetChargeType': 'PayByTraffic'}})
    assert v6['address'] == '2408::10' and v6['bandwidth'] == {'id': 'bw-1', 'bandwidth': 3, 'internet_charge_type': 'PayByTraffic'}
    assert egress.with_managed_tag({'managed-by': 'me', 'a': 'b'}) == {'managed-by': 'underlay.alicloud', 'a': 'b'}


@pytest.mark.parametrize('source,message', [
    ('vsw-zzz', 'vSwitch vsw-zzz is not a vSwitch'),
    ('10.0.0.0/8', 'CIDR 10.0.0.0/8 is outside the VPC (172.16.0.0/12, 192.168.0.0/16)'),
    ('2408::/64', 'is IPv6'),
    ('nonsense', "'nonsense' is neither a vSwitch id"),
])
def test_bad_sources(source, message):
    with pytest.raises(egress.EgressError, match=message.replace('(', r'\(').replace(')', r'\)')):
        egress.normalise_source(source, VSW, VPC)


def test_snat_plan_creates_missing_and_reports_overlaps():
    existing = [entry('s-user', 'office', '172.31.0.0/16'), entry('s-ours', 'underlay-vsw-b', '192.168.0.0/24', 'vsw-b', '47.0.0.9')]
    plan = egress.plan_snat(existing, wanted('vsw-a', 'vsw-b', '192.168.1.0/24'), ['47.0.0.1'])
    assert [c['name'] for c in plan['create']] == ['underlay-192-168-1-0-24']
    assert plan['covered'] == [{'source': 'vsw-a', 'by': 's-user', 'by_name': 'office', 'by_cidr': '172.31.0.0/16'}]
    assert [(o['source'], o['entry']) for o in plan['overlaps']] == [('vsw-a', 's-user')]
    assert [(e['id'], ips) for e, ips in plan['modify']] == [('s-ours', ['47.0.0.1'])] and plan['delete'] == []
    forced = egress.plan_snat(existing, wanted('vsw-a'), ['47.0.0.1'], skip_covered=False)
    assert [c['source'] for c in forced['create']] == ['vsw-a']


def test_snat_plan_never_touches_foreign_entries():
    existing = [entry('s-user', 'office', '172.31.192.0/20', 'vsw-a'), entry('s-old', 'underlay-vsw-x', '172.20.0.0/24')]
    plan = egress.plan_snat(existing, wanted('vsw-a'), ['47.0.0.1'], purge=True)
    assert plan['create'] == [] and [f['entry'] for f in plan['foreign']] == ['s-user']
    assert [e['id'] for e in plan['delete']] == ['s-old']
    gone = egress.plan_snat(existing, wanted('vsw-a'), [], state='absent')
    assert gone['delete'] == [] and [f['entry'] for f in gone['foreign']] == ['s-user']


def test_snat_plan_is_stable_when_done():
    existing = [entry('s1', 'underlay-vsw-a', '172.31.192.0/20', 'vsw-a')]
    plan = egress.plan_snat(existing, wanted('vsw-a'), ['47.0.0.1'])
    assert not (plan['create'] or plan['modify'] or plan['delete'])


def test_ipv6_plan():
    def rec(addr, band=None, managed=False):
        return {'address': addr, 'bandwidth': band, 'managed': managed}
    band = {'id': 'bw', 'bandwidth': 2, 'internet_charge_type': 'PayByBandwidth'}
    records = [rec('a'), rec('b', band, True), rec('c', band, False)]
    plan = egress.plan_ipv6_bandwidth(records, 5, 'PayByTraffic')
    assert [r['address'] for r in plan['allocate']] == ['a'] and [r['address'] for r in plan['modify']] == ['b']
    assert [r['address'] for r in plan['foreign']] == ['c'] and [r['address'] for r in plan['charge_drift']] == ['b']
    gone = egress.plan_ipv6_bandwidth(records, 5, 'PayByTraffic', state='absent')
    assert [r['address'] for r in gone['delete']] == ['b'] and [r['address'] for r in gone['foreign']] == ['c']


@pytest.mark.parametrize('value,charge,ok', [(1, 'PayByTraffic', True), (1000, 'PayByTraffic', True), (1001, 'PayByTraffic', False),
                                             (2000, 'PayByBandwidth', True), (0, 'PayByBandwidth', False), (5, 'PayByOld95', False)])
def test_bandwidth_ranges(value, charge, ok):
    if ok:
        assert egress.check_bandwidth('bandwidth', value, charge, egress.IPV6_BANDWIDTH_RANGES) == value
    else:
        with pytest.raises(egress.EgressError, match='bandwidth'):
            egress.check_bandwidth('bandwidth', value, charge, egress.IPV6_BANDWIDTH_RANGES)


# -- diagnosis -----------------------------------------------------------------------------------

VSWITCHES = [{'id': 'vsw-a', 'cidr': '172.31.192.0/20', 'ipv6_cidr': None},
             {'id': 'vsw-b', 'cidr': '192.168.0.0/24', 'ipv6_cidr': '2408:4005:3a1:a400::/64'}]


def gateway(gid, *entries, status='Available'):
    return {'id': gid, 'status': status, 'snat_entries': list(entries)}


def v6(address, bandwidth=None, managed=True):
    band = {'Ipv6InternetBandwidthId': 'bw-' + address[-3:], 'Bandwidth': bandwidth, 'InternetChargeType': 'PayByTraffic'} if bandwidth else {}
    tags = {'Tag': [{'Key': 'managed-by', 'Value': 'underlay.alicloud'}]} if managed else {}
    return egress.ipv6_record({'Ipv6AddressId': 'ipv6-' + address[-3:], 'Ipv6Address': address, 'Ipv6InternetBandwidth': band, 'Tags': tags})


def cloud(nat_gateways=(), ipv6=()):
    return {'vpc_id': 'vpc-lab', 'vswitches': VSWITCHES, 'nat_gateways': list(nat_gateways), 'ipv6_addresses': list(ipv6)}


def test_diagnosis_without_nat_gateway_names_the_vpc():
    found = egress.diagnose_egress(['172.31.199.185'], cloud())
    assert not found['complete'] and found['ipv6'] == []
    assert found['ipv4'][0]['state'] == 'missing' and found['ipv4'][0]['vswitch_id'] == 'vsw-a'
    assert found['summary'] == 'IPv4 172.31.199.185: no NAT gateway in VPC vpc-lab'


def test_diagnosis_finds_the_vswitch_entry_and_the_users_wider_entry():
    ours = entry('snat-ours', 'underlay-vsw-b', '192.168.0.0/24', vsw='vsw-b', ips='47.0.0.2')
    office = entry('snat-office', 'office', '172.31.0.0/16', ips='47.0.0.1')
    nat = [gateway('ngw-ours', ours), gateway('ngw-user', office)]
    on_a = egress.diagnose_egress(['172.31.199.185'], cloud(nat))['ipv4'][0]
    assert (on_a['state'], on_a['nat_gateway_id'], on_a['snat_entry'], on_a['snat_source'], on_a['managed']) == (
        'ok', 'ngw-user', 'snat-office', '172.31.0.0/16', False)
    assert on_a['reason'] == 'SNAT entry snat-office (office, source 172.31.0.0/16) on NAT gateway ngw-user to 47.0.0.1'
    on_b = egress.diagnose_egress(['192.168.0.156'], cloud(nat))
    assert on_b['complete'] and on_b['ipv4'][0]['snat_entry'] == 'snat-ours' and on_b['ipv4'][0]['snat_ips'] == ['47.0.0.2']


def test_diagnosis_prefers_the_most_specific_entry_and_reports_pending():
    wide = entry('snat-wide', 'vpc', '192.168.0.0/16')
    exact = egress.snat_record({'SnatEntryId': 'snat-b', 'SnatEntryName': 'underlay-vsw-b', 'SourceVSwitchId': 'vsw-b',
                                'SnatIp': '47.0.0.3', 'Status': 'Pending'})
    found = egress.diagnose_egress(['192.168.0.156'], cloud([gateway('ngw-1', wide, exact)]))['ipv4'][0]
    assert found['snat_entry'] == 'snat-b' and found['state'] == 'pending' and found['reason'].endswith('not Available yet (Pending)')


def test_diagnosis_names_the_uncovered_vswitch_and_the_gateways():
    found = egress.diagnose_egress(['192.168.0.156', '10.9.9.9'], cloud([gateway('ngw-1', entry('snat-a', 'a', '172.31.192.0/20', vsw='vsw-a'))]))
    assert [d['reason'] for d in found['ipv4']] == [
        'no SNAT entry covers vsw-b (192.168.0.0/24) on NAT gateway(s) ngw-1',
        'no SNAT entry covers 10.9.9.9 (in no vSwitch of VPC vpc-lab) on NAT gateway(s) ngw-1']


def test_diagnosis_of_ipv6_bandwidth_ours_foreign_missing_unknown():
    addresses = ['2408:4005:3a1:a400::156', '2408:4005:3a1:a400::157', '2408:4005:3a1:a400::161', '2408:4005:3a1:a400::999']
    found = egress.diagnose_egress(addresses, cloud(ipv6=[v6(addresses[0], 5), v6(addresses[1]), v6(addresses[2], 3, managed=False)]))
    assert [(d['state'], d['bandwidth'], d['managed']) for d in found['ipv6']] == [
        ('ok', 5, True), ('missing', None, True), ('ok', 3, False), ('missing', None, None)]
    assert found['ipv6'][0]['reason'] == 'IPv6 Internet bandwidth 5 Mbit/s (PayByTraffic, bw-156)'
    assert found['ipv6'][1]['reason'] == 'no IPv6 Internet bandwidth: the address is private to the VPC'
    assert found['ipv6'][3]['reason'] == 'not an IPv6 address of VPC vpc-lab'
    assert not found['complete']


def test_check_ipv6_addresses_canonical_or_one_line_naming_the_value():
    assert egress.check_ipv6_addresses('addresses', ['2408:4005:3a1:a400:0::10', ' 2408:4005:3a1:a400::10']) == {'2408:4005:3a1:a400::10'}
    for bad in ('192.168.0.166', '2408::zz', 'nope'):
        with pytest.raises(egress.EgressError, match=r"^addresses: '%s' is not an IPv6 address" % re.escape(bad)):
            egress.check_ipv6_addresses('addresses', [bad])
