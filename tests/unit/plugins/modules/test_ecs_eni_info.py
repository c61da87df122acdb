"""ecs_eni_info: validation, filters and normalised ENI records from hand-written wire data."""
import pytest

from ansible_collections.underlay.alicloud.plugins.modules import ecs_eni_info
from ansible_collections.underlay.alicloud.tests.unit.plugins.module_utils.fake_api import FakeClients, eni, vswitch
from ansible_collections.underlay.alicloud.tests.unit.plugins.modules.test_ecs_instance_info import run_module


def world():
    enis = [eni('eni-%03d' % n, 'i-%03d' % (n // 2), vswitch='vsw-b' if n % 2 else 'vsw-a', eni_type='Secondary' if n % 2 else 'Primary',
                index=n % 2, primary='10.%d.%d.%d' % (n % 2, n // 250, n % 250 + 1)) for n in range(1200)]
    enis.append(eni('eni-free', None, vswitch='vsw-b', eni_type='Secondary', index=None, ipv6=['2408:4005:3a1:a400::9']))
    return {'cn-hangzhou': {'instances': [], 'enis': enis, 'types': [],
                            'vswitches': [vswitch('vsw-a', '10.0.0.0/16'), vswitch('vsw-b', '10.1.0.0/16', ipv6='2408:4005:3a1:a400::/64')]}}


@pytest.mark.parametrize('args,message', [
    ({'region': 'cn-hangzhou', 'eni_ids': ['eni-1', 'i-2']}, "eni_ids: 'i-2' is not a valid eni id (expected eni-"),
    ({'region': 'cn-hangzhou', 'eni_ids': ['eni-']}, "eni_ids: 'eni-' is not a valid eni id"),
    ({'region': 'cn-hangzhou', 'instance_id': 'eni-1'}, "instance_id: 'eni-1' is not a valid instance id"),
    ({'region': 'cn-hangzhou', 'type': 'Trunk'}, 'value of type must be one of: Primary, Secondary, got: Trunk'),
    # A DescribeInstances name is not a DescribeNetworkInterfaces parameter.
    ({'region': 'cn-hangzhou', 'filters': {'InstanceIds': ['i-1']}},
     "filters: unknown DescribeNetworkInterfaces parameter 'InstanceIds' (did you mean 'InstanceId'?)"),
    ({'region': 'cn-hangzhou', 'filters': {'Status': 'InUse', 'Tag': [{'Key': 'a', 'Valeu': 'b'}]}},
     "filters: Tag[0]: unknown key 'Valeu' (did you mean 'Value'?)"),
])
def test_bad_input(args, message, capsys, monkeypatch):
    result, fake = run_module(ecs_eni_info, args, capsys, monkeypatch, clients=FakeClients(world()))
    assert result['failed'] and message in result['msg'] and fake.requests == []


def test_every_page_and_records(capsys, monkeypatch):
    result, fake = run_module(ecs_eni_info, {'region': 'cn-hangzhou'}, capsys, monkeypatch, clients=FakeClients(world()))
    records = result['network_interfaces']
    assert len(records) == 1201 and len(fake.calls('DescribeNetworkInterfaces')) == 3
    assert [r['id'] for r in records[:2]] == ['eni-000', 'eni-001']  # instance i-000: primary then device 1
    assert records[1]['instance_id'] == 'i-000' and records[1]['gateway'] == '10.1.255.253'
    free = records[-1]
    assert (free['id'], free['instance_id'], free['status'], free['device_index']) == ('eni-free', None, 'Available', None)
    assert free['ipv6_cidr'] == '2408:4005:3a1:a400::/64' and free['ipv6_ips'] == ['2408:4005:3a1:a400::9']


def test_filters_reach_the_api(capsys, monkeypatch):
    result, fake = run_module(ecs_eni_info, {'region': 'cn-hangzhou', 'eni_ids': ['eni-003', 'eni-002', 'eni-nothere'], 'vpc_id': 'vpc-1',
                                             'type': 'Secondary', 'tags': {'a': 'b'}, 'filters': {'Status': 'InUse'}},
                              capsys, monkeypatch, clients=FakeClients(world()))
    query = fake.calls('DescribeNetworkInterfaces')[0]
    assert (query['NetworkInterfaceId.1'], query['NetworkInterfaceId.3'], query['Type'], query['Status'], query['Tag.1.Key']) == \
        ('eni-002', 'eni-nothere', 'Secondary', 'InUse', 'a')
    assert fake.calls('DescribeVSwitches')[0]['VpcId'] == 'vpc-1'
    assert [r['id'] for r in result['network_interfaces']] == ['eni-002', 'eni-003']
    assert result['warnings'] == ['eni_ids: not found in region cn-hangzhou (or excluded by the other filters): eni-nothere']
