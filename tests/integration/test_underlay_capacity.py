"""playbooks/underlay_capacity.yml end to end: the lab dynamic inventory against the ECS/VPC emulator,
the pools on a real API server with the real Spiderpool 1.2.2 chart, controller and webhooks.

Pods holding addresses are what the Spiderpool agent's IPAM records: the pool's
``status.allocatedIPs`` (patched here, with real Pods kwok runs, so the controller's IP garbage
collection keeps them). One cluster serves the whole day-2 story, step by step: report, top-up and
join, re-run, an interrupted run, removal with release, bad input.
"""
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


def allocate(kube, pool, ips):
    """Pods holding ``ips`` of ``pool``, as the agent's IPAM records them."""
    uids = {}
    for index, _ip in enumerate(ips):
        name = '%s-app-%d' % (pool, index)
        live = kube.get('Pod', name, 'default') or kube.run_pod(name, 'default')
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


def rows(report):
    return dict(((r['node'], r['interface'], r['family']), r) for r in report['rows'])


@pytest.fixture
def lab(tmp_path, real_kube_factory):  # noqa: F811  pylint: disable=redefined-outer-name
    with EcsEmulator(day2_world(tmp_path)) as emu:
        kube = real_kube_factory(nodes=(('master', True), ('worker', False), ('worker2', False)))
        kube.install_spiderpool('ipvlan-eth0')
        yield emu, kube, kube.env(cloud_env(emu))


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
