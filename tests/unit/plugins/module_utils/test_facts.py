"""Normalisation into the host-facts contract (DESIGN.md section 4), from hand-written wire dicts."""
from ansible_collections.underlay.alicloud.plugins.module_utils.facts import (
    eni_details, eni_quota, host_facts, normalise_eni, primary_private_ip, tags_dict, vswitch_record)

from ansible_collections.underlay.alicloud.tests.unit.plugins.module_utils.fake_api import eni, instance, itype, vswitch

VSWITCHES = {'vsw-a': vswitch('vsw-a', '172.31.192.0/20'),
             'vsw-b': vswitch('vsw-b', '192.168.0.0/24', ipv6='2408:4005:3a1:a400::/64')}


def test_eni_record_matches_contract():
    raw = eni('eni-m1', 'i-master', vswitch='vsw-b', eni_type='Secondary', index=1, primary='192.168.0.151',
              secondary=['192.168.0.160', '192.168.0.9', '192.168.0.156', '192.168.0.100'],
              ipv6=['2408:4005:3a1:a400::157', '2408:4005:3a1:A400::10', '2408:4005:3a1:a400::9'])
    raw['MacAddress'] = '00:16:3E:00:00:02'
    assert normalise_eni(raw, VSWITCHES) == {
        'id': 'eni-m1', 'type': 'Secondary', 'mac': '00:16:3e:00:00:02', 'device_index': 1, 'vswitch_id': 'vsw-b',
        'cidr': '192.168.0.0/24', 'gateway': '192.168.0.253', 'primary_ip': '192.168.0.151',
        'secondary_ips': ['192.168.0.9', '192.168.0.100', '192.168.0.156', '192.168.0.160'],
        'ipv6_cidr': '2408:4005:3a1:a400::/64',
        'ipv6_ips': ['2408:4005:3a1:a400::9', '2408:4005:3a1:a400::10', '2408:4005:3a1:a400::157'],
    }


def test_eni_without_attachment_unknown_vswitch_and_primary_only_in_sets():
    raw = eni('eni-x', None, vswitch='vsw-gone', eni_type='Secondary', index=None, primary='10.1.0.5', secondary=['10.1.0.6'])
    del raw['PrivateIpAddress']
    record = normalise_eni(raw, VSWITCHES)
    assert record['device_index'] is None
    assert (record['cidr'], record['gateway'], record['ipv6_cidr']) == (None, None, None)
    assert record['primary_ip'] == '10.1.0.5' and record['secondary_ips'] == ['10.1.0.6']
    assert record['ipv6_ips'] == []


def test_eni_details_adds_identity():
    raw = eni('eni-d', 'i-1', eni_type='Secondary', index=2)
    raw.update(NetworkInterfaceName='pods', Tags={'Tag': [{'TagKey': 'k', 'TagValue': 'v'}]},
               SecurityGroupIds={'SecurityGroupId': ['sg-1']})
    record = eni_details(raw, VSWITCHES)
    assert (record['instance_id'], record['status'], record['name'], record['tags']) == ('i-1', 'InUse', 'pods', {'k': 'v'})
    assert record['security_group_ids'] == ['sg-1'] and record['vpc_id'] == 'vpc-1'
    assert eni_details(eni('eni-free', None, index=None), VSWITCHES)['instance_id'] is None


def test_quota_counts_primary_address_as_given():
    assert eni_quota(itype('ecs.g7.large', 3, 6, 6)) == {'enis': 3, 'ipv4_per_eni': 6, 'ipv6_per_eni': 6}
    assert eni_quota({'InstanceTypeId': 't', 'EniQuantity': 2, 'EniPrivateIpAddressQuantity': 2}) == \
        {'enis': 2, 'ipv4_per_eni': 2, 'ipv6_per_eni': None}
    assert eni_quota(None) is None


def test_host_facts_orders_enis_and_builds_provider_id():
    raw_enis = [
        eni('eni-s2', 'i-master', eni_type='Secondary', index=2, primary='172.31.199.200'),
        eni('eni-sx', 'i-master', eni_type='Secondary', index=None, primary='172.31.199.201'),
        eni('eni-s1', 'i-master', vswitch='vsw-b', eni_type='Secondary', index=1, primary='192.168.0.151'),
        eni('eni-p', 'i-master', eni_type='Primary', index=None, primary='172.31.199.183', secondary=['172.31.199.185']),
    ]
    raw = instance('i-master', tags={'cluster': 'lab', 'role': 'master'})
    quota = {'enis': 3, 'ipv4_per_eni': 6, 'ipv6_per_eni': 6}
    facts = host_facts(raw, raw_enis, VSWITCHES, quota)
    assert [e['id'] for e in facts['alicloud_enis']] == ['eni-p', 'eni-s1', 'eni-s2', 'eni-sx']
    assert facts['alicloud_provider_id'] == 'cn-hangzhou.i-master'
    expected = {
        'alicloud_instance_id': 'i-master', 'alicloud_region': 'cn-hangzhou', 'alicloud_zone': 'cn-hangzhou-i',
        'alicloud_instance_type': 'ecs.g7.large', 'alicloud_vpc_id': 'vpc-1', 'alicloud_hostname': 'master',
        'alicloud_tags': {'cluster': 'lab', 'role': 'master'}, 'alicloud_eni_quota': quota,
        'alicloud_private_ip': '172.31.199.183', 'alicloud_status': 'Running', 'alicloud_instance_name': 'i-master-name',
        'alicloud_vswitch_id': 'vsw-a',
    }
    assert {k: facts[k] for k in expected} == expected
    assert primary_private_ip(facts) == '172.31.199.183'


def test_host_without_listed_enis_falls_back_to_instance_address():
    facts = host_facts(instance('i-lonely'), [], VSWITCHES, None)
    assert facts['alicloud_enis'] == [] and facts['alicloud_eni_quota'] is None
    assert facts['alicloud_private_ip'] == '10.0.0.9' and primary_private_ip(facts) is None


def test_tags_both_styles_and_vswitch_record():
    assert tags_dict({'Tag': [{'TagKey': 'a', 'TagValue': '1'}, {'Key': 'b', 'Value': '2'}]}) == {'a': '1', 'b': '2'}
    assert tags_dict(None) == {}
    assert vswitch_record(VSWITCHES['vsw-b']) == {
        'id': 'vsw-b', 'name': 'vsw-b-name', 'vpc_id': 'vpc-1', 'zone_id': 'cn-hangzhou-i', 'cidr': '192.168.0.0/24',
        'gateway': '192.168.0.253', 'ipv6_cidr': '2408:4005:3a1:a400::/64', 'available_ip_count': 100,
        'usable_ip_count': 252, 'status': 'Available', 'is_default': False, 'tags': {'env': 'lab'}}
    assert vswitch_record(VSWITCHES['vsw-a'])['ipv6_cidr'] is None
