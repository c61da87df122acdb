"""Emulator read path through the real SDK: shapes, filters and paging of every Describe* action."""
import json

import pytest
from alibabacloud_ecs20140526 import models as ecs_models
from alibabacloud_vpc20160428 import models as vpc_models

from ansible_collections.underlay.alicloud.tests.emulator.ecs_emulator import EcsEmulator
from ansible_collections.underlay.alicloud.tests.emulator.worldgen import generate

LAB_IDS = ['i-bp1master', 'i-bp1worker', 'i-bp1worker2', 'i-bp1stopped', 'i-bp1prodweb']


def instance_ids(client, **filters):
    body = client.describe_instances(ecs_models.DescribeInstancesRequest(region_id='cn-hangzhou', max_results=100, **filters)).body
    return [i['InstanceId'] for i in body.to_map()['Instances']['Instance']]


def eni_ids(client, **filters):
    body = client.describe_network_interfaces(ecs_models.DescribeNetworkInterfacesRequest(region_id='cn-hangzhou', max_results=100, **filters)).body
    return [e['NetworkInterfaceId'] for e in body.to_map()['NetworkInterfaceSets']['NetworkInterfaceSet']]


@pytest.fixture(name='big', scope='module')
def big_fixture():
    """2 regions x 150 instances x 3 ENIs in /26 vSwitches (many vSwitches to page through)."""
    world = generate(instances=300, enis=3, regions=2, seed=3, vswitch_prefix=26)
    with EcsEmulator(world) as emu:
        yield emu, world


def test_describe_regions_ecs_and_vpc(lab, sdk):
    ecs = sdk.ecs(lab).describe_regions(ecs_models.DescribeRegionsRequest()).body.to_map()
    vpc = sdk.vpc(lab).describe_regions(vpc_models.DescribeRegionsRequest()).body.to_map()
    assert ecs['Regions']['Region'] == [{'RegionId': 'cn-hangzhou', 'LocalName': 'China (Hangzhou)', 'Status': 'available',
                                         'RegionEndpoint': 'ecs.cn-hangzhou.aliyuncs.com'}]
    assert [(r['RegionId'], r['RegionEndpoint']) for r in vpc['Regions']['Region']] == [('cn-hangzhou', 'vpc.cn-hangzhou.aliyuncs.com')]


def test_describe_instances_shape(lab, sdk):
    body = sdk.ecs(lab).describe_instances(ecs_models.DescribeInstancesRequest(
        region_id='cn-hangzhou', instance_ids=json.dumps(['i-bp1master']), additional_attributes=['NETWORK_PRIMARY_ENI_IP'])).body
    assert body.instances.instance[0].vpc_attributes.private_ip_address.ip_address == ['172.31.199.183']
    inst = body.to_map()['Instances']['Instance'][0]
    assert (inst['HostName'], inst['ZoneId'], inst['InstanceType'], inst['Cpu'], inst['Memory']) == ('master', 'cn-hangzhou-i', 'ecs.g7.large', 2, 8192)
    assert inst['VpcAttributes']['VpcId'] == 'vpc-bp1lab' and inst['VpcAttributes']['VSwitchId'] == 'vsw-bp1a'
    assert {(t['TagKey'], t['TagValue']) for t in inst['Tags']['Tag']} == {('cluster', 'lab'), ('role', 'master')}
    enis = inst['NetworkInterfaces']['NetworkInterface']
    assert [(e['NetworkInterfaceId'], e['Type'], e['MacAddress']) for e in enis] == [
        ('eni-bp1m0', 'Primary', '00:16:3e:00:00:01'), ('eni-bp1m1', 'Secondary', '00:16:3e:00:00:02')]
    assert [s['PrivateIpAddress'] for s in enis[0]['PrivateIpSets']['PrivateIpSet']] == ['172.31.199.%d' % n for n in (183, 185, 186, 187, 188, 189)]
    assert [s['Ipv6Address'] for s in enis[1]['Ipv6Sets']['Ipv6Set']] == ['2408:4005:3a1:a400::156', '2408:4005:3a1:a400::157']
    plain = sdk.ecs(lab).describe_instances(ecs_models.DescribeInstancesRequest(
        region_id='cn-hangzhou', instance_ids=json.dumps(['i-bp1master']))).body.to_map()['Instances']['Instance'][0]
    primary = plain['NetworkInterfaces']['NetworkInterface'][0]
    assert len(primary['PrivateIpSets']['PrivateIpSet']) == 1 and 'Ipv6Sets' not in primary


@pytest.mark.parametrize('filters, expected', [
    ({}, LAB_IDS),
    ({'status': 'Running'}, ['i-bp1master', 'i-bp1worker', 'i-bp1worker2', 'i-bp1prodweb']),
    ({'zone_id': 'cn-hangzhou-j'}, ['i-bp1prodweb']),
    ({'vpc_id': 'vpc-bp1lab', 'v_switch_id': 'vsw-bp1c'}, ['i-bp1prodweb']),
    ({'vpc_id': 'vpc-other'}, []),
    ({'instance_ids': json.dumps(['i-bp1worker2', 'i-bp1master', 'i-missing'])}, ['i-bp1master', 'i-bp1worker2']),
    ({'instance_name': 'work*'}, ['i-bp1worker', 'i-bp1worker2', 'i-bp1stopped']),
    ({'instance_name': 'worker'}, ['i-bp1worker']),
    ({'instance_type': 'ecs.g6.large'}, ['i-bp1prodweb']),
    ({'private_ip_addresses': json.dumps(['172.31.199.184'])}, ['i-bp1worker']),
    ({'tag': [ecs_models.DescribeInstancesRequestTag(key='cluster', value='lab'),
              ecs_models.DescribeInstancesRequestTag(key='role', value='worker')]}, ['i-bp1worker', 'i-bp1worker2', 'i-bp1stopped']),
    ({'tag': [ecs_models.DescribeInstancesRequestTag(key='cluster')]}, LAB_IDS),
])
def test_describe_instances_filters(lab, sdk, filters, expected):
    assert instance_ids(sdk.ecs(lab), **filters) == expected


@pytest.mark.parametrize('filters, code', [
    ({'max_results': 101}, 'MaxResults'), ({'max_results': 0}, 'MaxResults'),
    ({'page_size': 101}, 'PageSize'), ({'instance_ids': json.dumps(['i-%d' % n for n in range(101)])}, 'InstanceIds'),
    ({'instance_ids': 'i-bp1master'}, 'InstanceIds'), ({'next_token': 'garbage!'}, 'NextToken'),
])
def test_describe_instances_bad_parameters(lab, sdk, filters, code):
    err = sdk.error(sdk.ecs(lab).describe_instances, ecs_models.DescribeInstancesRequest(region_id='cn-hangzhou', **filters))
    assert (err.code, err.status_code) == ('InvalidParameter', 400)
    assert code in err.data['Message']


def collect_instances(client, region, **paging):
    ids, pages, token = [], 0, None
    while True:
        body = client.describe_instances(ecs_models.DescribeInstancesRequest(region_id=region, next_token=token, **paging)).body
        ids += [i.instance_id for i in body.instances.instance]
        pages += 1
        token = body.next_token
        if not token:
            assert token == ''
            return ids, pages, body.total_count


def test_describe_instances_token_paging(big, sdk):
    emu, world = big
    client = sdk.ecs(emu)
    for region, spec in world['regions'].items():
        expected = [i['id'] for i in spec['instances']]
        ids, pages, total = collect_instances(client, region, max_results=40)
        assert ids == expected and pages == 4 and total == 150
        ids, pages = collect_instances(client, region, max_results=3)[:2]     # below 10 behaves as 10
        assert ids == expected and pages == 15
    running = [i['id'] for i in world['regions']['cn-hangzhou']['instances'] if i['status'] == 'Running']
    ids, total = collect_instances(client, 'cn-hangzhou', max_results=100, status='Running')[::2]
    assert ids == running and total == len(running) < 150


def test_describe_instances_page_number_paging(big, sdk):
    emu, world = big
    client = sdk.ecs(emu)
    seen = []
    for number in range(1, 5):
        body = client.describe_instances(ecs_models.DescribeInstancesRequest(region_id='cn-beijing', page_number=number, page_size=50)).body
        assert (body.page_number, body.page_size, body.total_count) == (number, 50, 150)
        seen += [i.instance_id for i in body.instances.instance]
    assert seen == [i['id'] for i in world['regions']['cn-beijing']['instances']]


def test_describe_network_interfaces_shape(lab, sdk):
    body = sdk.ecs(lab).describe_network_interfaces(ecs_models.DescribeNetworkInterfacesRequest(
        region_id='cn-hangzhou', network_interface_id=['eni-bp1m1'])).body
    eni = body.network_interface_sets.network_interface_set[0]
    assert eni.attachment.device_index == 1 and eni.attachment.instance_id == 'i-bp1master'
    assert [s.ipv_6address for s in eni.ipv_6sets.ipv_6set] == ['2408:4005:3a1:a400::156', '2408:4005:3a1:a400::157']
    wire = body.to_map()['NetworkInterfaceSets']['NetworkInterfaceSet'][0]
    assert (wire['Type'], wire['Status'], wire['VSwitchId'], wire['VpcId'], wire['ZoneId']) == ('Secondary', 'InUse', 'vsw-bp1b', 'vpc-bp1lab', 'cn-hangzhou-i')
    assert wire['PrivateIpSets']['PrivateIpSet'][0] == {'PrivateIpAddress': '192.168.0.151', 'Primary': True, 'AssociatedPublicIp': {}}
    assert [s['PrivateIpAddress'] for s in wire['PrivateIpSets']['PrivateIpSet'][1:]] == ['192.168.0.%d' % n for n in range(156, 161)]
    assert body.next_token == ''


@pytest.mark.parametrize('filters, expected', [
    ({'instance_id': 'i-bp1worker'}, ['eni-bp1w0', 'eni-bp1w1']),
    ({'network_interface_id': ['eni-bp1x1', 'eni-bp1m0', 'eni-nope']}, ['eni-bp1m0', 'eni-bp1x1']),
    ({'v_switch_id': 'vsw-bp1b'}, ['eni-bp1m1', 'eni-bp1w1', 'eni-bp1x1', 'eni-bp1spare']),
    ({'vpc_id': 'vpc-bp1lab', 'type': 'Primary'}, ['eni-bp1m0', 'eni-bp1w0', 'eni-bp1x0', 'eni-bp1s0', 'eni-bp1p0']),
    ({'status': 'Available'}, ['eni-bp1spare']),
    ({'primary_ip_address': '172.31.199.184'}, ['eni-bp1w0']),
    ({'private_ip_address': ['192.168.0.163']}, ['eni-bp1w1']),
    ({'ipv_6address': ['2408:4005:3a1:a400::0157']}, ['eni-bp1m1']),
    ({'network_interface_name': 'spare'}, ['eni-bp1spare']),
    ({'instance_id': 'i-bp1worker', 'type': 'Secondary'}, ['eni-bp1w1']),
])
def test_describe_network_interfaces_filters(lab, sdk, filters, expected):
    assert eni_ids(sdk.ecs(lab), **filters) == expected


def test_describe_network_interfaces_paging(big, sdk):
    emu, world = big
    client = sdk.ecs(emu)
    expected = [e['id'] for i in world['regions']['cn-hangzhou']['instances'] for e in i['enis']]
    for max_results, pages in ((10, 45), (100, 5), (1000, 1)):          # above 500 behaves as 500
        ids, token, count = [], None, 0
        while True:
            body = client.describe_network_interfaces(ecs_models.DescribeNetworkInterfacesRequest(
                region_id='cn-hangzhou', max_results=max_results, next_token=token)).body
            ids += [e.network_interface_id for e in body.network_interface_sets.network_interface_set]
            count += 1
            token = body.next_token
            if not token:
                break
        assert sorted(ids) == sorted(expected) and len(ids) == len(set(ids)) == 450 and count == pages
    err = sdk.error(client.describe_network_interfaces, ecs_models.DescribeNetworkInterfacesRequest(region_id='cn-hangzhou', max_results=-1))
    assert (err.code, 'MaxResults' in err.data['Message']) == ('InvalidParameter', True)


def test_describe_instance_types(lab, sdk):
    client = sdk.ecs(lab)
    body = client.describe_instance_types(ecs_models.DescribeInstanceTypesRequest(instance_types=['ecs.g7.large'])).body.to_map()
    itype = body['InstanceTypes']['InstanceType'][0]
    assert (itype['InstanceTypeId'], itype['EniQuantity'], itype['EniPrivateIpAddressQuantity'], itype['EniIpv6AddressQuantity']) == ('ecs.g7.large', 3, 6, 6)
    first = client.describe_instance_types(ecs_models.DescribeInstanceTypesRequest(max_results=1)).body
    second = client.describe_instance_types(ecs_models.DescribeInstanceTypesRequest(max_results=1, next_token=first.next_token)).body
    assert [t.instance_type_id for t in first.instance_types.instance_type + second.instance_types.instance_type] == ['ecs.g6.large', 'ecs.g7.large']
    assert first.next_token and second.next_token == ''
    body = client.describe_instance_types(ecs_models.DescribeInstanceTypesRequest(minimum_eni_quantity=3)).body
    assert [t.instance_type_id for t in body.instance_types.instance_type] == ['ecs.g7.large']
    err = sdk.error(client.describe_instance_types, ecs_models.DescribeInstanceTypesRequest(instance_types=['t%d' % n for n in range(11)]))
    assert err.code == 'InvalidParameter'


def test_describe_vswitches_vpc_shape(lab, sdk):
    body = sdk.vpc(lab).describe_vswitches(vpc_models.DescribeVSwitchesRequest(region_id='cn-hangzhou', v_switch_id='vsw-bp1b')).body.to_map()
    vsw = body['VSwitches']['VSwitch'][0]
    # /24: 256 - 4 reserved - 16 in use (m1, w1: 6 each; x1: 3; spare: 1)
    assert (vsw['CidrBlock'], vsw['Ipv6CidrBlock'], vsw['EnabledIpv6'], vsw['AvailableIpAddressCount']) == (
        '192.168.0.0/24', '2408:4005:3a1:a400::/64', True, 236)
    plain = sdk.vpc(lab).describe_vswitches(vpc_models.DescribeVSwitchesRequest(region_id='cn-hangzhou', zone_id='cn-hangzhou-j')).body.to_map()
    assert [v['VSwitchId'] for v in plain['VSwitches']['VSwitch']] == ['vsw-bp1c']
    assert 'Ipv6CidrBlock' not in plain['VSwitches']['VSwitch'][0] and plain['VSwitches']['VSwitch'][0]['AvailableIpAddressCount'] == 4090
    legacy = sdk.ecs(lab).describe_vswitches(ecs_models.DescribeVSwitchesRequest(region_id='cn-hangzhou', vpc_id='vpc-bp1lab')).body
    assert [v.v_switch_id for v in legacy.v_switches.v_switch] == ['vsw-bp1a', 'vsw-bp1b', 'vsw-bp1c']


def test_describe_vswitches_page_number_paging(big, sdk):
    emu, world = big
    client = sdk.vpc(emu)
    expected = [v['id'] for v in world['regions']['cn-beijing']['vpcs'][0]['vswitches']]
    assert len(expected) > 10
    seen, number = [], 1
    while True:
        body = client.describe_vswitches(vpc_models.DescribeVSwitchesRequest(region_id='cn-beijing', page_number=number, page_size=4)).body
        assert body.total_count == len(expected)
        seen += [v.v_switch_id for v in body.v_switches.v_switch]
        if number * 4 >= body.total_count:
            break
        number += 1
    assert seen == expected
    err = sdk.error(client.describe_vswitches, vpc_models.DescribeVSwitchesRequest(region_id='cn-beijing', page_size=51))
    assert (err.code, err.status_code, 'PageSize' in err.data['Message']) == ('InvalidParameter', 400, True)
