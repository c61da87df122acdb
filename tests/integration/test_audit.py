"""The audit suite (docs/reliability.md).

Bad input for the inventory, every module and every role's variables, each of which must fail
with an error naming the bad value, change nothing in the cloud (a hash of the emulator's state
before and after) and never print the AccessKey secret; mixed cloud faults that runs must survive;
and where each finding of the reliability audit is held by a regression test.

The tables live in files/audit/*.yml. Module and role cases run in one ansible-playbook each
(every case registers its own result), inventory cases in parallel ansible-inventory runs.
"""
import base64
import concurrent.futures
import hashlib
import json
import os
import subprocess
import sys
import time

import pytest
import yaml

from cloud_helpers import ROOT, VENV_BIN, EcsEmulator, cloud_env, load_world, run_tasks, write_world

FILES = os.path.join(ROOT, 'tests', 'integration', 'files', 'audit')
KEY_ID = 'LTAIlabkey'
KEY_SECRET = 'labsecret'
# A wrong secret some cases pass: it must not be printed either.
WRONG_SECRET = 'wrong-audit-secret-7f3a'
SECRETS = [form for secret in (KEY_SECRET, WRONG_SECRET) for form in (secret, base64.b64encode(secret.encode()).decode())]
CLOUD_MODULES = ('ecs_eni', 'ecs_eni_ip', 'ecs_eni_info', 'ecs_instance_info', 'vswitch_info', 'vpc_nat_gateway', 'vpc_eip',
                 'vpc_snat_entry', 'vpc_ipv6_internet_bandwidth', 'vpc_ipv6_address_info')


def table(name):
    with open(os.path.join(FILES, name), encoding='utf-8') as handle:
        return yaml.safe_load(handle)


def state_hash(emu):
    return hashlib.sha256(json.dumps(emu.state(), sort_keys=True).encode()).hexdigest()


def leaks(*texts):
    return [form for form in SECRETS for text in texts if form in text]


def audit_world(directory):
    """The lab world plus a NAT gateway with an EIP, so that SNAT cases get past the gateway lookup."""
    world = load_world()
    region = world['regions']['cn-hangzhou']
    region['egress'] = {'eips': [{'id': 'eip-bp1audit', 'ip': '198.51.100.7'}],
                        'nat_gateways': [{'id': 'ngw-bp1audit', 'vswitch': 'vsw-bp1a', 'eips': ['eip-bp1audit']}]}
    return write_world(directory, world)


def unreachable_kubeconfig(directory):
    """A kubeconfig of a cluster that is not there: a case that gets as far as contacting it fails otherwise."""
    path = os.path.join(str(directory), 'kubeconfig')
    with open(path, 'w', encoding='utf-8') as handle:
        yaml.safe_dump({'apiVersion': 'v1', 'kind': 'Config', 'current-context': 'audit',
                        'clusters': [{'name': 'audit', 'cluster': {'server': 'https://127.0.0.1:1'}}],
                        'contexts': [{'name': 'audit', 'context': {'cluster': 'audit', 'user': 'audit'}}],
                        'users': [{'name': 'audit', 'user': {'token': 'audit'}}]}, handle)
    return path


def module_cases():
    return [(module, case, spec) for module, cases in table('modules.yml').items() for case, spec in cases.items()]


class Batch:
    """The outcome of one batch of bad-input cases: per-case errors, the output, the cloud before/after."""

    def __init__(self, errors, output, before, after, seconds):
        self.errors, self.output, self.before, self.after, self.seconds = errors, output, before, after, seconds


@pytest.fixture(scope='module')
def module_batch(tmp_path_factory):
    """Every module case in one play at -vvvv, against one lab cloud; a case that is accepted
    leaves no error (and would change the state hash)."""
    tmp_path = tmp_path_factory.mktemp('audit-modules')
    cases = module_cases()
    tasks = []
    for module, _case, spec in cases:
        args = dict(spec['args'])
        if module in CLOUD_MODULES:
            args = dict({'access_key_id': KEY_ID, 'access_key_secret': KEY_SECRET}, **args)
        tasks.append({'underlay.alicloud.%s' % module: args, 'ignore_errors': True})
    with EcsEmulator(audit_world(tmp_path)) as emu:
        env = cloud_env(emu)
        env['K8S_AUTH_KUBECONFIG'] = unreachable_kubeconfig(tmp_path)
        before = state_hash(emu)
        started = time.monotonic()
        run = run_tasks(tmp_path, env, tasks, '-vvvv')
        seconds = time.monotonic() - started
        after = state_hash(emu)
    errors = {}
    for index, (module, case, _spec) in enumerate(cases):
        result = run.results['r%d' % index] or {}
        if result.get('failed'):
            errors[(module, case)] = str(result.get('msg', ''))
    return Batch(errors, run.output, before, after, seconds)


@pytest.mark.parametrize('module, case, spec', module_cases(), ids=['%s-%s' % (m, c) for m, c, _s in module_cases()])
def test_module_bad_input(module_batch, module, case, spec):
    assert (module, case) in module_batch.errors, '%s accepted %s' % (module, spec['args'])
    message = module_batch.errors[(module, case)]
    for name in spec['names']:
        assert str(name) in message, '%s %s: the error does not name %r: %s' % (module, case, name, message)
    assert not leaks(message)


def test_module_batch_changed_nothing_and_leaked_nothing(module_batch):
    assert module_batch.after == module_batch.before, 'a bad-input case changed the cloud'
    assert not leaks(module_batch.output), 'the AccessKey secret appears in the -vvvv output'


def role_cases():
    return [(role, case, spec) for role, cases in table('roles.yml').items() for case, spec in cases.items()]


# worker2's host facts (DESIGN.md section 4) on localhost, for the roles that work from them.
WORKER2_FACTS = {
    'alicloud_instance_id': 'i-bp1worker2', 'alicloud_hostname': 'worker2', 'alicloud_region': 'cn-hangzhou',
    'alicloud_provider_id': 'cn-hangzhou.i-bp1worker2', 'alicloud_eni_quota': {'enis': 3, 'ipv4_per_eni': 6, 'ipv6_per_eni': 6},
    'alicloud_enis': [{'id': 'eni-bp1x0', 'type': 'Primary', 'mac': '00:16:3e:00:00:05', 'device_index': 0, 'vswitch_id': 'vsw-bp1a',
                       'cidr': '172.31.192.0/20', 'gateway': '172.31.207.253', 'primary_ip': '172.31.199.195',
                       'secondary_ips': ['172.31.199.196', '172.31.199.197'], 'ipv6_cidr': None, 'ipv6_ips': []}],
    # Valid values of what the cases leave alone.
    'alicloud_ccm_cluster_cidr': '10.233.64.0/18', 'alicloud_enis_ipv4_per_eni': 4, 'spiderpool_networks_hosts': ['localhost'],
    'ipvlan_cni_preflight': False, 'underlay_preflight_hosts': ['localhost'],
}


# The error text of a rescued task: its message and, for a loop, those of the failed items.
FAILURE_TEXT = ("([ansible_failed_result.msg | default('') | string] + (ansible_failed_result.results | default([]) "
                "| selectattr('failed', 'defined') | selectattr('failed') | map(attribute='msg') | map('string') | list)) | join(' | ')")


@pytest.fixture(scope='module')
def role_batch(tmp_path_factory):
    """Every role case in one play: each include_role in a block whose rescue records the error."""
    tmp_path = tmp_path_factory.mktemp('audit-roles')
    out = tmp_path / 'errors.json'
    tasks = [{'name': 'Collect errors', 'ansible.builtin.set_fact': {'audit_errors': {}}}]
    for role, case, spec in role_cases():
        key = '%s/%s' % (role, case)
        tasks.append({'name': key, 'block': [{'ansible.builtin.include_role': {'name': 'underlay.alicloud.' + role},
                                              'vars': spec['vars']}],
                      'rescue': [{'ansible.builtin.set_fact': {'audit_errors': "{{ audit_errors | combine({'%s': %s}) }}" % (key, FAILURE_TEXT)}}]})
    tasks.append({'ansible.builtin.copy': {'dest': str(out), 'content': '{{ audit_errors | to_json }}', 'mode': '0600'}})
    playbook = tmp_path / 'roles.yml'
    playbook.write_text(yaml.safe_dump([{'name': 'Bad role variables', 'hosts': 'localhost', 'gather_facts': False,
                                         'tasks': tasks}], sort_keys=False))
    # Host variables, not play variables: the planners read them through hostvars.
    inventory = tmp_path / 'inventory.yml'
    inventory.write_text(yaml.safe_dump({'all': {'hosts': {'localhost': dict(
        WORKER2_FACTS, ansible_connection='local', ansible_python_interpreter=sys.executable)}}}))
    with EcsEmulator(audit_world(tmp_path)) as emu:
        env = cloud_env(emu)
        env['K8S_AUTH_KUBECONFIG'] = unreachable_kubeconfig(tmp_path)
        before = state_hash(emu)
        started = time.monotonic()
        proc = subprocess.run([os.path.join(VENV_BIN, 'ansible-playbook'), '-i', str(inventory), '-vvv', str(playbook)],
                              env=env, cwd=str(tmp_path), capture_output=True, text=True, timeout=600, check=False)
        seconds = time.monotonic() - started
        after = state_hash(emu)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0 and out.exists(), output[-5000:]
    errors = {tuple(key.split('/', 1)): message for key, message in json.loads(out.read_text()).items()}
    return Batch(errors, output, before, after, seconds)


@pytest.mark.parametrize('role, case, spec', role_cases(), ids=['%s-%s' % (r, c) for r, c, _s in role_cases()])
def test_role_bad_variables(role_batch, role, case, spec):
    assert (role, case) in role_batch.errors, 'role %s accepted %s' % (role, spec['vars'])
    message = role_batch.errors[(role, case)]
    for name in spec['names']:
        assert str(name) in message, 'role %s %s: the error does not name %r: %s' % (role, case, name, message)


def test_role_batch_changed_nothing_and_leaked_nothing(role_batch):
    assert role_batch.after == role_batch.before, 'a bad role variable changed the cloud'
    assert not leaks(role_batch.output), 'the AccessKey secret appears in the -vvv output'


INVENTORY_CASES = table('inventory.yml')


@pytest.fixture(scope='module')
def inventory_runs(tmp_path_factory):
    """ansible-inventory --list at -vvvv on every bad configuration, a few at a time, against one lab cloud."""
    tmp_path = tmp_path_factory.mktemp('audit-inventory')
    with open(os.path.join(ROOT, 'inventories', 'lab', 'lab.alicloud_ecs.yml'), encoding='utf-8') as handle:
        base = yaml.safe_load(handle)

    def run(case, env):
        directory = tmp_path / case
        directory.mkdir()
        config = directory / 'audit.alicloud_ecs.yml'
        config.write_text(yaml.safe_dump(dict(base, **INVENTORY_CASES[case]['set'])))
        return subprocess.run([os.path.join(VENV_BIN, 'ansible-inventory'), '-i', str(config), '--list', '-vvvv'], env=env,
                              cwd=str(directory), capture_output=True, text=True, timeout=300, check=False)

    with EcsEmulator(audit_world(tmp_path)) as emu:
        env = cloud_env(emu)
        before = state_hash(emu)
        started = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
            procs = dict(zip(INVENTORY_CASES, pool.map(lambda case: run(case, env), INVENTORY_CASES)))
        seconds = time.monotonic() - started
        after = state_hash(emu)
    errors = {case: proc.stderr for case, proc in procs.items() if proc.returncode != 0}
    output = ''.join(proc.stdout + proc.stderr for proc in procs.values())
    return Batch(errors, output, before, after, seconds)


@pytest.mark.parametrize('case', sorted(INVENTORY_CASES))
def test_inventory_bad_configuration(inventory_runs, case):
    assert case in inventory_runs.errors, 'the inventory accepted %s' % INVENTORY_CASES[case]['set']
    message = inventory_runs.errors[case]
    for name in INVENTORY_CASES[case]['names']:
        assert str(name) in message, '%s: the error does not name %r: %s' % (case, name, message[-3000:])


def test_inventory_runs_changed_nothing_and_leaked_nothing(inventory_runs):
    assert inventory_runs.after == inventory_runs.before
    assert not leaks(inventory_runs.output), 'the AccessKey secret appears in the -vvvv output'


WRITES = ('CreateNetworkInterface', 'AttachNetworkInterface', 'AssignPrivateIpAddresses', 'UnassignPrivateIpAddresses',
          'DetachNetworkInterface', 'DeleteNetworkInterface')
# Fault profiles (docs/emulator.md), seeded: each must be survived by a whole ENI lifecycle. Limits keep a
# write's consecutive faults within the modules' retry budget (more is a failure the run must report).
FAULT_PROFILES = {
    'throttling': {'throttle_rate': 0.3},
    'service-unavailable': {'unavailable_rate': 0.2},
    'dropped-connections': {'drop_rate': 0.2},
    'lost-answers-to-writes': {'lost_answer_rate': dict.fromkeys(WRITES, 0.5), 'lost_answer_limit': dict.fromkeys(WRITES, 2)},
    'read-timeouts': {'read_timeout_rate': {'AssignPrivateIpAddresses': 1.0, 'DescribeNetworkInterfaces': 0.1},
                      'read_timeout_limit': 2, 'read_timeout_seconds': 2},
    'lingering-attach-detach': {'attach_steps': 3, 'attach_seconds': 2},
    'everything-at-once': {'throttle_rate': 0.1, 'unavailable_rate': 0.1, 'drop_rate': 0.1,
                           'lost_answer_rate': dict.fromkeys(WRITES, 0.2), 'lost_answer_limit': dict.fromkeys(WRITES, 2),
                           'attach_steps': 2},
}
LIFECYCLE_ENI = {'name': 'audit-fault', 'instance_id': 'i-bp1worker2', 'vswitch_id': 'vsw-bp1b', 'security_groups': ['sg-bp1lab']}


def lifecycle():
    """Create and attach an ENI, give it 3 addresses, purge to 1, delete it: the cloud ends as it began."""
    common = {'access_key_id': KEY_ID, 'access_key_secret': KEY_SECRET, 'timeout': 1, 'wait_timeout': 60}
    return [
        {'underlay.alicloud.ecs_eni': dict(LIFECYCLE_ENI, **common)},
        {'underlay.alicloud.ecs_eni_ip': dict(common, eni_id='{{ r0.network_interface.id }}', secondary_private_ip_address_count=3)},
        {'underlay.alicloud.ecs_eni_ip': dict(common, eni_id='{{ r0.network_interface.id }}', secondary_private_ip_address_count=1,
                                              purge_secondary_private_ip_addresses=True)},
        {'underlay.alicloud.ecs_eni': dict(common, eni_id='{{ r0.network_interface.id }}', state='absent')},
    ]


@pytest.mark.parametrize('profile', sorted(FAULT_PROFILES))
def test_faults_are_survived(profile, tmp_path):
    """Under each fault profile the lifecycle succeeds, reports every write as a change, and leaves
    the cloud exactly as it was: no orphan ENI, no stray or double-assigned address."""
    with EcsEmulator(audit_world(tmp_path), faults=dict(FAULT_PROFILES[profile], seed=19)) as emu:
        before = state_hash(emu)
        run = run_tasks(tmp_path, cloud_env(emu), lifecycle(), '-vvv')
        injected = sum(emu.stats_snapshot()['faults'].values())
        assert state_hash(emu) == before, 'the lifecycle left something behind under %s' % profile
    assert [run.results['r%d' % i]['changed'] for i in range(4)] == [True] * 4
    assert len(run.results['r1']['network_interface']['secondary_ips']) == 3
    assert not leaks(run.output)
    if profile != 'lingering-attach-detach':   # in-between states are not counted as injected faults
        assert injected > 0, 'no fault was injected: the profile tests nothing'


# Each finding of the reliability audit and the tests that hold it (docs/reliability.md).
FINDINGS = {
    '1 ClientToken replayed forever': ['test_reliability_eni.py::test_scaling_3_0_3_gets_fresh_addresses_every_run',
                                       'test_reliability_eni.py::test_create_delete_create_makes_a_new_eni'],
    '2 typos select every instance': ['test_inventory_ecs.py::test_typo_fails_before_any_call',
                                      'test_info_modules.py::test_misspelt_filter_keys_fail_naming_the_nearest_parameter'],
    '3 ENIs in between states': ['test_reliability_eni.py::test_an_eni_still_attaching_fails_every_run_until_it_settles',
                                 'test_reliability_eni.py::test_absent_waits_for_a_detaching_eni',
                                 'test_reliability_eni.py::test_two_runs_creating_the_same_eni_at_once_make_one',
                                 'test_audit.py::test_faults_are_survived'],
    '4 orphan ENI': ['test_reliability_eni.py::test_vswitch_of_another_zone_fails_before_creating',
                     'test_reliability_eni.py::test_unknown_security_group_fails_before_creating',
                     'test_reliability_eni.py::test_a_failed_attach_deletes_the_eni_it_created'],
    '5 lost answers to writes that happened': ['test_reliability_eni.py::test_lost_answers_to_every_eni_write_are_survived',
                                               'test_reliability_eni.py::test_dropped_connections_get_more_than_the_connect_retries',
                                               'test_reliability_eni.py::test_read_timeout_is_retried_and_worded_as_no_answer',
                                               'test_audit.py::test_faults_are_survived'],
    '6 concurrent count-based runs': ['test_reliability_eni.py::test_concurrent_count_runs_report_the_over_allocation'],
    '7 whole-run checks come late': ['test_site.py::test_whole_run_input_is_checked_before_any_change',
                                     'test_site.py::test_stage_failed_on_a_node_leaves_its_pools_alone',
                                     'test_inventory_ecs.py::test_failing_source_fails_loudly_with_only_its_own_error'],
}


@pytest.mark.parametrize('finding', sorted(FINDINGS))
def test_every_finding_has_a_regression_test(finding):
    """The map above names tests that exist, so that it cannot silently go stale."""
    for node in FINDINGS[finding]:
        filename, name = node.split('::')
        with open(os.path.join(ROOT, 'tests', 'integration', filename), encoding='utf-8') as handle:
            assert '\ndef %s(' % name in handle.read(), '%s: %s does not exist' % (finding, node)
