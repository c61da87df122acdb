"""ecs_eni_ip, ecs_eni and the alicloud_enis role: real ansible-playbook, real Alibaba SDK, the
ECS/VPC emulator as the cloud. Expected states are read from the emulator's own state dump."""

import copy
import ipaddress

import pytest

from cloud_helpers import ROOT, EcsEmulator, cloud_env, load_world, run_playbook, run_tasks, write_world

MUTATING = ('AssignPrivateIpAddresses', 'UnassignPrivateIpAddresses', 'AssignIpv6Addresses', 'UnassignIpv6Addresses',
            'CreateNetworkInterface', 'AttachNetworkInterface', 'DetachNetworkInterface', 'DeleteNetworkInterface')
PLAYBOOK = ROOT + '/playbooks/alicloud_enis.yml'


def eni_state(emu, eni_id):
    for region in emu.state()['regions'].values():
        for instance in region.get('instances', []):
            for eni in instance.get('enis', []):
                if eni['id'] == eni_id:
                    return dict(eni, instance=instance['id'])
        for eni in region.get('enis', []):
            if eni['id'] == eni_id:
                return dict(eni, instance=None)
    return None


def instance_enis(emu, instance_id):
    for region in emu.state()['regions'].values():
        for instance in region.get('instances', []):
            if instance['id'] == instance_id:
                return instance['enis']
    raise KeyError(instance_id)


def mutations(emu):
    counts = emu.request_counts()
    return dict((action, counts[action]) for action in MUTATING if counts.get(action))


def eni_ip(**args):
    return {'underlay.alicloud.ecs_eni_ip': args}


def eni(**args):
    return {'underlay.alicloud.ecs_eni': args}


@pytest.fixture
def lab(tmp_path):
    """A fresh lab cloud per test (the tests change it)."""
    with EcsEmulator(write_world(tmp_path, load_world())) as emu:
        yield emu


def test_reach_a_count_then_unchanged(lab, tmp_path):
    env = cloud_env(lab)
    before = eni_state(lab, 'eni-bp1x1')['secondary_ips']
    assert len(before) < 5
    run = run_tasks(tmp_path, env, [eni_ip(eni_id='eni-bp1x1', secondary_private_ip_address_count=5)])
    result = run.results['r0']
    after = eni_state(lab, 'eni-bp1x1')['secondary_ips']
    assert result['changed'] is True
    assert len(after) == 5 and set(before) <= set(after)
    assert sorted(result['added_private_ips']) == sorted(set(after) - set(before))
    assert result['network_interface']['secondary_ips'] == sorted(after, key=ipaddress.ip_address)
    lab.reset_stats()
    again = run_tasks(tmp_path, env, [eni_ip(eni_id='eni-bp1x1', secondary_private_ip_address_count=5)])
    assert again.results['r0']['changed'] is False
    assert mutations(lab) == {}


def test_check_mode_reports_and_changes_nothing(lab, tmp_path):
    before = eni_state(lab, 'eni-bp1x1')
    run = run_tasks(tmp_path, cloud_env(lab), [eni_ip(eni_id='eni-bp1x1', secondary_private_ip_address_count=5)],
                    '--check', '--diff')
    assert run.results['r0']['changed'] is True
    assert 'picked by the cloud' in run.output
    assert eni_state(lab, 'eni-bp1x1') == before
    assert mutations(lab) == {}


def test_over_quota_fails_before_any_change(lab, tmp_path):
    run = run_tasks(tmp_path, cloud_env(lab), [eni_ip(eni_id='eni-bp1x1', secondary_private_ip_address_count=6)],
                    expect_rc=2)
    msg = run.failure()['msg']
    assert '6 secondary IPv4 addresses requested but the quota allows 5 per ENI' in msg
    assert 'EniPrivateIpAddressQuantity' in msg
    assert mutations(lab) == {}


def test_protected_ip_refused_and_nothing_changed(lab, tmp_path):
    before = eni_state(lab, 'eni-bp1m1')['secondary_ips']
    keep, held = before[:2], before[2]
    run = run_tasks(tmp_path, cloud_env(lab), [eni_ip(
        eni_id='eni-bp1m1', secondary_private_ip_addresses=keep, purge_secondary_private_ip_addresses=True,
        protected_ips=[held])], expect_rc=2)
    assert held in run.failure()['msg'] and 'protected' in run.failure()['msg']
    assert eni_state(lab, 'eni-bp1m1')['secondary_ips'] == before
    assert mutations(lab) == {}


def test_purge_to_an_exact_list(lab, tmp_path):
    before = eni_state(lab, 'eni-bp1m1')['secondary_ips']
    wanted = [before[0], '192.168.0.201']
    run = run_tasks(tmp_path, cloud_env(lab), [eni_ip(
        eni_id='eni-bp1m1', secondary_private_ip_addresses=wanted, purge_secondary_private_ip_addresses=True)],
        '--diff')
    result = run.results['r0']
    assert sorted(eni_state(lab, 'eni-bp1m1')['secondary_ips']) == sorted(wanted)
    assert result['added_private_ips'] == ['192.168.0.201']
    assert result['removed_private_ips'] == before[1:]
    assert run.output.count('"192.168.0.201"') >= 1  # the diff shows the new address


def test_ipv6_on_a_dual_stack_vswitch(lab, tmp_path):
    before = eni_state(lab, 'eni-bp1x1')['ipv6_ips']
    run = run_tasks(tmp_path, cloud_env(lab), [eni_ip(eni_id='eni-bp1x1', ipv6_address_count=3)])
    after = eni_state(lab, 'eni-bp1x1')['ipv6_ips']
    assert len(after) == 3 and set(before) <= set(after)
    assert all(ipaddress.ip_address(ip) in ipaddress.ip_network(run.results['r0']['network_interface']['ipv6_cidr'])
               for ip in after)
    assert run.results['r0']['added_ipv6_ips'] == sorted(set(after) - set(before), key=ipaddress.ip_address)


def test_ipv6_on_an_ipv4_only_vswitch_fails_clearly(lab, tmp_path):
    run = run_tasks(tmp_path, cloud_env(lab), [eni_ip(eni_id='eni-bp1x0', ipv6_address_count=1)], expect_rc=2)
    assert 'has no IPv6 CIDR' in run.failure()['msg'] and 'vsw-bp1a' in run.failure()['msg']
    assert mutations(lab) == {}


def test_vswitch_exhaustion_is_surfaced(tmp_path):
    world = load_world()
    region = world['regions']['cn-hangzhou']
    # A /29 leaves 4 usable addresses: the ENI's primary plus 3.
    region['vpcs'][0]['vswitches'].append({'id': 'vsw-bp1tiny', 'zone': 'cn-hangzhou-i', 'cidr': '172.16.9.0/29'})
    region['enis'] = list(region.get('enis', [])) + [
        {'id': 'eni-bp1tiny', 'vswitch': 'vsw-bp1tiny', 'primary_ip': '172.16.9.1', 'secondary_ips': []}]
    with EcsEmulator(write_world(tmp_path, world)) as emu:
        run = run_tasks(tmp_path, cloud_env(emu), [eni_ip(eni_id='eni-bp1tiny', secondary_private_ip_address_count=5)],
                        expect_rc=2)
        failure = run.failure()
        assert failure['error']['code'] == 'InvalidVSwitchId.IpNotEnough'
        assert failure['msg'].startswith('AssignPrivateIpAddresses failed: InvalidVSwitchId.IpNotEnough')
        assert 'RequestId' in failure['msg'] and '\n' not in failure['msg']


def test_throttling_during_assignment_converges_without_double_assignment(tmp_path):
    with EcsEmulator(write_world(tmp_path, load_world()), throttle_rate={'AssignPrivateIpAddresses': 0.5, '*': 0.3},
                     unavailable_rate=0.05, seed=7) as emu:
        before = eni_state(emu, 'eni-bp1x1')['secondary_ips']
        run = run_tasks(tmp_path, cloud_env(emu), [eni_ip(eni_id='eni-bp1x1', secondary_private_ip_address_count=5)])
        after = eni_state(emu, 'eni-bp1x1')['secondary_ips']
        assert len(after) == 5 and set(before) <= set(after)
        assert run.results['r0']['changed'] is True
        assert emu.stats_snapshot()['faults']  # faults were really injected


def test_create_attach_and_never_detach_primary(lab, tmp_path):
    env = cloud_env(lab)
    spec = dict(name='worker2-eni3', instance_id='i-bp1worker2', vswitch_id='vsw-bp1b', security_groups=['sg-bp1lab'],
                secondary_private_ip_address_count=2)
    run = run_tasks(tmp_path, env, [eni(**spec), eni(**spec), eni(eni_id='eni-bp1x0', state='absent')], expect_rc=2)
    created, again = run.results['r0'], run.results['r1']
    assert created['changed'] is True and again['changed'] is False
    state = eni_state(lab, created['network_interface']['id'])
    assert state['instance'] == 'i-bp1worker2' and len(state['secondary_ips']) == 2
    assert created['network_interface']['status'] == 'InUse'
    assert 'primary ENI' in run.failure()['msg']
    assert eni_state(lab, 'eni-bp1x0')['instance'] == 'i-bp1worker2'
    assert lab.request_counts().get('DetachNetworkInterface') is None


def test_create_with_ipv6_addresses(lab, tmp_path):
    spec = dict(name='worker2-eni6', instance_id='i-bp1worker2', vswitch_id='vsw-bp1b', security_groups=['sg-bp1lab'],
                secondary_private_ip_address_count=2, ipv6_address_count=3)
    run = run_tasks(tmp_path, cloud_env(lab), [eni(**spec), eni(**spec)])
    created = run.results['r0']['network_interface']
    assert run.results['r1']['changed'] is False
    state = eni_state(lab, created['id'])
    assert (len(state['secondary_ips']), len(state['ipv6_ips'])) == (2, 3)
    assert created['ipv6_ips'] == state['ipv6_ips'] and lab.request_counts()['CreateNetworkInterface'] == 1


def test_eni_quota_checked_before_creating(lab, tmp_path):
    env = cloud_env(lab)
    spec = dict(instance_id='i-bp1worker2', vswitch_id='vsw-bp1b', security_groups=['sg-bp1lab'])
    run = run_tasks(tmp_path, env, [eni(name='w2-a', **spec), eni(name='w2-b', **spec)], expect_rc=2)
    assert 'already has 3 ENIs' in run.failure()['msg']
    assert lab.request_counts()['CreateNetworkInterface'] == 1
    assert len(instance_enis(lab, 'i-bp1worker2')) == 3


def test_detach_and_delete(lab, tmp_path):
    env = cloud_env(lab)
    run = run_tasks(tmp_path, env, [
        eni(name='w2-tmp', instance_id='i-bp1worker2', vswitch_id='vsw-bp1b', security_groups=['sg-bp1lab']),
        eni(name='w2-tmp', state='absent'),
        eni(name='w2-tmp', state='absent')])
    eni_id = run.results['r0']['network_interface']['id']
    assert run.results['r1']['changed'] is True and run.results['r2']['changed'] is False
    assert eni_state(lab, eni_id) is None


def test_role_shapes_every_node_and_is_idempotent(lab, tmp_path):
    env = cloud_env(lab)
    shape = ['-e', '{"alicloud_enis_ipv4_per_eni": "max", "alicloud_enis_protect_allocated": false, '
                   '"alicloud_enis_secondary_enis": [{"vswitch_id": "vsw-bp1b", "security_groups": ["sg-bp1lab"]}]}']
    first = run_playbook(PLAYBOOK, env, *shape)
    for instance, host in (('i-bp1master', 'master'), ('i-bp1worker', 'worker'), ('i-bp1worker2', 'worker2')):
        enis = instance_enis(lab, instance)
        assert len(enis) == 3, host
        assert all(len(e['secondary_ips']) == 5 for e in enis), host
        assert enis[2].get('name') == '%s-eni1' % host
    assert 'pods that can get an underlay IPv4 address: 15' in first.output
    lab.reset_stats()
    second = run_playbook(PLAYBOOK, env, *shape)
    assert all(counts['changed'] == 0 for counts in second.recap().values()), second.output
    assert mutations(lab) == {}


def test_role_does_nothing_unless_configured(lab, tmp_path):
    before = copy.deepcopy(lab.state())
    run = run_playbook(PLAYBOOK, cloud_env(lab))
    assert all(counts['changed'] == 0 for counts in run.recap().values())
    assert lab.state() == before


def test_secret_never_printed_at_vvvv(lab, tmp_path):
    env = cloud_env(lab, key_id='LTAIlabkey', secret='labsecret')
    run = run_tasks(tmp_path, env, [eni_ip(eni_id='eni-bp1x1', secondary_private_ip_address_count=9,
                                           access_key_id='LTAIlabkey', access_key_secret='labsecret')],
                    '-vvvv', expect_rc=2)
    assert 'quota allows 5' in run.failure()['msg']
    assert 'labsecret' not in run.output
