"""The VM-node harness's interface and its VPC stand-in, without booting a VM (`make e2e` boots them):
bad input is one line and starts nothing; the fabric lets through exactly the ENIs' MAC/IP pairs of
the world (the real nftables parser and a real bridge in a network namespace); the NAT host forwards
exactly the sources that have an SNAT entry."""
import copy
import os
import subprocess
import sys
import uuid

import pytest
import yaml

from real_cluster import ROOT

sys.path.insert(0, os.path.join(ROOT, 'tests', 'cluster'))
import vmnodes  # noqa: E402  pylint: disable=wrong-import-position

VMNODES = os.path.join(ROOT, 'tests', 'cluster', 'vmnodes')
LAB_WORLD = os.path.join(ROOT, 'inventories', 'lab', 'world.yml')


def lab_world():
    with open(LAB_WORLD, encoding='utf-8') as handle:
        return yaml.safe_load(handle)


def test_the_lab_selects_its_running_cluster_nodes():
    chosen = vmnodes.select_instances(lab_world())
    assert [i['id'] for i in chosen] == ['i-bp1master', 'i-bp1worker', 'i-bp1worker2']
    assert [i['id'] for i in vmnodes.select_instances(lab_world(), max_nodes=2)] == ['i-bp1master', 'i-bp1worker']


@pytest.mark.parametrize('instances, message', [
    (['i-nope'], 'unknown instance i-nope: the world has i-bp1master, i-bp1prodweb, i-bp1stopped, i-bp1worker, i-bp1worker2'),
    (['i-bp1stopped'], 'instance i-bp1stopped is not Running: only running instances boot'),
])
def test_bad_instances_are_one_line_and_start_nothing(tmp_path, instances, message):
    directory = tmp_path / 'lab'
    argv = [VMNODES, 'up', '--world', LAB_WORLD, '--dir', str(directory)]
    for instance in instances:
        argv += ['--instance', instance]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] == 'vmnodes: ' + message
    assert not (directory / 'vmnodes.json').exists()


def test_a_world_without_running_instances_boots_nothing(tmp_path):
    world = lab_world()
    for inst in world['regions']['cn-hangzhou']['instances']:
        inst['status'] = 'Stopped'
    path = tmp_path / 'world.yml'
    path.write_text(yaml.safe_dump(world), encoding='utf-8')
    proc = subprocess.run([VMNODES, 'up', '--world', str(path), '--dir', str(tmp_path / 'lab')],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] == 'vmnodes: no running instance with ENIs in the world: nothing to boot'


def test_gateway_is_the_vswitch_broadcast_minus_two():
    assert vmnodes.gateway('172.31.192.0/20') == '172.31.207.253'
    assert vmnodes.gateway('192.168.0.0/24') == '192.168.0.253'


def test_fabric_plan_follows_the_live_state():
    world = lab_world()
    plan = vmnodes.fabric_plan(world)['vpc-bp1lab']
    assert ('00:16:3e:00:00:01', '172.31.199.183') in plan['pairs4']        # primary
    assert ('00:16:3e:00:00:01', '172.31.199.189') in plan['pairs4']        # assigned secondary
    assert ('00:16:3e:00:00:02', '2408:4005:3a1:a400::157') in plan['pairs6']
    assert ('00:16:3e:00:00:01', '172.31.199.190') not in plan['pairs4']    # worker's address, master's MAC
    assert not plan['nat'] and plan['snat'] == []
    # What the egress stage leaves in the emulator's state: a NAT gateway with one SNAT entry per vSwitch.
    state = copy.deepcopy(world)
    state['regions']['cn-hangzhou']['egress'] = {'nat_gateways': [{
        'id': 'ngw-1', 'vswitch': 'vsw-bp1a', 'snat_entries': [
            {'id': 'snat-1', 'source_vswitch': 'vsw-bp1b', 'snat_ips': ['47.96.0.11']},
            {'id': 'snat-2', 'source_cidr': '172.31.192.0/20', 'snat_ips': ['47.96.0.12', '47.96.0.13']}]}]}
    eni = state['regions']['cn-hangzhou']['instances'][2]['enis'][1]
    eni['secondary_ips'].append('192.168.0.168')
    plan = vmnodes.fabric_plan(state)['vpc-bp1lab']
    assert ('00:16:3e:00:00:06', '192.168.0.168') in plan['pairs4']
    assert plan['nat'] and plan['snat'] == [('192.168.0.0/24', '47.96.0.11'), ('172.31.192.0/20', '47.96.0.12')]


@pytest.fixture
def netns():
    if os.geteuid() != 0:
        pytest.skip('network namespaces need root')
    name = 'ultest-%s' % uuid.uuid4().hex[:6]
    subprocess.run(['ip', 'netns', 'add', name], check=True)
    yield name
    subprocess.run(['ip', 'netns', 'del', name], check=False)


def test_the_rules_load_into_the_kernel(netns):  # pylint: disable=redefined-outer-name
    """The real nft parser and kernel take the filter and the NAT table, twice (a re-sync replaces them)."""
    plan = vmnodes.fabric_plan(lab_world())['vpc-bp1lab']
    for _attempt in range(2):
        vmnodes._nft(netns, vmnodes.render_filter(plan['pairs4'], plan['pairs6']))  # pylint: disable=protected-access
        vmnodes._nft(netns, vmnodes.render_nat([('192.168.0.0/24', '47.96.0.11')], 'inet0'))  # pylint: disable=protected-access
    listing = subprocess.run(['ip', 'netns', 'exec', netns, 'nft', 'list', 'ruleset'], capture_output=True, text=True,
                             check=True).stdout
    assert '00:16:3e:00:00:01 . 172.31.199.183' in listing
    assert 'oifname "inet0" ip saddr 192.168.0.0/24 snat to 47.96.0.11' in listing
    assert 'oifname "inet0" ip saddr 192.168.0.0/24 accept' in listing
    # An empty world still loads (no pairs: everything from a tap is dropped).
    vmnodes._nft(netns, vmnodes.render_filter(set(), set()))  # pylint: disable=protected-access
    vmnodes._nft(netns, vmnodes.render_nat([], 'inet0'))  # pylint: disable=protected-access
