"""Pure egress logic: records, ownership, SNAT plan (overlaps, covered, foreign), IPv6 bandwidth plan, input checks."""
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
