"""Integration tests of the underlay.alicloud.ecs inventory: real ansible-inventory, real Alibaba SDK,
the ECS/VPC emulator as the cloud.

Golden files: every config in files/inventory/*.alicloud_ecs.yml (and the lab config) is run with
`ansible-inventory --list` against its world and compared with files/inventory/golden/<name>.json.
After an intended change, regenerate them with `UPDATE_GOLDEN=1 pytest tests/integration/test_inventory_ecs.py`
and review the diff.
"""

import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, 'tests', 'emulator'))
from ecs_emulator import EcsEmulator  # noqa: E402  pylint: disable=wrong-import-position

FILES = os.path.join(ROOT, 'tests', 'integration', 'files', 'inventory')
GOLDEN = os.path.join(FILES, 'golden')
LAB_WORLD = os.path.join(ROOT, 'inventories', 'lab', 'world.yml')
LAB_CONFIG = os.path.join(ROOT, 'inventories', 'lab', 'lab.alicloud_ecs.yml')
DS_WORLD = os.path.join(FILES, 'worlds', 'dualstack.yml')
LAB_KEY = ('LTAIlabkey', 'labsecret')
DS_KEY = ('LTAIinvkey', 'inventory-test-secret-7c1d')
VENV_BIN = os.path.join(ROOT, '.venv', 'bin')


def base_env():
    env = {k: v for k, v in os.environ.items() if not k.startswith(('ALIBABA_CLOUD_', 'ANSIBLE_'))}
    env.update({
        'PATH': '%s:%s' % (VENV_BIN, env.get('PATH', '')),
        'ANSIBLE_CONFIG': os.path.join(ROOT, 'ansible.cfg'),
        'ANSIBLE_COLLECTIONS_PATH': os.path.join(ROOT, '.collections'),
        'ANSIBLE_NOCOLOR': '1',
        # A broken source must fail the command, not leave an empty inventory behind a warning.
        'ANSIBLE_INVENTORY_UNPARSED_FAILED': 'true',
        'PYTHONDONTWRITEBYTECODE': '1',
    })
    return env


def cloud_env(url, key=LAB_KEY):
    env = base_env()
    env.update({'ALIBABA_CLOUD_ECS_ENDPOINT': url, 'ALIBABA_CLOUD_VPC_ENDPOINT': url,
                'ALIBABA_CLOUD_ACCESS_KEY_ID': key[0], 'ALIBABA_CLOUD_ACCESS_KEY_SECRET': key[1]})
    return env


def ansible_inventory(config, env, *args, check=True):
    proc = subprocess.run([os.path.join(VENV_BIN, 'ansible-inventory'), '-i', str(config), *args],
                          env=env, cwd=ROOT, capture_output=True, text=True, timeout=180, check=False)
    if check and proc.returncode != 0:
        raise AssertionError('ansible-inventory failed (%d):\n%s\n%s' % (proc.returncode, proc.stdout, proc.stderr))
    return proc


def plain(value):
    """ansible-inventory marks strings from the cloud (untrusted, never templated) as {"__ansible_unsafe": s}."""
    if isinstance(value, dict):
        if set(value) == {'__ansible_unsafe'}:
            return value['__ansible_unsafe']
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def inventory_list(config, env, *args):
    return plain(json.loads(ansible_inventory(config, env, '--list', *args).stdout))


def write_config(tmp_path, name, **options):
    path = tmp_path / ('%s.alicloud_ecs.yml' % name)
    path.write_text(yaml.safe_dump(dict({'plugin': 'underlay.alicloud.ecs'}, **options), sort_keys=False))
    return path


def lab_config(tmp_path, name='lab', **overrides):
    with open(LAB_CONFIG, encoding='utf-8') as handle:
        options = yaml.safe_load(handle)
    options.update(overrides)
    return write_config(tmp_path, name, **{k: v for k, v in options.items() if k != 'plugin'})


def hosts_of(result, group):
    return sorted(result.get(group, {}).get('hosts', []))


@pytest.fixture(scope='module')
def lab():
    with EcsEmulator(LAB_WORLD) as emu:
        yield emu


@pytest.fixture(scope='module')
def dualstack():
    with EcsEmulator(DS_WORLD) as emu:
        yield emu


# --- golden files ---------------------------------------------------------------------------------------------

GOLDEN_CASES = [
    # name, config, world fixture, key
    ('lab', LAB_CONFIG, 'lab', LAB_KEY),
    ('filtered', os.path.join(FILES, 'filtered.alicloud_ecs.yml'), 'lab', LAB_KEY),
    ('dualstack', os.path.join(FILES, 'dualstack.alicloud_ecs.yml'), 'dualstack', DS_KEY),
]


def check_golden(name, result):
    path = os.path.join(GOLDEN, '%s.json' % name)
    if os.environ.get('UPDATE_GOLDEN'):
        os.makedirs(GOLDEN, exist_ok=True)
        with open(path, 'w', encoding='utf-8') as handle:
            json.dump(result, handle, indent=2, sort_keys=True)
            handle.write('\n')
    with open(path, encoding='utf-8') as handle:
        assert result == json.load(handle), 'inventory differs from %s' % path


@pytest.mark.parametrize('name, config, world, key', GOLDEN_CASES, ids=[c[0] for c in GOLDEN_CASES])
def test_golden_inventory(request, tmp_path, name, config, world, key):
    emu = request.getfixturevalue(world)
    # A copy, so that group_vars/ next to the real file (the playbooks' settings) stay out of the comparison.
    copied = tmp_path / os.path.basename(config)
    shutil.copyfile(config, copied)
    check_golden(name, inventory_list(copied, cloud_env(emu.url, key)))


def test_lab_inventory_is_the_running_lab_cluster_with_the_contract(lab):
    result = inventory_list(LAB_CONFIG, cloud_env(lab.url))
    # The real lab file, with the group_vars next to it: the facts are still the plugin's.
    assert hosts_of(result, 'k8s_cluster') == ['master', 'worker', 'worker2']
    assert hosts_of(result, 'kube_control_plane') == ['master']
    assert hosts_of(result, 'kube_node') == ['worker', 'worker2']
    # worker3 is stopped, prod-web-1 belongs to another cluster.
    assert sorted(result['_meta']['hostvars']) == ['master', 'worker', 'worker2']
    master = result['_meta']['hostvars']['master']
    assert master['ansible_host'] == '172.31.199.183'
    assert master['alicloud_provider_id'] == 'cn-hangzhou.i-bp1master'
    assert master['alicloud_eni_quota'] == {'enis': 3, 'ipv4_per_eni': 6, 'ipv6_per_eni': 6}
    assert [e['id'] for e in master['alicloud_enis']] == ['eni-bp1m0', 'eni-bp1m1']
    assert master['alicloud_enis'][1]['gateway'] == '192.168.0.253'
    assert master['alicloud_enis'][1]['ipv6_ips'] == ['2408:4005:3a1:a400::156', '2408:4005:3a1:a400::157']


def test_cloud_strings_are_marked_unsafe(dualstack, tmp_path):
    """Tag values come from whoever can tag instances: they must never be evaluated as templates."""
    config = write_config(tmp_path, 'unsafe', regions=['cn-shanghai'], hostnames=['instance_id'])
    raw = json.loads(ansible_inventory(config, cloud_env(dualstack.url, DS_KEY), '--list').stdout)
    host = raw['_meta']['hostvars']['i-uf6other']
    assert host['alicloud_tags']['Name'] == {'__ansible_unsafe': 'app'}
    assert host['alicloud_enis'][0]['primary_ip'] == {'__ansible_unsafe': '172.20.0.50'}


def test_dualstack_lists_all_regions_and_three_nics(dualstack):
    dualstack.reset_stats()
    result = inventory_list(os.path.join(FILES, 'dualstack.alicloud_ecs.yml'), cloud_env(dualstack.url, DS_KEY))
    worker = result['_meta']['hostvars']['worker-1']
    assert [e['id'] for e in worker['alicloud_enis']] == ['eni-bp1dsw0', 'eni-bp1dsw1', 'eni-bp1dsw2']
    assert worker['alicloud_enis'][2]['ipv6_cidr'] == '2408:4005:300:3::/64'
    assert hosts_of(result, 'alicloud_region_cn_shanghai') == ['ds-edge']
    counts = dualstack.request_counts()
    assert counts['DescribeRegions'] == 1
    # One bulk ENI listing per region, never one per instance.
    assert counts['DescribeNetworkInterfaces'] == 2


# --- filters, hostnames, strictness ------------------------------------------------------------------------------

def test_exclude_filters_win_over_filters(lab, tmp_path):
    config = lab_config(tmp_path, exclude_filters=[{'Tag': [{'Key': 'role', 'Value': 'master'}]}])
    result = inventory_list(config, cloud_env(lab.url))
    assert sorted(result['_meta']['hostvars']) == ['worker', 'worker2']
    assert 'kube_control_plane' not in result


def test_include_filters_add_queries(lab, tmp_path):
    config = write_config(tmp_path, 'incl', regions=['cn-hangzhou'], hostnames=['instance_id'],
                          filters={'InstanceIds': ['i-bp1master']},
                          include_filters=[{'Status': 'Stopped'}, {'InstanceName': 'prod-*'}])
    lab.reset_stats()
    result = inventory_list(config, cloud_env(lab.url))
    assert sorted(result['_meta']['hostvars']) == ['i-bp1master', 'i-bp1prodweb', 'i-bp1stopped']
    assert lab.request_counts()['DescribeInstances'] == 3


def test_hostnames_preference_against_the_cloud(dualstack, tmp_path):
    config = write_config(tmp_path, 'names', regions=['cn-hangzhou', 'cn-shanghai'],
                          hostnames=['tag:Name', '{{ alicloud_instance_name }}.{{ alicloud_region }}'])
    result = inventory_list(config, cloud_env(dualstack.url, DS_KEY))
    assert sorted(result['_meta']['hostvars']) == ['app', 'control-1', 'ds-edge.cn-shanghai', 'ds-stopped.cn-hangzhou', 'worker-1']


@pytest.mark.parametrize('strict', [True, False])
def test_strict_decides_on_broken_expressions(lab, tmp_path, strict):
    groups = {'broken': 'alicloud_tags.nope.deeper == 1', 'kube_node': "alicloud_tags.role == 'worker'"}
    config = lab_config(tmp_path, strict=strict, groups=groups)
    proc = ansible_inventory(config, cloud_env(lab.url), '--list', check=False)
    if strict:
        assert proc.returncode != 0
        assert 'broken' in proc.stderr
    else:
        assert proc.returncode == 0, proc.stderr
        result = json.loads(proc.stdout)
        assert 'broken' not in result and hosts_of(result, 'kube_node') == ['worker', 'worker2']


def test_compose_overrides_ansible_host(lab, tmp_path):
    config = lab_config(tmp_path, compose={'ansible_host': 'alicloud_enis[-1].primary_ip'})
    result = inventory_list(config, cloud_env(lab.url))
    assert result['_meta']['hostvars']['master']['ansible_host'] == '192.168.0.151'


# --- typos: an unknown option or filter key fails instead of selecting every instance ----------------------------

@pytest.mark.parametrize('options, message', [
    ({'filters': {'Tags': [{'Key': 'cluster', 'Value': 'lab'}]}},
     "filters: unknown DescribeInstances parameter 'Tags' (did you mean 'Tag'?)"),
    ({'filters': {'Statuss': 'Running'}}, "filters: unknown DescribeInstances parameter 'Statuss' (did you mean 'Status'?)"),
    ({'exclude_filters': [{'Tag': [{'Key': 'role', 'value': 'master'}]}]},
     "exclude_filters[0]: Tag[0]: unknown key 'value' (did you mean 'Value'?)"),
    ({'filter': {'Tag': [{'Key': 'cluster', 'Value': 'lab'}]}}, "unknown option 'filter' (did you mean 'filters'?)"),
    ({'regoins': ['cn-hangzhou']}, "unknown option 'regoins' (did you mean 'regions'?)"),
], ids=['Tags', 'Statuss', 'tag-entry', 'filter-option', 'regoins'])
def test_typo_fails_before_any_call(lab, tmp_path, options, message):
    config = write_config(tmp_path, 'typo', hostnames=['instance_id'], **options)
    lab.reset_stats()
    proc = ansible_inventory(config, cloud_env(lab.url), '--list', check=False)
    assert proc.returncode != 0
    assert 'underlay.alicloud.ecs inventory: ' + message in proc.stderr
    assert 'i-bp1' not in proc.stdout
    assert lab.stats_snapshot()['total'] == 0


def test_failing_source_fails_loudly_with_only_its_own_error(lab, tmp_path):
    """The repository's ansible.cfg fails the run on a broken source (no UNPARSED_FAILED override here) and
    enables no INI plugin, whose parse error of a YAML file would bury the real one."""
    config = write_config(tmp_path, 'broken', hostnames=['dns_name'])
    env = cloud_env(lab.url)
    del env['ANSIBLE_INVENTORY_UNPARSED_FAILED']
    expected = "hostnames entry 'dns_name' is invalid"

    proc = ansible_inventory(config, env, '--list', check=False)
    assert proc.returncode != 0 and expected in proc.stderr
    assert 'Completely failed to parse inventory source' in proc.stderr
    assert 'inventory.ini' not in proc.stderr and 'Invalid host pattern' not in proc.stderr

    playbook = tmp_path / 'noop.yml'
    playbook.write_text(yaml.safe_dump([{'hosts': 'all', 'gather_facts': False, 'tasks': []}]))
    played = subprocess.run([os.path.join(VENV_BIN, 'ansible-playbook'), '-i', str(config), str(playbook)],
                            env=env, cwd=ROOT, capture_output=True, text=True, timeout=180, check=False)
    assert played.returncode != 0 and expected in played.stderr

    # With only the plugins a cloud-only inventory needs (docs/inventory.md), nothing else tries the file.
    env['ANSIBLE_INVENTORY_ENABLED'] = 'underlay.alicloud.ecs,ansible.builtin.host_list'
    proc = ansible_inventory(config, env, '--list', check=False)
    assert proc.returncode != 0 and expected in proc.stderr
    assert proc.stderr.count('[WARNING]: Failed to parse inventory with') == 1


# --- cache ------------------------------------------------------------------------------------------------------

def test_cache_hit_makes_no_api_call(lab, tmp_path):
    config = lab_config(tmp_path, cache=True, cache_plugin='ansible.builtin.jsonfile',
                        cache_connection=str(tmp_path / 'cache'), cache_timeout=600)
    env = cloud_env(lab.url)
    lab.reset_stats()
    first = inventory_list(config, env)
    assert lab.stats_snapshot()['total'] > 0

    lab.reset_stats()
    second = inventory_list(config, env)
    assert lab.stats_snapshot()['total'] == 0
    assert second == first

    lab.reset_stats()
    flushed = inventory_list(config, env, '--flush-cache')
    assert lab.stats_snapshot()['total'] > 0
    assert flushed == first
    for path in (tmp_path / 'cache').iterdir():
        assert LAB_KEY[1] not in path.read_text()


def test_cache_expires(lab, tmp_path):
    config = lab_config(tmp_path, cache=True, cache_plugin='ansible.builtin.jsonfile',
                        cache_connection=str(tmp_path / 'cache'), cache_timeout=1)
    env = cloud_env(lab.url)
    inventory_list(config, env)
    time.sleep(1.5)
    lab.reset_stats()
    inventory_list(config, env)
    assert lab.stats_snapshot()['total'] > 0


# --- permissions, throttling, secrets -----------------------------------------------------------------------------

class DenyRegionProxy:
    """Forwards API requests to the emulator unchanged, except that a RAM policy denies some regions:
    requests for them get the real 403 Forbidden.RAM answer."""

    def __init__(self, upstream, denied):
        self.upstream = urlsplit(upstream)
        self.denied = set(denied)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802  (http.server naming)
                body = self.rfile.read(int(self.headers.get('Content-Length') or 0))
                params = dict(parse_qsl(urlsplit(self.path).query))
                params.update(parse_qsl(body.decode('utf-8', 'replace')))
                if params.get('RegionId') in proxy.denied:
                    self.reply(403, {'RequestId': str(uuid.uuid4()).upper(), 'Code': 'Forbidden.RAM',
                                     'Message': 'User not authorized to operate on the specified resource, or this API '
                                                "doesn't support RAM."})
                    return
                conn = http.client.HTTPConnection(proxy.upstream.hostname, proxy.upstream.port, timeout=30)
                conn.request('POST', self.path, body=body, headers=dict(self.headers.items()))
                answer = conn.getresponse()
                data = answer.read()
                self.send_response(answer.status)
                for key, value in answer.getheaders():
                    if key.lower() not in ('transfer-encoding', 'connection', 'content-length'):
                        self.send_header(key, value)
                self.send_header('Content-Length', str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                conn.close()

            def reply(self, status, payload):
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header('Content-Type', 'application/json;charset=utf-8')
                self.send_header('Content-Length', str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        self.url = 'http://127.0.0.1:%d' % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize('strict_permissions', [True, False])
def test_permission_error_in_one_region(dualstack, tmp_path, strict_permissions):
    config = write_config(tmp_path, 'perm', regions=['cn-hangzhou', 'cn-shanghai'], strict_permissions=strict_permissions)
    with DenyRegionProxy(dualstack.url, ['cn-shanghai']) as proxy:
        proc = ansible_inventory(config, cloud_env(proxy.url, DS_KEY), '--list', check=False)
    if strict_permissions:
        assert proc.returncode != 0
        assert 'Forbidden.RAM' in proc.stderr
    else:
        assert proc.returncode == 0, proc.stderr
        assert 'skipping region cn-shanghai' in proc.stderr and 'Forbidden.RAM' in proc.stderr
        result = json.loads(proc.stdout)
        assert sorted(result['_meta']['hostvars']) == ['ds-master', 'ds-stopped', 'ds-worker']
    assert DS_KEY[1] not in proc.stdout + proc.stderr


def test_complete_and_correct_under_throttling(lab, tmp_path):
    config = lab_config(tmp_path, max_retries=12)
    with EcsEmulator(LAB_WORLD, throttle_rate=0.3, unavailable_rate=0.05, seed=7) as emu:
        result = inventory_list(config, cloud_env(emu.url))
        stats = emu.stats_snapshot()
    assert sum(stats['errors'].values()) > 0, 'no fault was injected: %s' % stats
    assert result == inventory_list(config, cloud_env(lab.url))


def test_secret_never_in_output(lab, tmp_path):
    secret = LAB_KEY[1]
    config = lab_config(tmp_path, access_key_id=LAB_KEY[0], access_key_secret=secret)
    env = cloud_env(lab.url)
    del env['ALIBABA_CLOUD_ACCESS_KEY_ID'], env['ALIBABA_CLOUD_ACCESS_KEY_SECRET']
    proc = ansible_inventory(config, env, '--list', '-vvvv')
    assert '"master"' in proc.stdout
    assert secret not in proc.stdout + proc.stderr

    wrong = 'wrong-secret-5e2a9b'
    config = lab_config(tmp_path, name='bad', access_key_id=LAB_KEY[0], access_key_secret=wrong)
    proc = ansible_inventory(config, env, '--list', '-vvvv', check=False)
    assert 'SignatureDoesNotMatch' in proc.stderr
    assert wrong not in proc.stdout + proc.stderr


def test_unreachable_endpoint_fails_fast_and_clearly(tmp_path):
    config = lab_config(tmp_path, max_retries=1, timeout=2)
    with socket.socket() as probe:          # a port nothing listens on
        probe.bind(('127.0.0.1', 0))
        port = probe.getsockname()[1]
    started = time.monotonic()
    proc = ansible_inventory(config, cloud_env('http://127.0.0.1:%d' % port), '--list', check=False)
    assert proc.returncode != 0
    assert 'DescribeInstances' in proc.stderr or 'cannot connect' in proc.stderr
    assert time.monotonic() - started < 60


def test_ansible_doc_shows_options_and_examples():
    proc = subprocess.run([os.path.join(VENV_BIN, 'ansible-doc'), '-t', 'inventory', 'underlay.alicloud.ecs'],
                          env=base_env(), cwd=ROOT, capture_output=True, text=True, timeout=120, check=True)
    for word in ('hostnames', 'include_filters', 'strict_permissions', 'keyed_groups', 'cache_plugin', 'EXAMPLES'):
        assert word in proc.stdout


# --- listings at fleet size -----------------------------------------------------------------------------------

@pytest.fixture(scope='module')
def fleet(tmp_path_factory):
    """A generated world of 650 instances x 2 ENIs in one region: 7 instance pages, 3 ENI pages."""
    import worldgen  # pylint: disable=import-outside-toplevel,import-error
    path = str(tmp_path_factory.mktemp('fleet') / 'world.json')
    worldgen.main(['--instances', '650', '--enis', '2', '--regions', '1', '--seed', '3', '-o', path])
    with open(path, encoding='utf-8') as handle:
        region = next(iter(json.load(handle)['regions']))
    return path, region


def test_listings_fan_out_at_the_page_minimum(fleet, tmp_path):
    """Two round trips per listing, at the page minimum of calls: page 1, then all the other pages in
    flight together (with 0.2 s per request, each of them starts before any of them is answered)."""
    path, region = fleet
    config = write_config(tmp_path, 'fleet', regions=[region], hostnames=['instance_id'])
    with EcsEmulator(path, latency=200) as emu:
        result = inventory_list(config, cloud_env(emu.url))
        requests = emu.requests()
    assert len(result['_meta']['hostvars']) == 650
    assert all(len(h['alicloud_enis']) == 2 for h in result['_meta']['hostvars'].values())
    for action, pages in (('DescribeInstances', 7), ('DescribeNetworkInterfaces', 3)):
        entries = [r for r in requests if r['action'] == action]
        assert len(entries) == pages, action
        spans = sorted((r['ts'] - r['ms'] / 1000.0, r['ts']) for r in entries)
        starts, ends = [span[0] for span in spans[1:]], [span[1] for span in spans[1:]]
        assert min(starts) >= spans[0][1], (action, spans)             # after page 1's answer
        assert max(starts) < min(ends), (action, spans)                # all at once


def test_instance_released_between_pages_is_left_out_once(fleet, tmp_path):
    """An instance released after page 1 was answered shifts the later pages; the listing notices the
    changed TotalCount and lists again by NextToken: every remaining instance once, the released one gone."""
    path, region = fleet
    config = write_config(tmp_path, 'fleet', regions=[region], hostnames=['instance_id'])
    with EcsEmulator(path) as emu:
        api = emu.api
        describe = api.actions[('2014-05-26', 'DescribeInstances')]
        released, calls = [], []

        def release_after_first_page(params):
            calls.append(dict(params.raw))
            body = describe(params)
            if not released and params.get('PageNumber') == '1':
                world = api.world
                zone = world.regions[region]
                gone = zone.instances[5]
                zone.instances.remove(gone)
                zone.instances_by_vpc[gone.vpc].remove(gone)
                del world.instances[gone.id]
                for released_eni in gone.enis:    # released with the instance, as ECS does
                    zone.enis.remove(released_eni)
                    del world.enis[released_eni.id]
                api.mutated()
                released.append(gone.id)
            return body
        api.actions[('2014-05-26', 'DescribeInstances')] = release_after_first_page
        result = inventory_list(config, cloud_env(emu.url))
    hosts = result['_meta']['hostvars']
    assert len(hosts) == 649 and released and released[0] not in hosts
    # The fan-out's 7 pages, then the NextToken chain's 7; plus, had the ENI listing (alongside) been
    # answered before the release, one by-ID question for the released instance. A request that the
    # retry layer sent again (an answer lost on a loaded machine) is one request here.
    pages = set(c['PageNumber'] for c in calls if 'PageNumber' in c)
    chain = set(c.get('NextToken', '') for c in calls if 'MaxResults' in c)
    by_id = [json.loads(c['InstanceIds']) for c in calls if 'InstanceIds' in c]
    assert pages == set(str(n) for n in range(1, 8)) and len(chain) == 7 and by_id in ([], [[released[0]]]), calls
    assert len(calls) - len(by_id) <= 7 + 7 + 1, calls
