"""The alicloud_egress role through playbooks/alicloud_egress.yml on the lab inventory and on a generated
dual-stack world, against the ECS/VPC emulator: off by default, creates exactly what is missing, re-run
changed=0, check mode and render mode change nothing, the user's own SNAT entry survives."""

import json
import os

import pytest
import yaml

from cloud_helpers import LAB_INVENTORY, ROOT, EcsEmulator, cloud_env, run_playbook, write_world
from worldgen import generate  # noqa: E402  pylint: disable=wrong-import-position
from test_egress_modules import MUTATING, egress_state, lab_world, mutations

PLAYBOOK = os.path.join(ROOT, 'playbooks', 'alicloud_egress.yml')
ON = ['-e', json.dumps({'alicloud_egress_enabled': True, 'alicloud_egress_ipv6_bandwidth': True})]


@pytest.fixture
def lab(tmp_path):
    with EcsEmulator(write_world(tmp_path, lab_world())) as emu:
        yield emu


def changed_total(run):
    return sum(counts.get('changed', 0) for counts in run.recap().values())


def test_off_by_default(lab):
    run = run_playbook(PLAYBOOK, cloud_env(lab))
    assert changed_total(run) == 0 and mutations(lab) == {}
    assert not any(lab.request_counts().get(a) for a in MUTATING)


def test_apply_then_rerun_unchanged_then_check(lab):
    env = cloud_env(lab)
    check = run_playbook(PLAYBOOK, env, *ON, '--check')
    assert changed_total(check) > 0 and mutations(lab) == {}

    run = run_playbook(PLAYBOOK, env, *ON)
    assert changed_total(run) > 0
    state = egress_state(lab)
    nat = state['nat_gateways'][0]
    assert nat['name'] == 'underlay-egress' and nat['tags'] == {'managed-by': 'underlay.alicloud'}
    # Pools: ENIs with secondary IPv4 in the lab sit in vsw-bp1a and vsw-bp1b.
    assert sorted(e['source_vswitch'] for e in nat['snat_entries']) == ['vsw-bp1a', 'vsw-bp1b']
    assert [e['name'] for e in state['eips']] == ['underlay-egress-1'] and nat['eips'] == [state['eips'][0]['id']]
    assert sorted(b['address'] for b in state['ipv6_bandwidths']) == [
        '2408:4005:3a1:a400::156', '2408:4005:3a1:a400::157', '2408:4005:3a1:a400::161', '2408:4005:3a1:a400::162']

    lab.reset_stats()
    again = run_playbook(PLAYBOOK, env, *ON)
    assert changed_total(again) == 0 and mutations(lab) == {}
    assert egress_state(lab) == state


def test_render_writes_plan_without_mutations(lab, tmp_path):
    out = tmp_path / 'render'
    run_playbook(PLAYBOOK, cloud_env(lab), *ON, '-e', 'underlay_mode=render', '-e', 'underlay_render_dir=%s' % out)
    plan = json.loads((out / 'alicloud-egress' / 'plan.json').read_text())
    assert plan['sources'] == ['vsw-bp1a', 'vsw-bp1b'] and plan['vpc'] == ['vpc-bp1lab']
    assert len(plan['ipv6_addresses']) == 4 and plan['eips'] == ['underlay-egress-1']
    assert mutations(lab) == {}


def test_site_yml_has_the_stage_tagged_egress():
    with open(os.path.join(ROOT, 'playbooks', 'site.yml'), encoding='utf-8') as handle:
        text = handle.read()
    assert 'import_playbook: alicloud_egress.yml\n  tags: [egress]' in text


def dual_stack_world():
    """A generated dual-stack cluster (IPv6 on every node's second ENI) whose VPC already has the user's NAT
    gateway with an SNAT entry of its own for one pool vSwitch."""
    world = generate(instances=4, enis=2, regions=1, ipv6=2, stopped_rate=0, seed=7)
    region = world['regions']['cn-hangzhou']
    vpc = region['vpcs'][0]
    enis = [eni for inst in region['instances'] for eni in inst['enis']]
    user_vsw = enis[0]['vswitch']
    region['egress'] = {
        'ipv6_gateways': [{'id': 'ipv6gw-dual', 'vpc': vpc['id'], 'name': 'dual'}],
        'eips': [{'id': 'eip-user', 'ip': '47.100.9.1', 'name': 'user-eip'}],
        'nat_gateways': [{'id': 'ngw-user', 'name': 'user-nat', 'vswitch': user_vsw, 'eips': ['eip-user'],
                          'snat_entries': [{'id': 'snat-user', 'name': 'office', 'source_vswitch': user_vsw, 'snat_ips': ['47.100.9.1']}]}],
    }
    return world, sorted({e['vswitch'] for e in enis}), user_vsw


def test_dual_stack_world_with_the_users_gateway_creates_exactly_what_is_missing(tmp_path):
    world, vswitches, user_vsw = dual_stack_world()
    inventory = tmp_path / 'dual.alicloud_ecs.yml'
    with open(LAB_INVENTORY, encoding='utf-8') as handle:
        config = yaml.safe_load(handle)
    config['filters']['Tag'] = [{'Key': 'cluster', 'Value': 'c000'}]
    inventory.write_text(yaml.safe_dump(config))
    on = ['-e', json.dumps({'alicloud_egress_enabled': True, 'alicloud_egress_ipv6_bandwidth': True,
                            'alicloud_egress_nat_gateway_id': 'ngw-user'})]
    with EcsEmulator(write_world(tmp_path, world)) as emu:
        env = cloud_env(emu)
        check = run_playbook(PLAYBOOK, env, *on, '--check', inventory=str(inventory))
        assert changed_total(check) > 0 and mutations(emu) == {}

        run = run_playbook(PLAYBOOK, env, *on, inventory=str(inventory))
        assert changed_total(run) > 0
        state = egress_state(emu)
        nat = [n for n in state['nat_gateways'] if n['id'] == 'ngw-user']
        assert len(state['nat_gateways']) == 1 and nat  # no gateway of ours: the user's was named
        entries = {e['source_vswitch']: e for e in nat[0]['snat_entries']}
        # The user's entry is untouched; every other pool vSwitch got exactly one entry of ours.
        assert entries[user_vsw] == {'id': 'snat-user', 'name': 'office', 'source_vswitch': user_vsw, 'snat_ips': ['47.100.9.1']}
        assert sorted(entries) == vswitches
        assert all(entries[v]['name'] == 'underlay-' + v for v in vswitches if v != user_vsw)
        counts = mutations(emu)
        assert counts.get('CreateSnatEntry') == len(vswitches) - 1 and 'CreateNatGateway' not in counts
        assert not any(a.startswith(('Delete', 'Modify', 'Release', 'Unassociate')) for a in counts)
        # IPv6: bandwidth for every pod IPv6 address (2 per node on the second ENI), opened and tagged by us.
        opened = sorted(b['address'] for b in state['ipv6_bandwidths'])
        assert len(opened) == 4 * 2 == counts.get('AllocateIpv6InternetBandwidth')
        assert all(b['tags'] == {'managed-by': 'underlay.alicloud'} for b in state['ipv6_bandwidths'])

        emu.reset_stats()
        again = run_playbook(PLAYBOOK, env, *on, inventory=str(inventory))
        assert changed_total(again) == 0 and mutations(emu) == {}
        assert egress_state(emu) == state
