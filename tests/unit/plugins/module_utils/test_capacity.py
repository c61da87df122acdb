"""Unit tests for the pure day-2 capacity arithmetic: report rows, top-up plan, release plan."""
import json

import pytest

from ansible_collections.underlay.alicloud.plugins.module_utils.capacity import (
    CapacityError, check_settings, release_plan, report, table, topup_plan)

OWNER = {'app.kubernetes.io/managed-by': 'underlay.alicloud'}
SETTINGS = {'threshold': 2, 'target': 4, 'families': [4, 6], 'max_per_node': 10, 'max_per_run': 100}
QUOTA = {'enis': 3, 'ipv4_per_eni': 6, 'ipv6_per_eni': 6}


def eni(eni_id, index, secondary, ipv6=(), ipv6_cidr=None, primary='10.0.0.250'):
    return {'id': eni_id, 'type': 'Primary' if index == 0 else 'Secondary', 'mac': '00:16:3e:00:00:%02x' % index,
            'device_index': index, 'vswitch_id': 'vsw-a', 'cidr': '10.0.0.0/24', 'gateway': '10.0.0.253',
            'primary_ip': primary, 'secondary_ips': list(secondary), 'ipv6_cidr': ipv6_cidr, 'ipv6_ips': list(ipv6)}


def host(name, enis, quota=None, itype='ecs.g7.large'):
    return {'inventory_hostname': name, 'alicloud_hostname': name, 'alicloud_instance_id': 'i-' + name,
            'alicloud_instance_type': itype, 'alicloud_region': 'cn-hangzhou',
            'alicloud_eni_quota': QUOTA if quota is None else quota, 'alicloud_enis': enis}


def pool(name, ips, allocated=(), owned=True, node=None, eni_id=None, family=4):
    labels = dict(OWNER) if owned else {'team': 'db'}
    if node:
        labels.update({'underlay.alicloud/node': node, 'underlay.alicloud/eni': eni_id, 'underlay.alicloud/interface': 'eth0',
                       'underlay.alicloud/ip-family': 'ipv%d' % family})
    status = {'allocatedIPs': json.dumps(dict((ip, {'pod': 'default/p%d' % i}) for i, ip in enumerate(allocated)))} if allocated else {}
    return {'metadata': {'name': name, 'labels': labels}, 'spec': {'ips': list(ips), 'ipVersion': family}, 'status': status}


def by_key(result):
    return dict(((r['node'], r['interface'], r['family']), r) for r in result['rows'])


def test_counts_headroom_and_drift_both_ways():
    hosts = [host('n1', [eni('eni-a', 0, ['10.0.0.10', '10.0.0.11', '10.0.0.12'])])]
    pools = [pool('n1-eth0-v4', ['10.0.0.10-10.0.0.11', '10.0.0.13'], allocated=['10.0.0.10'])]
    row = by_key(report(hosts, pools, SETTINGS))[('n1', 'eth0', 4)]
    assert (row['cloud'], row['in_pool'], row['allocated'], row['free']) == (3, 3, 1, 2)
    assert (row['eni_ip_headroom'], row['node_eni_headroom']) == (2, 2)
    assert row['cloud_only'] == ['10.0.0.12'] and row['pool_only'] == ['10.0.0.13']
    # once the pool equals the ENI, pods can get .11 and .12: the top-up decides on that
    assert row['available'] == 2 and not row['low'] and row['pending'] == 1


def test_primary_address_is_never_counted():
    hosts = [host('n1', [eni('eni-a', 0, ['10.0.0.250', '10.0.0.10'])])]
    assert by_key(report(hosts, [], SETTINGS))[('n1', 'eth0', 4)]['cloud'] == 1


def test_excluded_addresses_are_not_free():
    hosts = [host('n1', [eni('eni-a', 0, ['10.0.0.10', '10.0.0.11'])])]
    pools = [pool('n1-eth0-v4', ['10.0.0.10-10.0.0.11'])]
    pools[0]['spec']['excludeIPs'] = ['10.0.0.11']
    assert by_key(report(hosts, pools, SETTINGS))[('n1', 'eth0', 4)]['free'] == 1


def test_ipv6_rows_only_on_ipv6_vswitches_and_skipped_without_quota():
    hosts = [host('n1', [eni('eni-a', 0, ['10.0.0.10']), eni('eni-b', 1, [], ipv6_cidr='2408:4005::/64')],
                  quota={'enis': 2, 'ipv4_per_eni': 6, 'ipv6_per_eni': 0}, itype='ecs.c6.large')]
    rows = by_key(report(hosts, [], SETTINGS))
    assert ('n1', 'eth0', 6) not in rows
    assert rows[('n1', 'eth1', 6)]['skip'] == 'instance type ecs.c6.large has no IPv6 addresses per ENI (EniIpv6AddressQuantity 0)'
    assert topup_plan(list(rows.values()), check_settings(SETTINGS))['assign'] == [
        {'node': 'n1', 'interface': 'eth1', 'family': 4, 'eni_id': 'eni-b', 'region': 'cn-hangzhou', 'pool': 'n1-eth1-v4', 'count': 4},
        {'node': 'n1', 'interface': 'eth0', 'family': 4, 'eni_id': 'eni-a', 'region': 'cn-hangzhou', 'pool': 'n1-eth0-v4', 'count': 3}]


def test_a_pool_not_owned_by_the_collection_is_reported_and_skipped():
    hosts = [host('n1', [eni('eni-a', 0, [])])]
    result = report(hosts, [pool('n1-eth0-v4', ['10.0.0.10'], owned=False)], SETTINGS)
    row = by_key(result)[('n1', 'eth0', 4)]
    assert row['skip'].startswith('pool n1-eth0-v4 is not owned by the collection') and not row['owned']
    assert topup_plan(result['rows'], result['settings'])['assign'] == []
    assert result['stale_pools'] == []


def test_topup_brings_low_rows_to_target_within_quota_and_reports_full_enis():
    hosts = [host('n1', [eni('eni-a', 0, ['10.0.0.%d' % i for i in range(10, 15)]), eni('eni-b', 1, ['10.0.0.20'])])]
    pools = [pool('n1-eth0-v4', ['10.0.0.10-10.0.0.14'], allocated=['10.0.0.10', '10.0.0.11', '10.0.0.12', '10.0.0.13']),
             pool('n1-eth1-v4', ['10.0.0.20'], allocated=['10.0.0.20'])]
    result = report(hosts, pools, SETTINGS)
    plan = topup_plan(result['rows'], result['settings'])
    assert [(a['eni_id'], a['count']) for a in plan['assign']] == [('eni-b', 4)]
    assert plan['full'] == [{'node': 'n1', 'interface': 'eth0', 'family': 4, 'eni_id': 'eni-a', 'missing': 3, 'new_eni_possible': True}]


def test_budgets_per_node_and_per_run_cut_the_most_starved_first():
    hosts = [host('n%d' % n, [eni('eni-%d' % n, 0, ['10.0.0.%d' % (10 + n)] if n else [])]) for n in range(3)]
    settings = dict(SETTINGS, max_per_node=3, max_per_run=5)
    result = report(hosts, [], settings)
    plan = topup_plan(result['rows'], result['settings'])
    assert [(a['node'], a['count']) for a in plan['assign']] == [('n0', 3), ('n1', 2)]
    assert plan['limited'] == ['n0 eth0 IPv4: 3 of 4 addresses this run (max_per_node 3, max_per_run 5)',
                               'n1 eth0 IPv4: 2 of 3 addresses this run (max_per_node 3, max_per_run 5)',
                               'n2 eth0 IPv4: 0 of 3 addresses this run (max_per_node 3, max_per_run 5)']


def test_addresses_of_an_interrupted_run_are_not_assigned_again():
    # The cloud step ran (4 addresses), the pool step did not: nothing more to assign.
    hosts = [host('n1', [eni('eni-a', 0, ['10.0.0.10', '10.0.0.11', '10.0.0.12', '10.0.0.13'])])]
    result = report(hosts, [pool('n1-eth0-v4', [])], SETTINGS)
    assert topup_plan(result['rows'], result['settings'])['assign'] == []
    assert result['summary']['cloud_only'] == 1


def test_stale_pools_of_gone_and_removed_nodes():
    hosts = [host('n1', [eni('eni-a', 0, ['10.0.0.10'])]), host('n2', [eni('eni-b', 0, ['10.0.0.11'])])]
    pools = [pool('n1-eth0-v4', ['10.0.0.10']), pool('n2-eth0-v4', ['10.0.0.11'], node='n2', eni_id='eni-b'),
             pool('n3-eth0-v4', ['10.0.0.12'], allocated=['10.0.0.12'], node='n3', eni_id='eni-c'),
             pool('hand-made', ['10.0.0.30'], owned=False, node='n9', eni_id='eni-z')]
    result = report(hosts, pools, dict(SETTINGS, remove_nodes=['N2']))
    assert [(s['pool'], s['eni_id'], s['family'], s['action']) for s in result['stale_pools']] == [
        ('n2-eth0-v4', 'eni-b', 4, 'delete'), ('n3-eth0-v4', 'eni-c', 4, 'keep')]
    assert result['stale_pools'][1]['reason'] == 'pods hold 10.0.0.12 (pod default/p0)'
    assert sorted(r['node'] for r in result['rows']) == ['n1']
    assert result['live_enis'] == {'eni-a': 'n1'} and [h['inventory_hostname'] for h in result['live_hosts']] == ['n1']


@pytest.mark.parametrize('settings, message', [
    (dict(SETTINGS, target=6), 'target=6 is beyond the quota of n1 eth0 IPv4 (instance type ecs.g7.large allows 5 per ENI)'),
    (dict(SETTINGS, threshold=5, target=4), 'target=4 is below threshold=5'),
    (dict(SETTINGS, threshold=-1), 'threshold=-1: expected a whole number of at least 0'),
    (dict(SETTINGS, max_per_run='ten'), "max_per_run='ten': expected a whole number"),
    (dict(SETTINGS, families=[5]), 'families=[5]: expected a non-empty list of 4 and/or 6'),
])
def test_bad_settings_fail_naming_the_value(settings, message):
    with pytest.raises(CapacityError, match=message.replace('(', r'\(').replace(')', r'\)').replace('[', r'\[').replace(']', r'\]')):
        report([host('n1', [eni('eni-a', 0, [])])], [], settings)


def test_bad_facts_fail_with_the_planner_message():
    with pytest.raises(CapacityError, match='has no ENI facts'):
        report([host('n1', [])], [], SETTINGS)


def test_release_only_what_no_pool_and_no_pod_holds():
    enis = [{'id': 'eni-c', 'secondary_ips': ['10.0.0.12', '10.0.0.13', '10.0.0.14'], 'ipv6_ips': ['2408:4005::5']},
            {'id': 'eni-a', 'secondary_ips': ['10.0.0.10'], 'ipv6_ips': []}]
    pools = [pool('other', ['10.0.0.13']), pool('busy', [], allocated=['10.0.0.14'])]
    plan = release_plan(enis, pools, {'eni-a': 'n1'})
    assert plan['release'] == [{'eni_id': 'eni-c', 'ipv4': ['10.0.0.12'], 'ipv6': ['2408:4005::5']}]
    assert plan['kept'] == ['eni-a belongs to node n1, which is still in the cluster: not released',
                            'eni-c keeps 10.0.0.13, 10.0.0.14: still in a pool or held by a pod']


def test_table_has_one_line_per_row_and_stale_pool():
    hosts = [host('n1', [eni('eni-a', 0, ['10.0.0.10'])])]
    lines = table(report(hosts, [pool('n1-eth0-v4', ['10.0.0.10'], allocated=['10.0.0.10']),
                                 pool('n3-eth0-v4', ['10.0.0.12'], node='n3', eni_id='eni-c')], SETTINGS))
    assert lines[0].split() == ['NODE', 'IFACE', 'FAM', 'CLOUD', 'POOL', 'ALLOC', 'FREE', '+IP', '+ENI', 'FLAGS']
    assert lines[1].split() == ['n1', 'eth0', 'v4', '1', '1', '1', '0', '4', '2', 'LOW']
    assert lines[2].endswith('stale pool n3-eth0-v4: delete (node n3 is gone and no pod holds an address)')
