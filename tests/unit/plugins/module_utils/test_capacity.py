"""Unit tests for the pure day-2 capacity arithmetic: report rows, top-up plan, release plan."""
import json

import pytest

from ansible_collections.underlay.alicloud.plugins.module_utils.capacity import (
    CapacityError, attached_enis, check_settings, plan_lines, release_plan, report, table, topup_plan, with_enis)

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
    assert plan['full'] == [{'node': 'n1', 'interface': 'eth0', 'family': 4, 'eni_id': 'eni-a', 'missing': 3, 'new_eni_possible': True,
                             'action': 'reported only: new ENIs are off (new_enis)'}]
    assert plan['new_enis'] == []
    assert plan_lines(plan) == ['n1 eth0 IPv4: ENI eni-a is full (3 more wanted): reported only: new ENIs are off (new_enis)']


NEW = dict(SETTINGS, new_enis=True)
FULL_ENI = ['10.0.0.%d' % i for i in range(10, 15)]
FULL_POOL = pool('n1-eth0-v4', ['10.0.0.10-10.0.0.14'], allocated=FULL_ENI[:4])


def plan_for(hosts, pools, settings, options=None):
    result = report(hosts, pools, settings, options)
    return topup_plan(result['rows'], result['settings'], result['nodes'])


def test_a_full_eni_gets_a_new_eni_in_its_vswitch_with_target_addresses():
    hosts = [host('n1', [eni('eni-a', 0, FULL_ENI)])]
    plan = plan_for(hosts, [FULL_POOL], NEW)
    assert plan['assign'] == [] and len(plan['new_enis']) == 1
    new = plan['new_enis'][0]
    assert {k: new[k] for k in ('node', 'instance_id', 'name', 'eni_id', 'device_index', 'interface', 'vswitch_id', 'full_eni',
                                'ipv4', 'ipv6', 'security_groups')} == {
        'node': 'n1', 'instance_id': 'i-n1', 'name': 'n1-capacity-1', 'eni_id': None, 'device_index': 1, 'interface': 'eth1',
        'vswitch_id': 'vsw-a', 'full_eni': 'eni-a', 'ipv4': 4, 'ipv6': 0, 'security_groups': []}
    assert new['tags'] == {'managed-by': 'underlay.alicloud', 'underlay.alicloud/instance': 'i-n1'}
    assert plan['full'][0]['action'] == 'new ENI n1-capacity-1 (eth1) in vSwitch vsw-a with 4 IPv4 and 0 IPv6'


def test_a_new_eni_takes_ipv6_when_its_vswitch_has_it_and_counts_against_the_budgets():
    hosts = [host('n1', [eni('eni-a', 0, FULL_ENI, ipv6_cidr='2408:4005::/64', ipv6=['2408:4005::%d' % i for i in range(1, 7)])])]
    new = plan_for(hosts, [FULL_POOL], dict(NEW, max_per_node=6))['new_enis'][0]
    assert (new['ipv4'], new['ipv6']) == (4, 2)
    plan = plan_for(hosts, [FULL_POOL], dict(NEW, max_per_run=0))
    assert plan['new_enis'] == [] and plan['full'][0]['action'] == 'budget spent (max_per_node 10, max_per_run 0): next run'


def test_a_new_eni_in_a_configured_vswitch_with_configured_groups():
    hosts = [host('n1', [eni('eni-a', 0, FULL_ENI)])]
    new = plan_for(hosts, [FULL_POOL], dict(NEW, new_eni_vswitches={'vsw-a': 'vsw-pods'}, new_eni_security_groups=['sg-pods']))
    assert (new['new_enis'][0]['vswitch_id'], new['new_enis'][0]['security_groups']) == ('vsw-pods', ['sg-pods'])


@pytest.mark.parametrize('hosts, settings, options, action', [
    # the quota-full case: every ENI slot of the instance type is taken
    ([host('n1', [eni('eni-a', 0, FULL_ENI)], quota={'enis': 1, 'ipv4_per_eni': 6, 'ipv6_per_eni': 6})], NEW, None,
     'skip: node n1 has 1 of 1 ENIs (EniQuantity of ecs.g7.large): no room for another ENI; nothing changed'),
    # an earlier run attached a sibling that has no addresses yet: it is filled, no third ENI
    ([host('n1', [eni('eni-a', 0, FULL_ENI), eni('eni-b', 1, [])])], NEW, None,
     'eni-b in vSwitch vsw-a still has room for IPv4: it is filled instead'),
    ([host('n1', [eni('eni-a', 0, FULL_ENI)])], NEW, {'interfaces': ['eth0']},
     'skip: the new ENI would be eth1, which the pool options leave out (interfaces, exclude_interfaces)'),
    ([host('n1', [eni('eni-a', 0, FULL_ENI)])], dict(NEW, max_new_enis=0), None, 'max_new_enis=0 reached in this run: next run'),
])
def test_no_new_eni_is_a_reported_reason(hosts, settings, options, action):
    plan = plan_for(hosts, [FULL_POOL], settings, options)
    assert plan['new_enis'] == [] and [f['action'] for f in plan['full'] if f['eni_id'] == 'eni-a'] == [action]


def test_one_new_eni_per_node_and_run():
    hosts = [host('n1', [eni('eni-a', 0, FULL_ENI, ipv6_cidr='2408:4005::/64', ipv6=['2408:4005::%d' % i for i in range(1, 7)])])]
    pools = [FULL_POOL, pool('n1-eth0-v6', ['2408:4005::1-2408:4005::6'], allocated=['2408:4005::%d' % i for i in range(1, 6)], family=6)]
    plan = plan_for(hosts, pools, dict(NEW, max_new_enis=5))
    assert len(plan['new_enis']) == 1
    assert sorted(f['action'] for f in plan['full'])[0] == 'a new ENI for node n1 is already planned in this run'


def test_attached_enis_feed_the_planner_in_eni_order():
    record = {'id': 'eni-n', 'type': 'Secondary', 'mac': '00:16:3e:00:00:09', 'device_index': 1, 'vswitch_id': 'vsw-a',
              'cidr': '10.0.0.0/24', 'gateway': '10.0.0.253', 'primary_ip': '10.0.0.40', 'secondary_ips': ['10.0.0.41'],
              'ipv6_cidr': None, 'ipv6_ips': [], 'status': 'InUse', 'instance_id': 'i-n1', 'name': 'n1-capacity-1'}
    item = {'node': 'n1', 'instance_id': 'i-n1', 'name': 'n1-capacity-1', 'eni_id': None, 'vswitch_id': 'vsw-a'}
    summary = attached_enis([{'item': item, 'changed': True, 'network_interface': record},
                             {'item': dict(item, node='n2', instance_id='i-n2'), 'failed': True, 'msg': 'EniPerInstanceLimitExceeded'},
                             {'item': dict(item, node='n3', instance_id='i-n3'), 'changed': True, 'network_interface': None}])
    assert [(s['node'], s['eni_id'], s['ipv4'], s['error'], s['record'] is not None) for s in summary] == [
        ('n1', 'eni-n', ['10.0.0.41'], None, True), ('n2', None, [], 'n2 (n1-capacity-1): EniPerInstanceLimitExceeded', False),
        ('n3', None, [], None, False)]
    hosts = [host('n1', [eni('eni-a', 0, ['10.0.0.10'])]), host('n2', [eni('eni-b', 0, [])])]
    merged = with_enis(hosts, summary)
    assert [e['id'] for e in merged[0]['alicloud_enis']] == ['eni-a', 'eni-n'] and merged[1] is hosts[1]
    assert 'status' not in merged[0]['alicloud_enis'][1] and len(hosts[0]['alicloud_enis']) == 1
    assert with_enis(merged, summary)[0]['alicloud_enis'] == merged[0]['alicloud_enis']


def test_nodes_the_cluster_does_not_know_are_named_and_removed_only_when_asked():
    hosts = [host('n1', [eni('eni-a', 0, ['10.0.0.10'])]), host('n2', [eni('eni-b', 0, ['10.0.0.11'])])]
    pools = [pool('n1-eth0-v4', ['10.0.0.10']), pool('n2-eth0-v4', ['10.0.0.11'], node='n2', eni_id='eni-b')]
    kept = report(hosts, pools, SETTINGS, cluster_nodes=['n1'])
    assert [(a['node'], a['in_cluster'], a['removed'], a['eni_ids']) for a in kept['absent_nodes']] == [('n2', False, False, ['eni-b'])]
    assert kept['absent_nodes'][0]['reason'].startswith('no Node n2 in the cluster (deleted, or not joined yet): kept')
    assert [r['in_cluster'] for r in sorted(kept['rows'], key=lambda r: r['node'])] == [True, False]
    assert kept['stale_pools'] == [] and 'eni-b' in kept['live_enis']
    assert (kept['summary']['not_in_cluster'], kept['summary']['removed_nodes']) == (1, 0)
    assert table(kept)[-1].split(None, 9)[-1].startswith('not in the cluster: no Node n2')
    removed = report(hosts, pools, dict(SETTINGS, remove_missing_nodes=True), cluster_nodes=['N1'])
    assert removed['absent_nodes'][0]['removed'] and removed['absent_nodes'][0]['reason'] == (
        'no Node n2 in the cluster: removed (remove_missing_nodes)')
    assert [(s['pool'], s['action']) for s in removed['stale_pools']] == [('n2-eth0-v4', 'delete')]
    assert 'eni-b' not in removed['live_enis'] and [r['node'] for r in removed['rows']] == ['n1']
    # unknown cluster (no node list): every host counts as in it
    assert report(hosts, pools, dict(SETTINGS, remove_missing_nodes=True))['absent_nodes'] == []


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
    (dict(SETTINGS, max_new_enis=-1), 'max_new_enis=-1: expected a whole number of at least 0'),
    (dict(SETTINGS, new_eni_vswitches={'a': 'vsw-b'}), "new_eni_vswitches={'a': 'vsw-b'}: expected a mapping"),
    (dict(SETTINGS, new_eni_security_groups=['default']), "new_eni_security_groups=['default']: expected a list of sg- ids"),
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


def test_an_eni_with_some_room_left_gets_it_before_any_new_eni():
    hosts = [host('n1', [eni('eni-a', 0, FULL_ENI[:4])])]
    pools = [pool('n1-eth0-v4', ['10.0.0.10-10.0.0.13'], allocated=FULL_ENI[:3])]
    plan = plan_for(hosts, pools, NEW)
    assert [(a['eni_id'], a['count']) for a in plan['assign']] == [('eni-a', 1)] and plan['new_enis'] == []
    assert plan['full'][0]['action'] == 'only 1 more fit on this ENI; a new ENI once it is full'
    assert plan_for(hosts, pools, SETTINGS)['full'][0]['action'] == 'only 1 more fit on this ENI'
