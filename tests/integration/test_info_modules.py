"""Integration tests of the info modules: real ansible-playbook, real Alibaba SDK, the ECS/VPC
emulator as the cloud.

Expected values are computed here from the emulator's own state dump (never with the collection's
code), so a normalisation bug cannot agree with itself.
"""

import ipaddress
import json
import math
import os
import socket
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import yaml

from ansible_collections.underlay.alicloud.plugins.module_utils import client, ecs, errors

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, 'tests', 'emulator'))
from ecs_emulator import EcsEmulator  # noqa: E402  pylint: disable=wrong-import-position
from worldgen import generate  # noqa: E402  pylint: disable=wrong-import-position

import cloud_helpers  # noqa: E402  pylint: disable=wrong-import-position
from cloud_helpers import base_env  # noqa: E402  pylint: disable=wrong-import-position

PLAYBOOK = os.path.join(ROOT, 'tests', 'integration', 'playbooks', 'info', 'query.yml')
LAB_WORLD = os.path.join(ROOT, 'inventories', 'lab', 'world.yml')
VENV_BIN = os.path.join(ROOT, '.venv', 'bin')
REGION = 'cn-hangzhou'
# Distinctive secrets, so that any leak is found by a plain substring search.
KEY_ID, SECRET = 'LTAIinfotests', 'info-S3cret-5d41402abc4b2a76'
STS_ID, STS_SECRET, STS_TOKEN = 'STS.infotests', 'sts-S3cret-7e2b', 'sts-Tok3n-9f86d081884c7d65'


# -- worlds --------------------------------------------------------------------------------

def with_credentials(world):
    world = dict(world)
    world['credentials'] = [{'id': KEY_ID, 'secret': SECRET},
                            {'id': STS_ID, 'secret': STS_SECRET, 'security_token': STS_TOKEN}]
    return world


def lab_world():
    with open(LAB_WORLD, encoding='utf-8') as handle:
        return with_credentials(yaml.safe_load(handle))


def large_world():
    """400 instances x 3 ENIs in one region; /28 vSwitches so that there are hundreds of them."""
    world = generate(instances=400, enis=3, regions=1, seed=3, secondary_ips=2, ipv6=2, stopped_rate=0.1, vswitch_prefix=28)
    region = next(iter(world['regions'].values()))
    world['regions'] = {REGION: region}
    return with_credentials(world)


# -- running playbooks -----------------------------------------------------------------------

def cloud_env(emu, key_id=KEY_ID, secret=SECRET, token=None):
    return cloud_helpers.cloud_env(emu, key_id=key_id, secret=secret, region=REGION, token=token)


class Run:
    """One finished ansible-playbook run: exit code, stdout+stderr, the written results, wall time."""

    def __init__(self, proc, results, seconds):
        self.rc = proc.returncode
        self.output = proc.stdout + proc.stderr
        self.results = results
        self.seconds = seconds

    def expect(self, rc):
        if self.rc != rc:
            raise AssertionError('ansible-playbook exited %d, expected %d:\n%s' % (self.rc, rc, self.output))
        return self

    def failure(self):
        """The result of the failed task (the JSON the default callback prints)."""
        for line in self.output.splitlines():
            if 'FAILED! => ' in line:
                return dict(json.loads(line.split('FAILED! => ', 1)[1]), failed=True)
        raise AssertionError('no failed task in output:\n' + self.output)


def play(workdir, env, modules=('ecs_instance_info', 'ecs_eni_info', 'vswitch_info'), args=(), **extra):
    """Run the query playbook; variables (secrets included) go through a file, as a vault would."""
    tag = uuid.uuid4().hex
    out, varsfile = os.path.join(workdir, 'result-%s.json' % tag), os.path.join(workdir, 'vars-%s.json' % tag)
    extra.update(info_modules=list(modules), info_out=out, ansible_python_interpreter=sys.executable)
    with open(varsfile, 'w', encoding='utf-8') as handle:
        json.dump(extra, handle)
    cmd = [os.path.join(VENV_BIN, 'ansible-playbook'), '-i', 'localhost,', '-c', 'local', '-e', '@' + varsfile, *args, PLAYBOOK]
    started = time.monotonic()
    proc = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    results = None
    if os.path.exists(out):
        with open(out, encoding='utf-8') as handle:
            results = json.load(handle)
    return Run(proc, results, time.monotonic() - started)


def closed_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


REFUSED_ENDPOINT = 'http://127.0.0.1:%d' % closed_port()
UNRESOLVABLE_ENDPOINT = 'http://ecs.endpoint.invalid:8080'
LARGE_MODULES = ('ecs_instance_info', 'ecs_eni_info', 'vswitch_info')
SHORT = {'instance': 'ecs_instance_info', 'eni': 'ecs_eni_info', 'vswitch': 'vswitch_info'}


@pytest.fixture(scope='module')
def cloud():
    """Emulators by role: lab (shared), quiet (must see no call), one large world per module
    (per-module call counts) and a large world answering 30% Throttling.User + 5% 503."""
    emulators = {'lab': EcsEmulator(lab_world()), 'quiet': EcsEmulator(lab_world()),
                 'faulty': EcsEmulator(large_world(), throttle_rate=0.3, unavailable_rate=0.05, seed=7)}
    for module in LARGE_MODULES:
        emulators['large-' + module] = EcsEmulator(large_world())
    for emu in emulators.values():
        emu.start()
    yield emulators
    for emu in emulators.values():
        emu.stop()


@pytest.fixture(scope='module')
def runs(cloud, tmp_path_factory):
    """Every playbook run of this file, started at once (4 at a time) so the file stays fast;
    each test waits only for the runs it inspects."""
    workdir = str(tmp_path_factory.mktemp('info'))
    lab = cloud['lab']
    no_key_env = cloud_env(lab, key_id=None)
    no_key_env['HOME'] = workdir  # no ~/.aliyun or ~/.alibabacloud files either
    sts_env = cloud_env(lab, key_id=STS_ID, secret=STS_SECRET, token=STS_TOKEN)
    option_creds = {'info_access_key_id': KEY_ID, 'info_access_key_secret': SECRET}
    keep_going = {'info_ignore_errors': True}
    scenarios = {
        'lab': (cloud_env(lab), {}),
        # filters, unknown ids among known ones, and check mode
        'lab-filtered-check': (cloud_env(lab), {
            'args': ['--check'], 'info_status': 'Running', 'info_tags': {'cluster': 'lab'},
            'info_instance_ids': ['i-bp1master', 'i-bp1worker', 'i-bp1stopped', 'i-bp1nosuch'],
            'info_eni_ids': ['eni-bp1w1', 'eni-bp1w0', 'eni-bp1nosuch'], 'info_eni_type': 'Secondary',
            'info_vswitch_ids': ['vsw-bp1b', 'vsw-bp1a', 'vsw-bp1nosuch']}),
        # each module on its own large world, so that the emulators count calls per module
        'large': (base_env(), dict(info_region=REGION, info_access_key_id=KEY_ID, info_access_key_secret=SECRET,
                                   **{'info_%s_endpoint' % short: cloud['large-' + module].url for short, module in SHORT.items()})),
        'faulty': (cloud_env(cloud['faulty']), {}),
        # no credentials anywhere for instances; a wrong secret for ENIs; an unknown key for vSwitches
        'auth': (no_key_env, dict(keep_going, info_eni_access_key_id=KEY_ID, info_eni_access_key_secret='not-the-' + SECRET[8:],
                                  info_vswitch_access_key_id='LTAInobody', info_vswitch_access_key_secret=SECRET)),
        'malformed': (cloud_env(cloud['quiet']), dict(keep_going, info_instance_region='Hangzhou',
                                                      info_eni_ids=['eni-bp1m0', 'eni-'], info_vswitch_max_retries='lots')),
        # misspelt filter keys: the API would ignore them and list everything
        'misspelt': (cloud_env(cloud['quiet']), dict(keep_going, info_instance_filters={'Statuss': 'Running'},
                                                     info_eni_filters={'Tags': [{'Key': 'cluster', 'Value': 'lab'}]},
                                                     info_vswitch_filters={'EnabledIpv6': True})),
        'unreachable': (cloud_env(lab), dict(keep_going, modules=['ecs_instance_info', 'ecs_eni_info'], info_timeout=3,
                                             info_ecs_endpoint=REFUSED_ENDPOINT, info_eni_ecs_endpoint=UNRESOLVABLE_ENDPOINT)),
        # -vvvv: instances and vSwitches succeed, the ENI query fails (unknown region)
        'vvvv-options': (no_key_env, dict(keep_going, **option_creds, args=['-vvvv'], info_eni_region='eu-nowhere-1')),
        'vvvv-sts': (sts_env, dict(keep_going, args=['-vvvv'], info_eni_region='eu-nowhere-1')),
    }
    pool = ThreadPoolExecutor(4)
    futures = {}
    # The slowest first: the throttled world and the large ones.
    for name in sorted(scenarios, key=lambda n: (n not in ('faulty', 'large'), n)):
        env, options = scenarios[name]
        options = dict(options)
        futures[name] = pool.submit(play, workdir, env, options.pop('modules', LARGE_MODULES), options.pop('args', ()), **options)
    yield futures
    pool.shutdown(wait=True)


# -- expected values from the emulator's state -----------------------------------------------

def ip_sorted(values):
    return sorted(values, key=ipaddress.ip_address)


def gateway(cidr):
    return str(ipaddress.ip_network(cidr)[-3])


def vswitch_index(region):
    return {v['id']: dict(v, vpc=vpc['id']) for vpc in region['vpcs'] for v in vpc['vswitches']}


def expected_eni(raw, index, vsw):
    v = vsw[raw['vswitch']]
    return {'id': raw['id'], 'type': 'Primary' if index == 0 else 'Secondary', 'mac': raw['mac'].lower(),
            'device_index': index, 'vswitch_id': v['id'], 'cidr': v['cidr'], 'gateway': gateway(v['cidr']),
            'primary_ip': raw['primary_ip'], 'secondary_ips': ip_sorted(raw.get('secondary_ips', [])),
            'ipv6_cidr': v.get('ipv6_cidr') or None, 'ipv6_ips': ip_sorted(raw.get('ipv6_ips', []))}


def expected_hosts(state):
    region = state['regions'][REGION]
    vsw = vswitch_index(region)
    hosts = {}
    for inst in region['instances']:
        quota = region['instance_types'][inst['type']]
        enis = [expected_eni(raw, index, vsw) for index, raw in enumerate(inst['enis'])]
        hosts[inst['id']] = {
            'alicloud_instance_id': inst['id'], 'alicloud_region': REGION, 'alicloud_zone': inst['zone'],
            'alicloud_instance_type': inst['type'], 'alicloud_provider_id': '%s.%s' % (REGION, inst['id']),
            'alicloud_vpc_id': vsw[inst['enis'][0]['vswitch']]['vpc'], 'alicloud_hostname': inst['hostname'],
            'alicloud_tags': inst.get('tags', {}),
            'alicloud_eni_quota': {'enis': quota['eni_quantity'], 'ipv4_per_eni': quota['eni_private_ip_quantity'],
                                   'ipv6_per_eni': quota['eni_ipv6_quantity']},
            'alicloud_enis': enis,
            'alicloud_instance_name': inst['name'], 'alicloud_status': inst['status'],
            'alicloud_vswitch_id': inst['enis'][0]['vswitch'], 'alicloud_private_ip': inst['enis'][0]['primary_ip'],
        }
    return hosts


def expected_enis(state):
    region = state['regions'][REGION]
    vsw = vswitch_index(region)
    records = {}
    for inst in region['instances']:
        for index, raw in enumerate(inst['enis']):
            records[raw['id']] = dict(expected_eni(raw, index, vsw), instance_id=inst['id'], status='InUse')
    for raw in region.get('enis', []):
        records[raw['id']] = dict(expected_eni(raw, None, vsw), type='Secondary', device_index=None, instance_id=None,
                                  status=raw.get('status', 'Available'))
    return records


def expected_vswitches(state):
    region = state['regions'][REGION]
    return {v['id']: {'id': v['id'], 'name': v.get('name'), 'vpc_id': v['vpc'], 'zone_id': v['zone'], 'cidr': v['cidr'],
                      'gateway': gateway(v['cidr']), 'ipv6_cidr': v.get('ipv6_cidr') or None,
                      'usable_ip_count': ipaddress.ip_network(v['cidr']).num_addresses - 4}
            for v in vswitch_index(region).values()}


def used_addresses(state):
    """IPv4 addresses held per vSwitch (to check AvailableIpAddressCount)."""
    region = state['regions'][REGION]
    used = {}
    enis = [e for i in region['instances'] for e in i['enis']] + region.get('enis', [])
    for raw in enis:
        used[raw['vswitch']] = used.get(raw['vswitch'], 0) + 1 + len(raw.get('secondary_ips', []))
    return used


def check_instances(results, state, only=None):
    expected = expected_hosts(state)
    got = results['instances']['instances']
    assert [h['alicloud_instance_id'] for h in got] == sorted(only if only is not None else expected)
    for host in got:
        assert host == expected[host['alicloud_instance_id']]


def check_enis(results, state):
    expected = expected_enis(state)
    got = results['enis']['network_interfaces']
    assert sorted(r['id'] for r in got) == sorted(expected)
    for record in got:
        want = expected[record['id']]
        assert {k: record[k] for k in want} == want


def check_vswitches(results, state):
    expected = expected_vswitches(state)
    used = used_addresses(state)
    got = results['vswitches']['vswitches']
    assert [v['id'] for v in got] == sorted(expected)
    for record in got:
        want = expected[record['id']]
        assert {k: record[k] for k in want} == want
        assert record['available_ip_count'] == want['usable_ip_count'] - used.get(record['id'], 0)
        assert record['status'] == 'Available'


# -- the lab world ---------------------------------------------------------------------------

def test_lab_world_every_module_exact(cloud, runs):
    run = runs['lab'].result().expect(0)
    state = cloud['lab'].state()
    check_instances(run.results, state)
    check_enis(run.results, state)
    check_vswitches(run.results, state)
    assert not any(run.results[k]['changed'] for k in ('instances', 'enis', 'vswitches'))
    # The contract example of DESIGN.md, literally.
    master = next(h for h in run.results['instances']['instances'] if h['alicloud_instance_id'] == 'i-bp1master')
    assert master['alicloud_enis'][0]['gateway'] == '172.31.207.253'
    assert master['alicloud_eni_quota'] == {'enis': 3, 'ipv4_per_eni': 6, 'ipv6_per_eni': 6}


def test_lab_filters_unknown_ids_and_check_mode(runs):
    run = runs['lab-filtered-check'].result().expect(0)
    assert [h['alicloud_instance_id'] for h in run.results['instances']['instances']] == ['i-bp1master', 'i-bp1worker']
    assert [e['id'] for e in run.results['enis']['network_interfaces']] == ['eni-bp1w1']
    assert [v['id'] for v in run.results['vswitches']['vswitches']] == ['vsw-bp1a', 'vsw-bp1b']
    for missing in ('instance_ids: not found in region cn-hangzhou (or excluded by the other filters): i-bp1nosuch, i-bp1stopped',
                    'eni_ids: not found in region cn-hangzhou (or excluded by the other filters): eni-bp1nosuch, eni-bp1w0',
                    'vswitch_ids: not found in region cn-hangzhou (or excluded by the other filters): vsw-bp1nosuch'):
        assert missing in run.output


# -- a large world: every page, call counts, throttling --------------------------------------

def test_large_world_every_page_with_minimum_calls(cloud, runs, record_property):
    state = cloud['large-ecs_instance_info'].state()
    region = state['regions'][REGION]
    n_instances, n_enis = len(region['instances']), sum(len(i['enis']) for i in region['instances'])
    n_vswitches, n_types = len(vswitch_index(region)), len(region['instance_types'])
    assert (n_instances, n_enis) == (400, 1200) and n_vswitches > 150
    floors = {'DescribeInstances': math.ceil(n_instances / 100), 'DescribeNetworkInterfaces': math.ceil(n_enis / 500),
              'DescribeVSwitches': math.ceil(n_vswitches / 50), 'DescribeInstanceTypes': math.ceil(n_types / 10)}
    run = runs['large'].result().expect(0)
    check_instances(run.results, state)
    check_enis(run.results, state)
    check_vswitches(run.results, state)
    counts = {module: cloud['large-' + module].request_counts() for module in LARGE_MODULES}
    record_property('api_calls', json.dumps(counts))
    record_property('page_minimum', json.dumps(floors))
    print('API calls per module:', json.dumps(counts), 'page-size minimum:', json.dumps(floors))
    assert counts['ecs_instance_info'] == floors
    assert counts['ecs_eni_info'] == {k: floors[k] for k in ('DescribeNetworkInterfaces', 'DescribeVSwitches')}
    assert counts['vswitch_info'] == {'DescribeVSwitches': floors['DescribeVSwitches']}


def test_large_world_complete_under_throttling_and_503(cloud, runs):
    run = runs['faulty'].result().expect(0)
    emu = cloud['faulty']
    state = emu.state()
    check_instances(run.results, state)
    check_enis(run.results, state)
    check_vswitches(run.results, state)
    stats = emu.stats_snapshot()
    assert stats['errors'].get('Throttling.User', 0) > 5 and stats['errors'].get('ServiceUnavailable', 0) > 0
    print('throttled run: %.1f s, emulator: %s' % (run.seconds, json.dumps(stats)))


# -- failures: one clear line, bounded time, no secrets --------------------------------------

def clean_failure(result, *fragments):
    """A failed module result: one-line msg containing every fragment."""
    assert result.get('failed'), result
    msg = result['msg']
    assert '\n' not in msg, msg
    for fragment in fragments:
        assert fragment in msg, msg
    return result


def no_secrets(run):
    for secret in (SECRET, STS_SECRET, STS_TOKEN):
        assert run.output.count(secret) == 0


def test_missing_wrong_and_unknown_credentials(runs):
    run = runs['auth'].result().expect(0)
    clean_failure(run.results['instances'], 'DescribeInstances failed: InvalidCredentials: no usable credentials')
    failure = clean_failure(run.results['enis'], 'DescribeNetworkInterfaces failed: SignatureDoesNotMatch:', '(RequestId: ')
    assert failure['error']['code'] == 'SignatureDoesNotMatch'
    clean_failure(run.results['vswitches'], 'DescribeVSwitches failed: InvalidAccessKeyId.NotFound:', '(RequestId: ')
    assert 'not-the-' not in run.output
    no_secrets(run)


def test_malformed_input_makes_no_api_call(cloud, runs):
    run = runs['malformed'].result().expect(0)
    clean_failure(run.results['instances'], "region 'Hangzhou' is not a region id like cn-hangzhou")
    clean_failure(run.results['enis'], "eni_ids: 'eni-' is not a valid eni id (expected eni- followed by letters and digits)")
    clean_failure(run.results['vswitches'], 'max_retries', 'lots')
    assert cloud['quiet'].stats_snapshot()['total'] == 0


def test_misspelt_filter_keys_fail_naming_the_nearest_parameter(cloud, runs):
    run = runs['misspelt'].result().expect(0)
    clean_failure(run.results['instances'], "filters: unknown DescribeInstances parameter 'Statuss' (did you mean 'Status'?)")
    clean_failure(run.results['enis'], "filters: unknown DescribeNetworkInterfaces parameter 'Tags' (did you mean 'Tag'?)")
    clean_failure(run.results['vswitches'], "filters: unknown DescribeVSwitches parameter 'EnabledIpv6' (did you mean 'EnableIpv6'?)")
    assert cloud['quiet'].stats_snapshot()['total'] == 0


def test_unreachable_endpoints_fail_fast_and_clearly(runs):
    run = runs['unreachable'].result().expect(0)
    clean_failure(run.results['instances'], 'DescribeInstances failed: ConnectionError: cannot connect to %s: connection refused'
                  % REFUSED_ENDPOINT.split('://', 1)[1])
    clean_failure(run.results['enis'], 'DescribeNetworkInterfaces failed: ConnectionError: cannot connect to %s: host name not resolvable'
                  % UNRESOLVABLE_ENDPOINT.split('://', 1)[1])
    assert run.seconds < 120  # the whole playbook on a loaded machine; see the in-process timing below


@pytest.mark.parametrize('endpoint', [REFUSED_ENDPOINT, UNRESOLVABLE_ENDPOINT], ids=['refused', 'unresolvable'])
def test_unreachable_endpoint_time_is_bounded(endpoint):
    """The same failure in-process through the real SDK: 3 connection attempts, then the error."""
    clients = client.AlicloudClients({'region': REGION, 'access_key_id': KEY_ID, 'access_key_secret': SECRET,
                                      'ecs_endpoint': endpoint, 'timeout': 3})
    started = time.monotonic()
    with pytest.raises(errors.AlicloudApiError, match='ConnectionError: cannot connect to'):
        ecs.describe_instances(clients, REGION)
    assert time.monotonic() - started < 10
    assert clients.retry.retries == 2


@pytest.mark.parametrize('how', ['options', 'sts'])
def test_secrets_never_printed_even_with_vvvv(cloud, runs, how):
    run = runs['vvvv-' + how].result().expect(0)
    assert 'ESTABLISH LOCAL CONNECTION' in run.output  # really verbose
    assert len(run.results['instances']['instances']) == len(cloud['lab'].state()['regions'][REGION]['instances'])
    assert run.results['vswitches']['vswitches']
    clean_failure(run.results['enis'], 'DescribeNetworkInterfaces failed: InvalidRegionId.NotFound:', 'eu-nowhere-1')
    no_secrets(run)


@pytest.mark.parametrize('module', LARGE_MODULES)
def test_sdk_debug_output_never_shows_the_token(cloud, tmp_path, module):
    """DEBUG=sdk makes the SDK print every request header, the STS token included: the module
    process (run directly, stderr captured) must still not show it."""
    args = tmp_path / 'args.json'
    args.write_text(json.dumps({'ANSIBLE_MODULE_ARGS': {'region': REGION}}))
    env = cloud_env(cloud['lab'], key_id=STS_ID, secret=STS_SECRET, token=STS_TOKEN)
    env.update(DEBUG='sdk', PYTHONPATH=os.path.join(ROOT, '.collections'))
    proc = subprocess.run([sys.executable, '-m', 'ansible_collections.underlay.alicloud.plugins.modules.' + module, str(args)],
                          env=env, cwd=str(tmp_path), capture_output=True, text=True, timeout=120, check=False)
    result = json.loads(proc.stdout)
    assert proc.returncode == 0 and not result.get('failed'), proc.stdout + proc.stderr
    for secret in (STS_SECRET, STS_TOKEN):
        assert (proc.stdout + proc.stderr).count(secret) == 0
