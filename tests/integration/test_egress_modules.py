"""Egress modules (NAT gateway, EIP, SNAT, IPv6 Internet bandwidth): real ansible-playbook, real
Alibaba SDK, the ECS/VPC emulator as the cloud. Expected states come from the emulator's state dump."""

import pytest

from cloud_helpers import EcsEmulator, cloud_env, load_world, run_tasks, write_world

MUTATING = ('CreateNatGateway', 'DeleteNatGateway', 'AllocateEipAddress', 'AssociateEipAddress', 'UnassociateEipAddress',
            'ReleaseEipAddress', 'CreateSnatEntry', 'ModifySnatEntry', 'DeleteSnatEntry', 'AllocateIpv6InternetBandwidth',
            'ModifyIpv6InternetBandwidth', 'DeleteIpv6InternetBandwidth', 'TagResources', 'UnTagResources')
USER_NAT = 'ngw-bp1user'


def mutations(emu):
    counts = emu.request_counts()
    return dict((action, counts[action]) for action in MUTATING if counts.get(action))


def egress_state(emu):
    return emu.state()['regions']['cn-hangzhou'].get('egress', {})


def task(module, **args):
    return {'underlay.alicloud.%s' % module: args}


def lab_world(user_nat=False, foreign_bandwidth=False):
    world = load_world()
    egress = {'ipv6_gateways': [{'id': 'ipv6gw-bp1lab', 'vpc': 'vpc-bp1lab', 'name': 'lab'}]}
    if user_nat:
        egress['eips'] = [{'id': 'eip-bp1user', 'ip': '47.100.0.1', 'name': 'user-eip'}]
        egress['nat_gateways'] = [{'id': USER_NAT, 'name': 'user-nat', 'vswitch': 'vsw-bp1a', 'eips': ['eip-bp1user'],
                                   'snat_entries': [{'id': 'snat-bp1user', 'name': 'office', 'source_cidr': '172.31.0.0/16',
                                                     'snat_ips': ['47.100.0.1']}]}]
    if foreign_bandwidth:
        egress['ipv6_bandwidths'] = [{'address': '2408:4005:3a1:a400::161', 'bandwidth': 3, 'id': 'ipv6bw-bp1user'}]
    world['regions']['cn-hangzhou']['egress'] = egress
    return world


@pytest.fixture
def lab(tmp_path):
    with EcsEmulator(write_world(tmp_path, lab_world())) as emu:
        yield emu


@pytest.fixture
def shared(tmp_path):
    """A lab whose VPC already has a user's NAT gateway, EIP, a wide SNAT entry and IPv6 bandwidth."""
    with EcsEmulator(write_world(tmp_path, lab_world(user_nat=True, foreign_bandwidth=True))) as emu:
        yield emu


def egress_tasks(nat_id='{{ nat.nat_gateway.id }}'):
    return [
        dict(task('vpc_nat_gateway', name='lab-egress', vpc_id='vpc-bp1lab', vswitch_id='vsw-bp1a'), register='nat'),
        dict(task('vpc_eip', name='lab-egress-1', bandwidth=10, nat_gateway_id=nat_id), register='eip'),
        dict(task('vpc_snat_entry', nat_gateway_id=nat_id, sources=['vsw-bp1a', 'vsw-bp1b']), register='snat'),
    ]


def test_create_then_rerun_unchanged(lab, tmp_path):
    env = cloud_env(lab)
    run = run_tasks(tmp_path, env, egress_tasks(), '--diff')
    assert [run.results[k]['changed'] for k in ('nat', 'eip', 'snat')] == [True, True, True]
    nat = run.results['nat']['nat_gateway']
    assert nat['status'] == 'Available' and nat['managed'] and nat['vswitch_id'] == 'vsw-bp1a'
    assert run.results['eip']['eip']['instance_id'] == nat['id'] and run.results['eip']['eip']['status'] == 'InUse'
    assert sorted(run.results['snat']['created']) == ['vsw-bp1a', 'vsw-bp1b']
    assert run.results['snat']['diff']['before'] == {'entries': []}
    state = egress_state(lab)
    assert [(e['name'], e['source_vswitch']) for e in state['nat_gateways'][0]['snat_entries']] == [
        ('underlay-vsw-bp1a', 'vsw-bp1a'), ('underlay-vsw-bp1b', 'vsw-bp1b')]
    assert state['eips'][0]['tags'] == {'managed-by': 'underlay.alicloud'}

    lab.reset_stats()
    again = run_tasks(tmp_path, env, egress_tasks())
    assert [again.results[k]['changed'] for k in ('nat', 'eip', 'snat')] == [False, False, False]
    assert mutations(lab) == {}
    assert egress_state(lab) == state


def test_check_mode_changes_nothing(lab, tmp_path):
    env = cloud_env(lab)
    run = run_tasks(tmp_path, env, [dict(task('vpc_nat_gateway', name='lab-egress', vpc_id='vpc-bp1lab', vswitch_id='vsw-bp1a'),
                                         register='nat'),
                                    dict(task('vpc_eip', name='lab-egress-1'), register='eip')], '--check', '--diff')
    assert run.results['nat']['changed'] and run.results['eip']['changed']
    assert run.results['nat']['diff']['before'] == {} and run.results['nat']['diff']['after']['name'] == 'lab-egress'
    assert mutations(lab) == {} and 'nat_gateways' not in egress_state(lab)


def test_user_entries_survive_overlaps_reported(shared, tmp_path):
    env = cloud_env(shared)
    run = run_tasks(tmp_path, env, [
        dict(task('vpc_snat_entry', nat_gateway_id=USER_NAT, sources=['vsw-bp1a', 'vsw-bp1b', '192.168.1.0/24']), register='snat'),
        dict(task('vpc_snat_entry', nat_gateway_id=USER_NAT, sources=['vsw-bp1a', 'vsw-bp1b', '192.168.1.0/24'],
                  skip_covered=False), register='forced'),
        dict(task('vpc_snat_entry', nat_gateway_id=USER_NAT, sources=['192.168.1.0/24'], purge=True), register='purged'),
        dict(task('vpc_snat_entry', nat_gateway_id=USER_NAT, sources=['192.168.1.0/24'], state='absent'), register='gone'),
    ])
    snat = run.results['snat']
    assert snat['changed'] and sorted(snat['created']) == ['192.168.1.0/24', 'vsw-bp1b']
    assert snat['covered'] == [{'source': 'vsw-bp1a', 'by': 'snat-bp1user', 'by_name': 'office', 'by_cidr': '172.31.0.0/16'}]
    assert [(o['source'], o['entry'], o['managed']) for o in snat['overlaps']] == [('vsw-bp1a', 'snat-bp1user', False)]
    forced = run.results['forced']
    assert forced['created'] == ['vsw-bp1a']
    assert [(o['source'], o['entry']) for o in forced['overlaps']] == [('vsw-bp1a', 'snat-bp1user')]
    assert len(run.results['purged']['deleted']) == 2 and not run.results['purged']['created']
    assert run.results['gone']['deleted'] and run.results['gone']['changed']
    entries = egress_state(shared)['nat_gateways'][0]['snat_entries']
    assert entries == [{'id': 'snat-bp1user', 'name': 'office', 'snat_ips': ['47.100.0.1'], 'source_cidr': '172.31.0.0/16'}]


def test_only_our_resources_are_deleted(shared, tmp_path):
    env = cloud_env(shared)
    run = run_tasks(tmp_path, env, [task('vpc_nat_gateway', nat_gateway_id=USER_NAT, state='absent')], expect_rc=2)
    assert 'was not created by this collection' in run.failure()['msg']
    run = run_tasks(tmp_path, env, [task('vpc_eip', allocation_id='eip-bp1user', state='absent')], expect_rc=2)
    assert 'eip-bp1user (47.100.0.1) was not allocated by this collection' in run.failure()['msg']
    assert mutations(shared) == {}
    # Ours: created, then deleted with its EIP (force unbinds and removes our entries).
    run = run_tasks(tmp_path, env, egress_tasks() + [
        dict(task('vpc_nat_gateway', nat_gateway_id='{{ nat.nat_gateway.id }}', state='absent'), register='nat_gone'),
        dict(task('vpc_eip', allocation_id='{{ eip.eip.allocation_id }}', state='absent'), register='eip_gone'),
    ])
    assert run.results['nat_gone']['changed'] and run.results['eip_gone']['changed']
    state = egress_state(shared)
    assert [n['id'] for n in state['nat_gateways']] == [USER_NAT] and [e['id'] for e in state['eips']] == ['eip-bp1user']


@pytest.mark.parametrize('module,args,message', [
    ('vpc_snat_entry', {'nat_gateway_id': 'ngw-bp1nothere', 'sources': ['vsw-bp1a']}, 'nat_gateway_id: ngw-bp1nothere not found'),
    ('vpc_snat_entry', {'nat_gateway_id': USER_NAT, 'sources': ['10.9.0.0/16']}, 'sources: CIDR 10.9.0.0/16 is outside the VPC'),
    ('vpc_snat_entry', {'nat_gateway_id': USER_NAT, 'sources': ['vsw-bp1nothere']}, 'sources: vSwitch vsw-bp1nothere is not a vSwitch'),
    ('vpc_snat_entry', {'nat_gateway_id': USER_NAT, 'sources': ['vsw-bp1b'], 'snat_ips': ['47.1.1.1']}, 'snat_ips: 47.1.1.1 not associated'),
    ('vpc_nat_gateway', {'name': 'x-egress', 'vpc_id': 'vpc-bp1lab', 'vswitch_id': 'vsw-bp1nothere'}, 'vswitch_id: vsw-bp1nothere not found'),
    ('vpc_eip', {'allocation_id': 'eip-2zeother', 'nat_gateway_id': USER_NAT}, 'allocation_id: eip-2zeother not found in region cn-hangzhou'),
    ('vpc_eip', {'name': 'big', 'bandwidth': 300}, 'bandwidth: 300 Mbit/s is outside the allowed range 1 to 200 for PayByTraffic'),
    ('vpc_ipv6_internet_bandwidth', {'vswitch_ids': ['vsw-bp1b'], 'bandwidth': 0}, 'bandwidth: 0 Mbit/s is outside the allowed range 1 to 1000'),
    ('vpc_ipv6_internet_bandwidth', {'addresses': ['2408:4005:3a1:a4ff::9']}, 'addresses: 2408:4005:3a1:a4ff::9 not found'),
    ('vpc_ipv6_internet_bandwidth', {'addresses': ['10.0.0.1']}, "addresses: '10.0.0.1' is not an IPv6 address"),
])
def test_bad_input_one_line_nothing_changed(shared, tmp_path, module, args, message):
    env = cloud_env(shared)
    run = run_tasks(tmp_path, env, [task(module, **args)], expect_rc=2)
    failure = run.failure()
    assert message in failure['msg'] and '\n' not in failure['msg']
    assert 'labsecret' not in run.output
    assert mutations(shared) == {}


def test_ipv6_bandwidth_ours_only(shared, tmp_path):
    env = cloud_env(shared)
    args = dict(vpc_id='vpc-bp1lab', vswitch_ids=['vsw-bp1b'], bandwidth=5)
    run = run_tasks(tmp_path, env, [
        dict(task('vpc_ipv6_internet_bandwidth', **args), register='check'),
    ], '--check', '--diff')
    assert run.results['check']['changed'] and mutations(shared) == {}
    resize = dict(args)
    resize['bandwidth'] = 8
    run = run_tasks(tmp_path, env, [
        dict(task('vpc_ipv6_internet_bandwidth', **args), register='open'),
        dict(task('vpc_ipv6_internet_bandwidth', **args), register='again'),
        dict(task('vpc_ipv6_internet_bandwidth', **resize), register='resize'),
        dict(task('vpc_ipv6_internet_bandwidth', state='absent', **args), register='close'),
    ])
    opened = run.results['open']
    assert opened['allocated'] == ['2408:4005:3a1:a400::156', '2408:4005:3a1:a400::157', '2408:4005:3a1:a400::162']
    assert opened['foreign'] == ['2408:4005:3a1:a400::161']
    assert not run.results['again']['changed']
    assert run.results['resize']['modified'] == opened['allocated']
    assert run.results['close']['deleted'] == opened['allocated'] and run.results['close']['foreign'] == ['2408:4005:3a1:a400::161']
    bands = egress_state(shared)['ipv6_bandwidths']
    assert [(b['address'], b['bandwidth'], b['id']) for b in bands] == [('2408:4005:3a1:a400::161', 3, 'ipv6bw-bp1user')]
