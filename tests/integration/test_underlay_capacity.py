"""playbooks/underlay_capacity.yml end to end: the lab dynamic inventory against the ECS/VPC emulator,
the pools on a real API server with the real Spiderpool 1.2.2 chart, controller and webhooks.

Pods holding addresses are what the Spiderpool agent's IPAM records: the pool's
``status.allocatedIPs`` (patched here, with real Pods kwok runs, so the controller's IP garbage
collection keeps them). One cluster serves the whole day-2 story, step by step: report, top-up and
join, re-run, an interrupted run, removal with release, bad input.
"""
import contextlib
import ipaddress
import json
import os

import pytest

from cloud_helpers import EcsEmulator, cloud_env, load_world, run_playbook, run_tasks, write_world
from real_cluster import real_kube_factory  # noqa: F401  pylint: disable=unused-import

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CAPACITY = os.path.join(ROOT, 'playbooks', 'underlay_capacity.yml')
NETWORKS = os.path.join(ROOT, 'playbooks', 'spiderpool_networks.yml')
ASSIGNS = ('AssignPrivateIpAddresses', 'AssignIpv6Addresses')
WRITES = ASSIGNS + ('UnassignPrivateIpAddresses', 'UnassignIpv6Addresses', 'CreateNetworkInterface', 'AttachNetworkInterface')


def day2_world(tmp_path):
    """The lab plus worker4, a new instance of a type without IPv6 whose two ENIs have no secondary address yet."""
    world = load_world()
    region = world['regions']['cn-hangzhou']
    region['instance_types']['ecs.c6.large'] = {'eni_quantity': 3, 'eni_private_ip_quantity': 6, 'eni_ipv6_quantity': 0,
                                                'cpu': 2, 'memory': 4}
    region['instances'].append({
        'id': 'i-bp1worker4', 'name': 'worker4', 'hostname': 'worker4', 'type': 'ecs.c6.large', 'zone': 'cn-hangzhou-i',
        'status': 'Running', 'tags': {'cluster': 'lab', 'role': 'worker'}, 'security_groups': ['sg-bp1lab'],
        'enis': [{'id': 'eni-bp1y0', 'vswitch': 'vsw-bp1a', 'mac': '00:16:3e:00:00:a7', 'primary_ip': '172.31.199.230',
                  'secondary_ips': [], 'ipv6_ips': []},
                 {'id': 'eni-bp1y1', 'vswitch': 'vsw-bp1b', 'mac': '00:16:3e:00:00:a8', 'primary_ip': '192.168.0.230',
                  'secondary_ips': [], 'ipv6_ips': []}]})
    return write_world(tmp_path, world)


def eni(emu, eni_id):
    for instance in emu.state()['regions']['cn-hangzhou']['instances']:
        for record in instance['enis']:
            if record['id'] == eni_id:
                return record
    raise AssertionError('no ENI %s' % eni_id)


def cloud_writes(emu):
    return dict((k, v) for k, v in emu.request_counts().items() if k in WRITES)


def allocate(kube, pool, ips, node=None):
    """Pods holding ``ips`` of ``pool``, as the agent's IPAM records them (the pods run on ``node`` when given)."""
    uids = {}
    for index, _ip in enumerate(ips):
        name = '%s-app-%d' % (pool, index)
        live = kube.get('Pod', name, 'default') or kube.run_pod(name, 'default', node=node)
        uids[name] = live['metadata']['uid']
    kube.patch_status('SpiderIPPool', pool, {
        'allocatedIPs': json.dumps(dict((ip, {'pod': 'default/%s-app-%d' % (pool, i), 'podUid': uids['%s-app-%d' % (pool, i)]})
                                        for i, ip in enumerate(ips))),
        'allocatedIPCount': len(ips)})


def pools(kube):
    return dict((p['metadata']['name'], p) for p in kube.objects('SpiderIPPool'))


def addresses(entries):
    """Addresses of Spiderpool `ips` entries (single addresses and a-b ranges) as sorted text."""
    out = []
    for entry in entries:
        first, _sep, last = entry.partition('-')
        start, end = ipaddress.ip_address(first), ipaddress.ip_address(last or first)
        out.extend(ipaddress.ip_address(n) for n in range(int(start), int(end) + 1))
    return [str(ip) for ip in sorted(out)]


def instance_enis(emu, instance_id):
    for instance in emu.state()['regions']['cn-hangzhou']['instances']:
        if instance['id'] == instance_id:
            return instance['enis']
    raise AssertionError('no instance %s' % instance_id)


def rows(report):
    return dict(((r['node'], r['interface'], r['family']), r) for r in report['rows'])


@contextlib.contextmanager
def started(world, real_kube_factory):  # noqa: F811  pylint: disable=redefined-outer-name
    """(emulator, cluster with master, worker and worker2 and Spiderpool, environment of both) for ``world``."""
    with EcsEmulator(world) as emu:
        kube = real_kube_factory(nodes=(('master', True), ('worker', False), ('worker2', False)))
        kube.install_spiderpool('ipvlan-eth0')
        yield emu, kube, kube.env(cloud_env(emu))


@pytest.fixture
def lab(tmp_path, real_kube_factory):  # noqa: F811  pylint: disable=redefined-outer-name
    with started(day2_world(tmp_path), real_kube_factory) as parts:
        yield parts


def test_report_topup_join_interrupt_and_removal(lab, tmp_path):
    emu, kube, env = lab
    # Day 1: the pools of the nodes that have addresses (worker4 has none yet).
    run_playbook(NETWORKS, env)
    day1 = pools(kube)
    assert sorted(day1) == ['master-eth0-v4', 'master-eth1-v4', 'master-eth1-v6', 'worker-eth0-v4', 'worker-eth1-v4',
                            'worker-eth1-v6', 'worker2-eth0-v4', 'worker2-eth1-v4']
    allocate(kube, 'worker-eth0-v4', ['172.31.199.190', '172.31.199.191', '172.31.199.192', '172.31.199.193'])
    allocate(kube, 'worker2-eth0-v4', ['172.31.199.196'])

    # 1. Report only (the default): table and JSON, nothing written anywhere.
    report_file = tmp_path / 'capacity.json'
    emu.reset_stats()
    kube.reset_stats()
    run = run_playbook(CAPACITY, env, '-e', 'underlay_capacity_report_file=%s' % report_file, '-e', 'underlay_capacity_target=4')
    assert cloud_writes(emu) == {} and sum(emu.request_counts().values()) > 0
    assert not [k for k in kube.request_counts()['requests'] if not k.startswith(('get ', 'list '))]
    report = json.loads(report_file.read_text())
    assert report['schema'] == 'underlay.alicloud/capacity-report/v1'
    table = rows(report)
    worker = table[('worker', 'eth0', 4)]
    assert (worker['cloud'], worker['in_pool'], worker['allocated'], worker['free'], worker['low']) == (5, 5, 4, 1, True)
    assert (worker['eni_ip_headroom'], worker['node_eni_headroom']) == (0, 1)       # ENI full, room for one more ENI
    worker2 = table[('worker2', 'eth0', 4)]
    assert (worker2['cloud'], worker2['allocated'], worker2['free'], worker2['eni_ip_headroom']) == (2, 1, 1, 3)
    joining = table[('worker4', 'eth0', 4)]
    assert (joining['cloud'], joining['pool_exists'], joining['eni_ip_headroom']) == (0, False, 5)
    assert table[('worker4', 'eth1', 6)]['skip'] == 'instance type ecs.c6.large has no IPv6 addresses per ENI (EniIpv6AddressQuantity 0)'
    assert table[('master', 'eth1', 6)]['free'] == 2 and not table[('master', 'eth1', 6)]['low']
    assert table[('worker2', 'eth1', 6)]['cloud'] == 0 and table[('worker2', 'eth1', 6)]['eni_ip_headroom'] == 6
    assert report['summary']['low'] == 5 and report['stale_pools'] == []
    assert 'worker   eth0   v4   5      5     4      1     0    1     LOW' in run.output

    # 2. Top-up: worker2 eth0 +3 (to 4 free) and 4 IPv6 on its eth1 (IPv6 vSwitch), worker4 joins with 4
    #    on each ENI; worker's full ENI is reported, not topped up; the other nodes' pools are not written.
    day1 = pools(kube)
    emu.reset_stats()
    run = run_playbook(CAPACITY, env, '-e', 'underlay_capacity_topup=true', '-e', 'underlay_capacity_target=4')
    assert cloud_writes(emu) == {'AssignPrivateIpAddresses': 3, 'AssignIpv6Addresses': 1}
    assert sorted(addresses(pools(kube)['worker2-eth1-v6']['spec']['ips'])) == addresses(eni(emu, 'eni-bp1x1')['ipv6_ips'])
    assert len(eni(emu, 'eni-bp1x1')['ipv6_ips']) == 4
    after = pools(kube)
    for name in ('master-eth0-v4', 'master-eth1-v4', 'master-eth1-v6', 'worker-eth0-v4', 'worker-eth1-v4', 'worker-eth1-v6',
                 'worker2-eth1-v4'):
        # generation counts spec writes (the controller's status updates leave it alone)
        assert after[name]['metadata']['generation'] == day1[name]['metadata']['generation'], name
    assert sorted(addresses(after['worker2-eth0-v4']['spec']['ips'])) == sorted(eni(emu, 'eni-bp1x0')['secondary_ips'])
    assert len(eni(emu, 'eni-bp1x0')['secondary_ips']) == 5
    for name, eni_id in (('worker4-eth0-v4', 'eni-bp1y0'), ('worker4-eth1-v4', 'eni-bp1y1')):
        assert sorted(addresses(after[name]['spec']['ips'])) == sorted(eni(emu, eni_id)['secondary_ips'])
        assert len(eni(emu, eni_id)['secondary_ips']) == 4
    assert 'worker4-eth1-v6' not in after

    # 3. Again: nothing to do, no cloud call but the inventory's reads, one pool list.
    emu.reset_stats()
    kube.reset_stats()
    run = run_playbook(CAPACITY, env, '-e', 'underlay_capacity_topup=true', '-e', 'underlay_capacity_target=4')
    assert 'changed=0' in run.output and 'changed=1' not in run.output, run.output
    assert cloud_writes(emu) == {}
    assert kube.request_counts(group='spiderpool.spidernet.io')['requests'] == {'list spiderippools.spiderpool.spidernet.io': 1}

    # 4. A run interrupted after the cloud step: worker4 eth1 got one more address but its pool did not.
    #    The next run adds it to the pool and assigns nothing again.
    allocate(kube, 'worker4-eth1-v4', addresses(after['worker4-eth1-v4']['spec']['ips'])[:3])
    run_tasks(tmp_path, env, [{'underlay.alicloud.ecs_eni_ip': {'eni_id': 'eni-bp1y1', 'secondary_private_ip_address_count': 5}}])
    emu.reset_stats()
    run_playbook(CAPACITY, env, '-e', 'underlay_capacity_topup=true', '-e', 'underlay_capacity_target=2')
    assert cloud_writes(emu) == {}
    assert sorted(addresses(pools(kube)['worker4-eth1-v4']['spec']['ips'])) == sorted(eni(emu, 'eni-bp1y1')['secondary_ips'])

    # 5. worker4 leaves (stopped: the inventory filters it out). Its eth1 pool holds addresses, so
    #    it stays with all its addresses in the cloud; its empty eth0 pool goes and, with release
    #    asked for, eth0's addresses are unassigned.
    with emu.api.lock:
        emu.world.instances['i-bp1worker4'].status = 'Stopped'
    emu.reset_stats()
    run = run_playbook(CAPACITY, env, '-e', 'underlay_capacity_topup=true', '-e', 'underlay_capacity_release_removed=true',
                       '-e', 'underlay_capacity_target=2')
    remaining = pools(kube)
    assert 'worker4-eth0-v4' not in remaining and 'worker4-eth1-v4' in remaining
    assert eni(emu, 'eni-bp1y0')['secondary_ips'] == [] and len(eni(emu, 'eni-bp1y1')['secondary_ips']) == 5
    assert cloud_writes(emu) == {'UnassignPrivateIpAddresses': 1}
    assert 'stale pool worker4-eth1-v4: keep' in run.output

    # 6. Bad input: a target beyond the quota fails in one line naming it; nothing is written.
    emu.reset_stats()
    before = dict((n, p['metadata']['resourceVersion']) for n, p in pools(kube).items())
    run = run_playbook(CAPACITY, env, '-e', 'underlay_capacity_topup=true', '-e', 'underlay_capacity_target=9', expect_rc=2)
    assert 'target=9 is beyond the quota of master eth0 IPv4 (instance type ecs.g7.large allows 5 per ENI)' in run.output
    assert cloud_writes(emu) == {}
    assert dict((n, p['metadata']['resourceVersion']) for n, p in pools(kube).items()) == before


def full_world(tmp_path):
    """The lab with every first ENI full (5 secondary IPv4, the per-ENI quota); master's type allows only the 2 ENIs it has."""
    world = load_world()
    region = world['regions']['cn-hangzhou']
    region['instance_types']['ecs.g7.two'] = {'eni_quantity': 2, 'eni_private_ip_quantity': 6, 'eni_ipv6_quantity': 6, 'cpu': 2, 'memory': 8}
    for instance in region['instances']:
        if instance['id'] == 'i-bp1master':
            instance['type'] = 'ecs.g7.two'
        if instance['id'] == 'i-bp1worker2':
            instance['enis'][0]['secondary_ips'] += ['172.31.199.199', '172.31.199.200', '172.31.199.201']
    return write_world(tmp_path, world)


@pytest.fixture
def full_lab(tmp_path, real_kube_factory):  # noqa: F811  pylint: disable=redefined-outer-name
    with started(full_world(tmp_path), real_kube_factory) as parts:
        yield parts


def test_full_enis_get_a_new_eni_within_quota_and_interrupted_runs_converge(full_lab, tmp_path):
    emu, kube, env = full_lab
    run_playbook(NETWORKS, env)
    for node, ips in (('master', ['172.31.199.185', '172.31.199.186', '172.31.199.187', '172.31.199.188']),
                      ('worker', ['172.31.199.190', '172.31.199.191', '172.31.199.192', '172.31.199.193']),
                      ('worker2', ['172.31.199.196', '172.31.199.197', '172.31.199.199', '172.31.199.200'])):
        allocate(kube, '%s-eth0-v4' % node, ips)
    master_before = instance_enis(emu, 'i-bp1master')
    new = ('-e', 'underlay_capacity_topup=true', '-e', 'underlay_capacity_new_enis=true', '-e', 'underlay_capacity_target=4')

    # 1. Check mode: the plan is shown, nothing is written in the cloud or the cluster.
    emu.reset_stats()
    kube.reset_stats()
    run = run_playbook(CAPACITY, env, '--check', *new)
    assert cloud_writes(emu) == {}
    assert not [k for k in kube.request_counts()['requests'] if not k.startswith(('get ', 'list '))]
    assert 'worker eth0 IPv4: ENI eni-bp1w0 is full (3 more wanted): new ENI worker-capacity-2 (eth2) in vSwitch vsw-bp1a' in run.output

    # 2. worker gets a new ENI (eth2) in the full ENI's vSwitch and security groups, with 4 addresses, and
    #    its pools; master has no room for a third ENI: reported, nothing changed; worker2 waits for the
    #    next run (one new ENI per run by default). worker2's empty IPv6 row is topped up as usual.
    report_file = tmp_path / 'capacity.json'
    emu.reset_stats()
    run = run_playbook(CAPACITY, env, '-e', 'underlay_capacity_report_file=%s' % report_file, *new)
    assert cloud_writes(emu) == {'AssignIpv6Addresses': 1, 'CreateNetworkInterface': 1, 'AttachNetworkInterface': 1}
    assert ('master eth0 IPv4: ENI eni-bp1m0 is full (3 more wanted): skip: node master has 2 of 2 ENIs (EniQuantity of '
            'ecs.g7.two): no room for another ENI; nothing changed') in run.output
    assert 'worker2 eth0 IPv4: ENI eni-bp1x0 is full (3 more wanted): max_new_enis=1 reached in this run: next run' in run.output
    assert instance_enis(emu, 'i-bp1master') == master_before
    enis = instance_enis(emu, 'i-bp1worker')            # in device index order
    added = enis[2:]
    assert [e['id'] for e in enis[:2]] == ['eni-bp1w0', 'eni-bp1w1'] and len(added) == 1 and len(added[0]['secondary_ips']) == 4
    assert (added[0]['vswitch'], added[0]['security_groups'], added[0]['name']) == ('vsw-bp1a', ['sg-bp1lab'], 'worker-capacity-2')
    assert added[0]['tags'] == {'managed-by': 'underlay.alicloud', 'underlay.alicloud/instance': 'i-bp1worker'}
    now = pools(kube)
    assert addresses(now['worker-eth2-v4']['spec']['ips']) == sorted(added[0]['secondary_ips'], key=ipaddress.ip_address)
    assert now['worker-eth2-v4']['metadata']['labels']['underlay.alicloud/eni'] == added[0]['id']
    assert kube.get('SpiderMultusConfig', 'ipvlan-eth2', 'kube-system')['spec']['ipvlan']['master'] == ['eth2']
    assert 'playbooks/ipvlan_cni.yml --limit worker' in run.output
    report = json.loads(report_file.read_text())
    assert [(n['node'], n['eni_id'], n['device_index'], len(n['ipv4']), n['error']) for n in report['new_enis']] == [
        ('worker', added[0]['id'], 2, 4, None)]

    # 3. A run that died after creating worker2's ENI and before attaching it (and before any address):
    #    the next run attaches that ENI rather than creating another; worker's new ENI has room, so
    #    worker gets no third one.
    orphan = run_tasks(tmp_path, env, [{'underlay.alicloud.ecs_eni': {
        'name': 'worker2-capacity-2', 'vswitch_id': 'vsw-bp1a', 'security_groups': ['sg-bp1lab'],
        'tags': {'managed-by': 'underlay.alicloud', 'underlay.alicloud/instance': 'i-bp1worker2'}}}]).results['r0']
    orphan_id = orphan['network_interface']['id']
    emu.reset_stats()
    run = run_playbook(CAPACITY, env, *new)
    assert cloud_writes(emu) == {'AttachNetworkInterface': 1}
    assert 'worker eth0 IPv4: ENI eni-bp1w0 is full (3 more wanted): %s in vSwitch vsw-bp1a still has room for IPv4' % added[0]['id'] \
        in run.output
    assert [e['id'] for e in instance_enis(emu, 'i-bp1worker2')] == ['eni-bp1x0', 'eni-bp1x1', orphan_id]
    assert eni(emu, orphan_id)['secondary_ips'] == []

    # 4. Attached without addresses: the next run fills it like any low ENI and its pool follows.
    emu.reset_stats()
    run_playbook(CAPACITY, env, *new)
    assert cloud_writes(emu) == {'AssignPrivateIpAddresses': 1}
    assert len(eni(emu, orphan_id)['secondary_ips']) == 4
    assert addresses(pools(kube)['worker2-eth2-v4']['spec']['ips']) == sorted(eni(emu, orphan_id)['secondary_ips'],
                                                                              key=ipaddress.ip_address)

    # 5. Nothing left to do: no cloud write, nothing changed.
    emu.reset_stats()
    run = run_playbook(CAPACITY, env, *new)
    assert cloud_writes(emu) == {} and 'changed=0' in run.output and 'changed=1' not in run.output, run.output
    assert len(instance_enis(emu, 'i-bp1worker')) == 3 and len(instance_enis(emu, 'i-bp1worker2')) == 3


def test_a_node_deleted_from_the_cluster_is_named_and_removed_safely(lab, tmp_path):
    emu, kube, env = lab
    run_playbook(NETWORKS, env)
    day1 = pools(kube)
    # a pod (running on master) still holds an address of worker2's eth0 pool
    allocate(kube, 'worker2-eth0-v4', ['172.31.199.196'], node='master')
    kube.delete('Node', 'worker2')
    kube.wait_for('Node worker2 gone', lambda: kube.get('Node', 'worker2') is None)

    # 1. Report: worker2 (deleted) and worker4 (not joined yet) are named; nothing is removed by default.
    report_file = tmp_path / 'capacity.json'
    emu.reset_stats()
    run = run_playbook(CAPACITY, env, '-e', 'underlay_capacity_report_file=%s' % report_file)
    report = json.loads(report_file.read_text())
    assert [(a['node'], a['in_cluster'], a['removed']) for a in report['absent_nodes']] == [
        ('worker2', False, False), ('worker4', False, False)]
    assert report['absent_nodes'][0]['eni_ids'] == ['eni-bp1x0', 'eni-bp1x1']
    assert report['summary']['not_in_cluster'] == 2 and report['stale_pools'] == []
    assert all(not r['in_cluster'] for r in report['rows'] if r['node'] == 'worker2')
    assert 'not in the cluster: no Node worker2 in the cluster (deleted, or not joined yet): kept' in run.output
    assert cloud_writes(emu) == {}

    # 2. Removal asked for: worker2's pool without pods goes, the one a pod holds stays; released are
    #    only the addresses no pool and no pod holds (eth1's); worker4 is removed too (it has no pools
    #    or addresses yet, nothing to release); master's and worker's pools are not written.
    #    Check mode first: nothing written, and no wait for pools it did not delete.
    emu.reset_stats()
    run = run_playbook(CAPACITY, env, '--check', '-e', 'underlay_capacity_topup=true', '-e', 'underlay_capacity_remove_missing_nodes=true',
                       '-e', 'underlay_capacity_release_removed=true', '-e', 'underlay_capacity_target=4')
    assert cloud_writes(emu) == {} and pools(kube).keys() == day1.keys()
    assert 'Read the SpiderIPPools again' in run.output and 'RETRYING' not in run.output, run.output
    emu.reset_stats()
    run = run_playbook(CAPACITY, env, '-e', 'underlay_capacity_topup=true', '-e', 'underlay_capacity_remove_missing_nodes=true',
                       '-e', 'underlay_capacity_release_removed=true', '-e', 'underlay_capacity_target=4')
    now = pools(kube)
    assert 'worker2-eth1-v4' not in now and 'worker2-eth0-v4' in now
    assert 'stale pool worker2-eth0-v4: keep (pods hold 172.31.199.196 (pod default/worker2-eth0-v4-app-0))' in run.output
    assert eni(emu, 'eni-bp1x1')['secondary_ips'] == [] and eni(emu, 'eni-bp1x0')['secondary_ips'] == ['172.31.199.196', '172.31.199.197']
    assert cloud_writes(emu) == {'UnassignPrivateIpAddresses': 1}
    for name in ('master-eth0-v4', 'master-eth1-v4', 'master-eth1-v6', 'worker-eth0-v4', 'worker-eth1-v4', 'worker-eth1-v6'):
        assert now[name]['metadata']['generation'] == day1[name]['metadata']['generation'], name

    # 3. The pod is gone: the pool goes and its addresses are released; then nothing is left to do.
    # as the agent leaves a pool whose last address is released (no allocatedIPs at all)
    kube.patch_status('SpiderIPPool', 'worker2-eth0-v4', {'allocatedIPs': None, 'allocatedIPCount': 0})
    kube.delete('Pod', 'worker2-eth0-v4-app-0', 'default')
    #    Another finalizer keeps the deleted pool: the wait ends naming it, and its addresses stay.
    held = {'metadata': {'finalizers': pools(kube)['worker2-eth0-v4']['metadata']['finalizers'] + ['example.com/hold']}}
    kube.patch('SpiderIPPool', 'worker2-eth0-v4', held)
    emu.reset_stats()
    run = run_playbook(CAPACITY, env, '-e', 'underlay_capacity_topup=true', '-e', 'underlay_capacity_remove_missing_nodes=true',
                       '-e', 'underlay_capacity_release_removed=true', '-e', 'underlay_capacity_target=4',
                       '-e', 'underlay_capacity_wait_timeout=4')
    assert 'SpiderIPPool worker2-eth0-v4 is still terminating after 4 s (finalizers ' in run.output and 'example.com/hold' in run.output
    assert pools(kube)['worker2-eth0-v4']['metadata'].get('deletionTimestamp')
    assert eni(emu, 'eni-bp1x0')['secondary_ips'] == ['172.31.199.196', '172.31.199.197'] and cloud_writes(emu) == {}
    left = [f for f in pools(kube)['worker2-eth0-v4']['metadata']['finalizers'] if f != 'example.com/hold']
    kube.patch('SpiderIPPool', 'worker2-eth0-v4', {'metadata': {'finalizers': left}})
    kube.wait_for('SpiderIPPool worker2-eth0-v4 gone', lambda: 'worker2-eth0-v4' not in pools(kube))
    emu.reset_stats()
    run_playbook(CAPACITY, env, '-e', 'underlay_capacity_topup=true', '-e', 'underlay_capacity_remove_missing_nodes=true',
                 '-e', 'underlay_capacity_release_removed=true', '-e', 'underlay_capacity_target=4')
    assert 'worker2-eth0-v4' not in pools(kube)
    assert eni(emu, 'eni-bp1x0')['secondary_ips'] == [] and cloud_writes(emu) == {'UnassignPrivateIpAddresses': 1}
    emu.reset_stats()
    run = run_playbook(CAPACITY, env, '-e', 'underlay_capacity_topup=true', '-e', 'underlay_capacity_remove_missing_nodes=true',
                       '-e', 'underlay_capacity_release_removed=true', '-e', 'underlay_capacity_target=4')
    assert cloud_writes(emu) == {} and 'changed=0' in run.output and 'changed=1' not in run.output, run.output
