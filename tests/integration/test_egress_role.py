"""The alicloud_egress role through playbooks/alicloud_egress.yml on the lab inventory, against the
ECS/VPC emulator: off by default, creates exactly what is missing, re-run changed=0, check mode and
render mode change nothing."""

import json
import os

import pytest

from cloud_helpers import ROOT, EcsEmulator, cloud_env, run_playbook, write_world
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
