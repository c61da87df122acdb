"""Paging, batching, parameter shapes and per-page retries of the API functions."""
import json

import pytest

from ansible_collections.underlay.alicloud.plugins.module_utils import ecs
from ansible_collections.underlay.alicloud.plugins.module_utils.errors import AlicloudApiError

from ansible_collections.underlay.alicloud.tests.unit.plugins.module_utils.fake_api import FakeClients, eni, instance, itype, vswitch


def world(n_instances=250, n_enis=1203, n_vswitches=120, n_types=23):
    return {'cn-hangzhou': {
        'instances': [instance('i-%04d' % n) for n in range(n_instances)],
        'enis': [eni('eni-%05d' % n, 'i-%04d' % (n % max(n_instances, 1))) for n in range(n_enis)],
        'vswitches': [vswitch('vsw-%03d' % n, '10.%d.0.0/24' % n) for n in range(n_vswitches)],
        'types': [itype('ecs.t%d.large' % n) for n in range(n_types)],
    }}


def test_instances_every_page_at_max_results():
    clients = FakeClients(world())
    result = ecs.describe_instances(clients, 'cn-hangzhou', {'VpcId': 'vpc-1'})
    assert [i['InstanceId'] for i in result] == ['i-%04d' % n for n in range(250)]
    calls = clients.calls('DescribeInstances')
    assert len(calls) == 3 and all(q['MaxResults'] == '100' and q['RegionId'] == 'cn-hangzhou' for q in calls)
    assert 'NextToken' not in calls[0] and calls[1]['NextToken'] == '100' and calls[2]['NextToken'] == '200'


def test_instance_ids_are_a_json_string_and_batched_by_100():
    clients = FakeClients(world())
    ids = ['i-%04d' % n for n in range(0, 250, 1)] + ['i-missing']
    result = ecs.describe_instances(clients, 'cn-hangzhou', {'InstanceIds': ids, 'Tag': {'cluster': 'lab'}})
    assert result == []  # tag filter matches nothing in this world
    calls = clients.calls('DescribeInstances')
    assert len(calls) == 3
    assert [len(json.loads(q['InstanceIds'])) for q in calls] == [100, 100, 51]
    assert (calls[0]['Tag.1.Key'], calls[0]['Tag.1.Value']) == ('cluster', 'lab')


def test_enis_page_by_500():
    clients = FakeClients(world())
    assert len(ecs.describe_network_interfaces(clients, 'cn-hangzhou')) == 1203
    calls = clients.calls('DescribeNetworkInterfaces')
    assert len(calls) == 3 and {q['MaxResults'] for q in calls} == {'500'}


def test_eni_ids_batched_by_100():
    clients = FakeClients(world())
    ids = ['eni-%05d' % n for n in range(150)]
    assert [e['NetworkInterfaceId'] for e in ecs.describe_network_interfaces(clients, 'cn-hangzhou', {'NetworkInterfaceId': ids})] == ids
    calls = clients.calls('DescribeNetworkInterfaces')
    assert [len([k for k in q if k.startswith('NetworkInterfaceId.')]) for q in calls] == [100, 50]
    assert calls[1]['NetworkInterfaceId.50'] == 'eni-00149'


def test_vswitches_page_numbers_until_total_count():
    clients = FakeClients(world())
    assert len(ecs.describe_vswitches(clients, 'cn-hangzhou')) == 120
    calls = clients.calls('DescribeVSwitches')
    assert [(q['PageNumber'], q['PageSize']) for q in calls] == [('1', '50'), ('2', '50'), ('3', '50')]


def test_vswitches_stop_on_empty_page_even_if_total_lies():
    clients = FakeClients(world(n_vswitches=3))
    clients.DescribeVSwitches = lambda data, query: {'TotalCount': 10, 'VSwitches': {'VSwitch': [] if query['PageNumber'] != '1' else data['vswitches']}}
    assert len(ecs.describe_vswitches(clients, 'cn-hangzhou')) == 3
    assert len(clients.calls('DescribeVSwitches')) == 2


def test_instance_types_batched_by_ten_and_deduplicated():
    clients = FakeClients(world())
    wanted = ['ecs.t%d.large' % n for n in range(23)] * 2 + ['', None]
    assert len(ecs.describe_instance_types(clients, wanted)) == 23
    calls = clients.calls('DescribeInstanceTypes')
    assert [len([k for k in q if k.startswith('InstanceTypes.')]) for q in calls] == [10, 10, 3]
    assert all('RegionId' not in q for q in calls)
    assert ecs.describe_instance_types(clients, []) == [] and len(clients.calls('DescribeInstanceTypes')) == 3


def test_repeated_next_token_is_an_error_not_a_loop():
    clients = FakeClients(world())
    clients.DescribeInstances = lambda data, query: {'NextToken': 'same', 'Instances': {'Instance': [{'InstanceId': 'i-1'}]}}
    with pytest.raises(AlicloudApiError, match='same NextToken'):
        ecs.describe_instances(clients, 'cn-hangzhou')


def test_throttled_page_is_retried_alone():
    def fail(action, query, n):
        if action == 'DescribeInstances' and query.get('NextToken') == '100' and n < 5:
            return AlicloudApiError(action, 'Throttling.User', 'flow control', status=400)
        return None
    clients = FakeClients(world(), fail=fail)
    assert len(ecs.describe_instances(clients, 'cn-hangzhou')) == 250
    tokens = [q.get('NextToken') for q in clients.calls('DescribeInstances')]
    assert tokens == [None, '100', '100', '100', '100', '200']


def test_non_retryable_error_propagates():
    clients = FakeClients(world())
    with pytest.raises(AlicloudApiError, match='InvalidRegionId.NotFound'):
        ecs.describe_instances(clients, 'xx-nowhere-1')
    assert len(clients.requests) == 1


def test_mutating_calls_shape_parameters():
    clients = FakeClients(world())
    ecs.assign_private_ip_addresses(clients, 'cn-hangzhou', 'eni-1', addresses=['10.0.0.5'], client_token='tok')
    ecs.assign_private_ip_addresses(clients, 'cn-hangzhou', 'eni-1', count=3)
    ecs.unassign_private_ip_addresses(clients, 'cn-hangzhou', 'eni-1', ['10.0.0.5'])
    ecs.assign_ipv6_addresses(clients, 'cn-hangzhou', 'eni-1', count=2, client_token='t6')
    ecs.unassign_ipv6_addresses(clients, 'cn-hangzhou', 'eni-1', ['2001:db8::1'])
    ecs.create_network_interface(clients, 'cn-hangzhou', {'VSwitchId': 'vsw-a', 'Tag': {'a': 'b'}}, client_token='c')
    ecs.attach_network_interface(clients, 'cn-hangzhou', 'eni-1', 'i-1')
    ecs.detach_network_interface(clients, 'cn-hangzhou', 'eni-1', 'i-1')
    ecs.delete_network_interface(clients, 'cn-hangzhou', 'eni-1')
    calls = dict((a + str(i), q) for i, (a, q) in enumerate(clients.requests))
    assert calls['AssignPrivateIpAddresses0'] == {'RegionId': 'cn-hangzhou', 'NetworkInterfaceId': 'eni-1', 'ClientToken': 'tok',
                                                  'PrivateIpAddress.1': '10.0.0.5'}
    assert calls['AssignPrivateIpAddresses1'] == {'RegionId': 'cn-hangzhou', 'NetworkInterfaceId': 'eni-1', 'SecondaryPrivateIpAddressCount': '3'}
    assert calls['UnassignPrivateIpAddresses2']['PrivateIpAddress.1'] == '10.0.0.5'
    assert calls['AssignIpv6Addresses3']['Ipv6AddressCount'] == '2'
    assert calls['UnassignIpv6Addresses4']['Ipv6Address.1'] == '2001:db8::1'
    assert calls['CreateNetworkInterface5'] == {'VSwitchId': 'vsw-a', 'Tag.1.Key': 'a', 'Tag.1.Value': 'b', 'RegionId': 'cn-hangzhou',
                                                'ClientToken': 'c'}
    assert calls['AttachNetworkInterface6'] == {'RegionId': 'cn-hangzhou', 'NetworkInterfaceId': 'eni-1', 'InstanceId': 'i-1'}
    with pytest.raises(ValueError, match='exactly one'):
        ecs.assign_private_ip_addresses(clients, 'cn-hangzhou', 'eni-1', addresses=['10.0.0.5'], count=1)
    with pytest.raises(ValueError, match='exactly one'):
        ecs.assign_ipv6_addresses(clients, 'cn-hangzhou', 'eni-1')


def test_describe_regions():
    clients = FakeClients({'cn-hangzhou': world()['cn-hangzhou'], 'cn-beijing': world(1, 1, 1, 1)['cn-hangzhou']})
    assert [r['RegionId'] for r in ecs.describe_regions(clients)] == ['cn-beijing', 'cn-hangzhou']
