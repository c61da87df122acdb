"""PageNumber fan-out of the instance and ENI listings: page math, bounded concurrency, changes
between pages, per-page retries and the order of errors."""
import json
import threading
import time

import pytest

from ansible_collections.underlay.alicloud.plugins.module_utils import ecs, gather
from ansible_collections.underlay.alicloud.plugins.module_utils.errors import AlicloudApiError

from ansible_collections.underlay.alicloud.tests.unit.plugins.module_utils.fake_api import FakeClients, eni, instance


def world(n_instances, n_enis=0):
    return {'cn-hangzhou': {'instances': [instance('i-%04d' % n) for n in range(n_instances)],
                            'enis': [eni('eni-%05d' % n, 'i-%04d' % (n % max(n_instances, 1))) for n in range(n_enis)],
                            'vswitches': [], 'types': []}}


def ids(items, key='InstanceId'):
    return [item[key] for item in items]


@pytest.mark.parametrize('count, pages', [(0, 1), (1, 1), (100, 1), (101, 2), (250, 3), (1000, 10)])
def test_page_math_is_the_page_minimum(count, pages):
    clients = FakeClients(world(count))
    result = ecs.describe_instances_fanned(clients, 'cn-hangzhou', {'VpcId': 'vpc-1'})
    assert ids(result) == ['i-%04d' % n for n in range(count)]
    calls = clients.calls('DescribeInstances')
    assert sorted(int(q['PageNumber']) for q in calls) == list(range(1, pages + 1))
    assert all(q['PageSize'] == '100' and 'MaxResults' not in q and q['VpcId'] == 'vpc-1' for q in calls)


def test_enis_fan_out_at_500_per_page():
    clients = FakeClients(world(10, n_enis=1203))
    result = ecs.describe_network_interfaces_fanned(clients, 'cn-hangzhou', {'VpcId': 'vpc-1'})
    assert ids(result, 'NetworkInterfaceId') == ['eni-%05d' % n for n in range(1203)]
    assert sorted((q['PageNumber'], q['PageSize'], q['VpcId']) for q in clients.calls()) == \
        [('1', '500', 'vpc-1'), ('2', '500', 'vpc-1'), ('3', '500', 'vpc-1')]


def test_a_capped_eni_page_size_lists_by_token_instead():
    """An API that serves 100 ENIs per page would need five times the calls: one probe, then NextToken."""
    clients = FakeClients(world(10, n_enis=1203))
    clients.eni_page_size = 100
    result = ecs.describe_network_interfaces_fanned(clients, 'cn-hangzhou')
    assert len(ids(result, 'NetworkInterfaceId')) == 1203
    calls = clients.calls()
    assert calls[0]['PageNumber'] == '1' and [q.get('MaxResults') for q in calls[1:]] == ['500'] * 3


def test_instance_id_queries_take_the_token_path():
    clients = FakeClients(world(300))
    result = ecs.describe_instances_fanned(clients, 'cn-hangzhou', {'InstanceIds': ['i-%04d' % n for n in range(150)]})
    assert len(result) == 150
    assert all('PageNumber' not in q and q['MaxResults'] == '100' for q in clients.calls())


def test_pages_run_together_within_the_worker_bound():
    clients = FakeClients(world(1000))
    original = clients.call
    lock, state = threading.Lock(), {'now': 0, 'peak': 0}

    def slow_call(service, region, action, query=None):
        with lock:
            state['now'] += 1
            state['peak'] = max(state['peak'], state['now'])
        time.sleep(0.02)
        try:
            return original(service, region, action, query)
        finally:
            with lock:
                state['now'] -= 1
    clients.call = slow_call
    started = time.monotonic()
    assert len(ecs.describe_instances_fanned(clients, 'cn-hangzhou', workers=3)) == 1000
    assert state['peak'] == 3
    # page 1, then 9 pages three at a time: 4 round trips, not 10
    assert time.monotonic() - started < 9 * 0.02


def test_on_page_sees_every_page_once():
    clients = FakeClients(world(250))
    seen, lock = [], threading.Lock()

    def on_page(page):
        with lock:
            seen.append(ids(page))
    ecs.describe_instances_fanned(clients, 'cn-hangzhou', on_page=on_page)
    assert sorted(len(page) for page in seen) == [50, 100, 100]
    assert sorted(i for page in seen for i in page) == ['i-%04d' % n for n in range(250)]


def changing_world(change):
    """A world of 250 instances where ``change(instances)`` runs once, before the first page after page 1."""
    clients = FakeClients(world(250))
    lock, done = threading.Lock(), []

    def fail(action, query, n):
        with lock:
            if query.get('PageNumber', '1') != '1' and not done:
                done.append(n)
                change(clients.regions['cn-hangzhou']['instances'])
    clients.fail = fail
    return clients


@pytest.mark.parametrize('change', [
    lambda instances: instances.insert(0, instance('i-new0')),   # offsets move up: page 2 repeats page 1's last
    lambda instances: instances.pop(10),                         # offsets move down: one instance would be skipped
], ids=['created', 'released'])
def test_changes_between_pages_list_again_by_token(change):
    clients = changing_world(change)
    result = ecs.describe_instances_fanned(clients, 'cn-hangzhou')
    listed = ids(result)
    assert len(listed) == len(set(listed))
    assert set(listed) == set(ids(clients.regions['cn-hangzhou']['instances']))
    assert any('MaxResults' in q for q in clients.calls())


def test_a_release_and_a_creation_that_keep_totalcount_are_not_seen():
    """The documented limit: one release plus one creation between page 1 and the later pages keep
    TotalCount and the distinct count, so the shift of one instance past a page boundary goes unnoticed;
    the listing still has no duplicates and TotalCount instances."""
    clients = changing_world(lambda instances: (instances.pop(10), instances.append(instance('i-new9'))))
    listed = ids(ecs.describe_instances_fanned(clients, 'cn-hangzhou'))
    assert len(listed) == len(set(listed)) == 250
    assert 'i-0100' not in listed and 'i-0010' in listed


def test_duplicates_across_pages_are_kept_once():
    """A page that repeats an item of another page (same TotalCount) is deduplicated, then seen as short."""
    clients = FakeClients(world(150))
    original = clients.DescribeInstances

    def repeating(data, query):
        body = original(data, query)
        if query.get('PageNumber') == '2':
            body['Instances']['Instance'][0] = data['instances'][0]
        return body
    clients.DescribeInstances = repeating
    result = ecs.fan_out_pages(clients, 'cn-hangzhou', 'ecs', 'DescribeInstances', {'RegionId': 'cn-hangzhou'},
                               'Instances', 'Instance', 'InstanceId', 100)
    assert result is None


def test_throttled_page_is_retried_alone():
    state = {'failed': False}

    def fail(action, query, n):
        if query.get('PageNumber') == '3' and not state['failed']:
            state['failed'] = True
            return AlicloudApiError(action, 'Throttling.User', 'slow down', status=400)
        return None
    clients = FakeClients(world(500), fail=fail)
    assert len(ecs.describe_instances_fanned(clients, 'cn-hangzhou')) == 500
    assert sorted(int(q['PageNumber']) for q in clients.calls()) == [1, 2, 3, 3, 4, 5]


def test_the_lowest_failed_page_is_raised_and_unsent_pages_are_cancelled():
    def fail(action, query, n):
        page = query.get('PageNumber')
        if page == '2':
            time.sleep(0.05)        # fails after page 4 did
            return AlicloudApiError(action, 'InvalidParameter', 'page two')
        if page == '4':
            return AlicloudApiError(action, 'InvalidParameter', 'page four')
        if page != '1':
            time.sleep(0.01)
        return None
    clients = FakeClients(world(2000), fail=fail)
    with pytest.raises(AlicloudApiError, match='page two'):
        ecs.describe_instances_fanned(clients, 'cn-hangzhou', workers=3)
    # pages 2-4 were sent first; of the 16 pages behind them only those sent while page 2 ran
    assert len(clients.calls()) < 15


def test_an_unfiltered_region_finds_what_a_release_and_a_creation_hid_by_its_primary_eni():
    """The case the pages cannot show: the ENI listing names the hidden instance, which is asked for by ID."""
    data = {'instances': [instance('i-%04d' % n, enis=['eni-%04d' % n]) for n in range(250)],
            'enis': [eni('eni-%04d' % n, 'i-%04d' % n) for n in range(250)], 'vswitches': [], 'types': []}
    clients = FakeClients({'cn-hangzhou': data})
    lock, done = threading.Lock(), []

    def fail(action, query, n):
        with lock:
            if action == 'DescribeInstances' and query.get('PageNumber', '1') != '1' and not done:
                done.append(n)
                data['instances'].pop(10)
                data['instances'].append(instance('i-new9', enis=['eni-new9']))
    clients.fail = fail
    hosts = gather.gather_region(clients, 'cn-hangzhou')
    listed = [h['alicloud_instance_id'] for h in hosts]
    assert 'i-0100' in listed and len(listed) == len(set(listed)) == 251   # i-0010 was listed before its release
    by_id = [q for q in clients.calls('DescribeInstances') if 'InstanceIds' in q]
    assert len(by_id) == 1 and json.loads(by_id[0]['InstanceIds']) == ['i-0100']


def test_filtered_queries_ask_for_no_instance_by_id():
    data = {'instances': [instance('i-%04d' % n, enis=['eni-%04d' % n], tags={'cluster': 'lab' if n % 2 else 'prod'})
                          for n in range(20)],
            'enis': [eni('eni-%04d' % n, 'i-%04d' % n) for n in range(20)], 'vswitches': [], 'types': []}
    clients = FakeClients({'cn-hangzhou': data})
    hosts = gather.gather_region(clients, 'cn-hangzhou', [{'Tag': [{'Key': 'cluster', 'Value': 'lab'}]}])
    assert len(hosts) == 10
    assert not [q for q in clients.calls('DescribeInstances') if 'InstanceIds' in q]
