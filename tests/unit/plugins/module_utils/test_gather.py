"""Fleet gathering: joins, call counts, overlap, filters, error propagation and region skipping."""
import threading
import time

import pytest

from ansible_collections.underlay.alicloud.plugins.module_utils import gather
from ansible_collections.underlay.alicloud.plugins.module_utils.errors import AlicloudApiError
from ansible_collections.underlay.alicloud.tests.unit.plugins.module_utils.fake_api import (
    FakeClients, eni, instance, itype, vswitch)


def region_data(region, n, types=('ecs.g7.large', 'ecs.g6.large'), vpc='vpc-1'):
    instances, enis = [], []
    for k in range(n):
        iid = 'i-%s%04d' % (region[3:5], k)
        instances.append(instance(iid, region=region, vpc=vpc, itype=types[k % len(types)],
                                  tags={'cluster': 'lab' if k % 2 else 'prod'}, enis=['eni-%s%04dp' % (region[3:5], k)]))
        enis.append(eni('eni-%s%04dp' % (region[3:5], k), iid, vpc=vpc, primary='10.0.%d.%d' % (k // 200, k % 200 + 1)))
        enis.append(eni('eni-%s%04ds' % (region[3:5], k), iid, vswitch='vsw-b', vpc=vpc, eni_type='Secondary', index=1,
                        primary='192.168.%d.%d' % (k // 200, k % 200 + 1), secondary=['192.168.100.%d' % (k % 250 + 1)]))
    enis.append(eni('eni-free', None, vpc=vpc, eni_type='Secondary', index=None))
    return {'instances': instances, 'enis': enis,
            'vswitches': [vswitch('vsw-a', '10.0.0.0/16', vpc=vpc), vswitch('vsw-b', '192.168.0.0/16', vpc=vpc)],
            'types': [itype('ecs.g7.large', 3, 6, 6), itype('ecs.g6.large', 2, 6, 1)]}


def test_one_region_all_hosts_joined_with_minimum_calls():
    clients = FakeClients({'cn-hangzhou': region_data('cn-hangzhou', 250)})
    hosts = gather.gather_hosts(clients, ['cn-hangzhou'])
    assert len(hosts) == 250
    assert [h['alicloud_instance_id'] for h in hosts] == sorted(h['alicloud_instance_id'] for h in hosts)
    host = hosts[7]
    assert [e['type'] for e in host['alicloud_enis']] == ['Primary', 'Secondary']
    assert host['alicloud_enis'][1]['cidr'] == '192.168.0.0/16' and host['alicloud_enis'][1]['gateway'] == '192.168.255.253'
    assert host['alicloud_eni_quota'] == {'enis': 2, 'ipv4_per_eni': 6, 'ipv6_per_eni': 1}  # odd k → ecs.g6.large
    actions = ('DescribeInstances', 'DescribeNetworkInterfaces', 'DescribeVSwitches', 'DescribeInstanceTypes', 'DescribeRegions')
    counts = {a: len(clients.calls(a)) for a in actions}
    # 250 instances / 100, 501 ENIs / 500, 2 vSwitches / 50, 2 types / 10 (both seen on page 1)
    assert counts == {'DescribeInstances': 3, 'DescribeNetworkInterfaces': 2, 'DescribeVSwitches': 1,
                      'DescribeInstanceTypes': 1, 'DescribeRegions': 0}


def test_types_seen_on_later_pages_are_fetched_once_each():
    data = region_data('cn-hangzhou', 250)
    data['instances'][240]['InstanceType'] = 'ecs.c7.large'
    data['types'].append(itype('ecs.c7.large', 3, 6, 6))
    clients = FakeClients({'cn-hangzhou': data})
    hosts = gather.gather_hosts(clients, ['cn-hangzhou'])
    batches = [sorted(v for k, v in q.items() if k.startswith('InstanceTypes.')) for q in clients.calls('DescribeInstanceTypes')]
    assert batches == [['ecs.g6.large', 'ecs.g7.large'], ['ecs.c7.large']]
    assert {h['alicloud_instance_type'] for h in hosts if h['alicloud_eni_quota'] is None} == set()


def test_listings_overlap_instance_paging():
    """The ENI and vSwitch listings must run while instances are paged, not after."""
    clients = FakeClients({'cn-hangzhou': region_data('cn-hangzhou', 300)})
    spans, lock = [], threading.Lock()
    original = clients.call

    def slow_call(service, region, action, query=None):
        started = time.monotonic()
        time.sleep(0.05)
        try:
            return original(service, region, action, query)
        finally:
            with lock:
                spans.append((action, started, time.monotonic()))
    clients.call = slow_call
    gather.gather_hosts(clients, ['cn-hangzhou'])
    last_instance_page_end = max(end for action, dummy, end in spans if action == 'DescribeInstances')
    for action in ('DescribeNetworkInterfaces', 'DescribeVSwitches', 'DescribeInstanceTypes'):
        assert min(start for a, start, dummy in spans if a == action) < last_instance_page_end, action


def test_regions_in_parallel_and_discovered_when_empty():
    clients = FakeClients({'cn-hangzhou': region_data('cn-hangzhou', 5), 'cn-beijing': region_data('cn-beijing', 3)})
    hosts = gather.gather_hosts(clients)
    assert [h['alicloud_region'] for h in hosts] == ['cn-beijing'] * 3 + ['cn-hangzhou'] * 5
    assert len(clients.calls('DescribeRegions')) == 1
    assert hosts[0]['alicloud_provider_id'] == 'cn-beijing.' + hosts[0]['alicloud_instance_id']


def test_include_exclude_and_vpc_scoped_listings():
    clients = FakeClients({'cn-hangzhou': region_data('cn-hangzhou', 10)})
    hosts = gather.gather_hosts(clients, ['cn-hangzhou'], filters_list=[{'VpcId': 'vpc-1'}],
                                exclude_filters_list=[{'Tag': [{'Key': 'cluster', 'Value': 'prod'}]}])
    assert {h['alicloud_tags']['cluster'] for h in hosts} == {'lab'} and len(hosts) == 5
    assert all(q.get('VpcId') == 'vpc-1' for q in clients.calls('DescribeNetworkInterfaces'))
    assert all(q.get('VpcId') == 'vpc-1' for q in clients.calls('DescribeVSwitches'))


def test_instance_id_queries_fetch_only_their_enis():
    clients = FakeClients({'cn-hangzhou': region_data('cn-hangzhou', 600)})
    hosts = gather.gather_hosts(clients, ['cn-hangzhou'], filters_list=[{'InstanceIds': ['i-ha0003', 'i-ha0004']}])
    assert [h['alicloud_instance_id'] for h in hosts] == ['i-ha0003', 'i-ha0004']
    calls = clients.calls('DescribeNetworkInterfaces')
    assert len(calls) == 1 and calls[0]['NetworkInterfaceId.1'] == 'eni-ha0003p'
    # only the primary ENIs are listed in the instance records of this world
    assert [len(h['alicloud_enis']) for h in hosts] == [1, 1]


def test_worker_error_is_raised_in_caller():
    def fail(action, query, n):
        return AlicloudApiError(action, 'InvalidParameter', 'bad') if action == 'DescribeNetworkInterfaces' else None
    clients = FakeClients({'cn-hangzhou': region_data('cn-hangzhou', 5)}, fail=fail)
    with pytest.raises(AlicloudApiError, match='DescribeNetworkInterfaces failed: InvalidParameter'):
        gather.gather_hosts(clients, ['cn-hangzhou'])


def test_permission_error_skips_region_only_with_callback():
    def fail(action, query, n):
        if query.get('RegionId') == 'cn-beijing':
            return AlicloudApiError(action, 'Forbidden.RAM', 'not allowed', status=403)
        return None
    regions = {'cn-hangzhou': region_data('cn-hangzhou', 2), 'cn-beijing': region_data('cn-beijing', 2)}
    skipped = []
    hosts = gather.gather_hosts(FakeClients(regions, fail=fail), ['cn-hangzhou', 'cn-beijing'],
                                on_region_error=lambda region, err: skipped.append((region, err.code)))
    assert len(hosts) == 2 and skipped == [('cn-beijing', 'Forbidden.RAM')]
    with pytest.raises(AlicloudApiError, match='Forbidden.RAM'):
        gather.gather_hosts(FakeClients(regions, fail=fail), ['cn-hangzhou', 'cn-beijing'])


def test_non_permission_errors_are_never_skipped():
    def fail(action, query, n):
        return AlicloudApiError(action, 'InvalidAccessKeyId.NotFound', 'bad key', status=404)
    with pytest.raises(AlicloudApiError, match='InvalidAccessKeyId'):
        gather.gather_hosts(FakeClients({'cn-hangzhou': region_data('cn-hangzhou', 1)}, fail=fail), ['cn-hangzhou'],
                            on_region_error=lambda region, err: None)
