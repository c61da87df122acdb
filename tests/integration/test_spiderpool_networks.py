"""Role spiderpool_networks end to end: real ansible-playbook and kubernetes client against a real API
server with the real Spiderpool 1.2.2 chart, controller (webhooks, SpiderMultusConfig ->
NetworkAttachmentDefinition) and CRDs; render mode on disk.

The hosts of the static inventory are never contacted (their ansible_host is a documentation
address and their connection ssh): every task must run on localhost.
"""
import copy
import json
import os
import re
import subprocess
import sys

import pytest
import yaml

from real_cluster import real_kube_factory  # noqa: F401  pylint: disable=unused-import

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, '.collections'))
from ansible_collections.underlay.alicloud.plugins.module_utils.spiderpool_sync import PRESERVED, normalize_spec  # noqa: E402
from ansible_collections.underlay.alicloud.tests.unit.utils.spiderpool_crds import assert_valid  # noqa: E402

VENV_BIN = os.path.join(ROOT, '.venv', 'bin')
FILES = os.path.join(ROOT, 'tests', 'integration', 'files', 'spiderpool_networks')
PLAYBOOK = os.path.join(ROOT, 'playbooks', 'spiderpool_networks.yml')
GROUP = 'spiderpool.spidernet.io/v2beta1'
OWNER = {'app.kubernetes.io/managed-by': 'underlay.alicloud'}


def base_inventory():
    with open(os.path.join(FILES, 'inventory.yml'), encoding='utf-8') as handle:
        return yaml.safe_load(handle)


def host_vars(inventory, name):
    groups = inventory['all']['children']['k8s_cluster']['children']
    return next(g['hosts'][name] for g in groups.values() if name in g['hosts'])


def eni_of(inventory, host, index):
    return host_vars(inventory, host)['alicloud_enis'][index]


def write_inventory(tmp_path, inventory):
    path = tmp_path / 'inventory.yml'
    path.write_text(yaml.safe_dump(inventory, sort_keys=False))
    return str(path)


def env_for(kube=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith(('ANSIBLE_', 'K8S_AUTH_'))}
    env.update({'PATH': '%s:%s' % (VENV_BIN, env.get('PATH', '')), 'ANSIBLE_CONFIG': os.path.join(ROOT, 'ansible.cfg'),
                'ANSIBLE_COLLECTIONS_PATH': os.path.join(ROOT, '.collections'), 'ANSIBLE_NOCOLOR': '1',
                'PYTHONDONTWRITEBYTECODE': '1', 'KUBECONFIG': '/nonexistent/kubeconfig'})
    if kube is not None:
        env = kube.env(env)
    return env


def playbook(inventory, env, *args):
    proc = subprocess.run([os.path.join(VENV_BIN, 'ansible-playbook'), '-i', inventory, PLAYBOOK, *args],
                          env=env, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    # Summed over the recap's hosts (localhost runs the whole-run checks, a node the planner).
    recaps = re.findall(r'changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)', proc.stdout)
    proc.changed, proc.unreachable, proc.failed = (
        tuple(sum(int(r[i]) for r in recaps) for i in range(3)) if recaps else (None, None, None))
    return proc


def ok(proc):
    assert proc.returncode == 0 and proc.unreachable == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    return proc


def pools(kube):
    return {p['metadata']['name']: p for p in kube.objects('SpiderIPPool')}


def smcs(kube):
    return {p['metadata']['name']: p for p in kube.objects('SpiderMultusConfig', 'kube-system')}


def set_allocated(kube, name, allocations):
    """What the agent's IPAM writes for running pods: the pool's status (the pods exist, so the
    controller's IP garbage collection keeps them)."""
    uids = {}
    for pod in set(allocations.values()):
        namespace, pod_name = pod.split('/')
        live = kube.get('Pod', pod_name, namespace) or kube.run_pod(pod_name, namespace)
        uids[pod] = live['metadata']['uid']
    kube.patch_status('SpiderIPPool', name, {
        'allocatedIPs': json.dumps({ip: {'pod': pod, 'podUid': uids[pod]} for ip, pod in allocations.items()})
        if allocations else None, 'allocatedIPCount': len(allocations)})


def stale_pool(name, ips, subnet='172.31.192.0/20', labels=None):
    return {'apiVersion': GROUP, 'kind': 'SpiderIPPool', 'metadata': {'name': name, 'labels': labels or dict(OWNER)},
            'spec': {'subnet': subnet, 'ips': ips, 'default': True}}


@pytest.fixture
def double(real_kube_factory):  # noqa: F811  pylint: disable=redefined-outer-name
    kube = real_kube_factory()
    kube.install_spiderpool('ipvlan-eth0')      # leaves the custom placeholder of the default network (#2700)
    return kube


def read_render(directory):
    with open(os.path.join(directory, 'kustomization.yaml'), encoding='utf-8') as handle:
        kustomization = yaml.safe_load(handle)
    objects = []
    for name in kustomization['resources']:
        with open(os.path.join(directory, name), encoding='utf-8') as handle:
            objects.extend(doc for doc in yaml.safe_load_all(handle) if doc)
    return kustomization, objects


def test_apply_lifecycle_and_render_equals_apply(double, tmp_path):
    inventory = base_inventory()
    path = write_inventory(tmp_path, inventory)
    env = env_for(double)
    # A pool of a node that left the cluster, holding an address master's ENI now has.
    double.create(stale_pool('gone-eth0-v4', ['172.31.199.185']))
    double.create(stale_pool('busy-eth0-v4', ['172.31.199.101']))
    set_allocated(double, 'busy-eth0-v4', {'172.31.199.101': 'default/old-app'})
    double.create(stale_pool('hand-made', ['10.9.0.5'], subnet='10.9.0.0/24', labels={'team': 'db'}))

    # 1. Create: placeholder replaced, stale empty pool pruned before its address is reused,
    #    pools created, the stale pool a pod still uses kept.
    first = ok(playbook(path, env))
    assert first.changed == 1
    smc = smcs(double)['ipvlan-eth0']
    assert smc['spec']['cniType'] == 'ipvlan' and 'customCNI' not in smc['spec']
    assert smc['spec']['ipvlan']['master'] == ['eth0'] and smc['spec']['enableCoordinator'] is True
    # the real controller turns every SpiderMultusConfig into a NetworkAttachmentDefinition
    double.wait_for('NADs', lambda: sorted(n['metadata']['name'] for n in double.objects(
        'NetworkAttachmentDefinition', 'kube-system')) == ['ipvlan-eth0', 'ipvlan-eth1'])
    nad = json.loads(double.get('NetworkAttachmentDefinition', 'ipvlan-eth1', 'kube-system')['spec']['config'])
    assert [p['type'] for p in nad['plugins']] == ['ipvlan', 'coordinator']
    assert nad['plugins'][0]['master'] == 'eth1' and nad['plugins'][0]['ipam']['type'] == 'spiderpool'
    # The pools of each interface, as wildcards: accepted by the real webhook, stored as sent (plus the
    # CRD default matchMasterSubnet: false), and turned by the real controller into the IPAM's
    # default_ipv4_ippool / default_ipv6_ippool of the NAD. eth0 has no IPv6 pool: no IPv6 entry.
    stored = smcs(double)
    assert stored['ipvlan-eth0']['spec']['ipvlan']['ippools'] == {'ipv4': ['*-eth0-v4'], 'matchMasterSubnet': False}
    assert stored['ipvlan-eth1']['spec']['ipvlan']['ippools'] == {'ipv4': ['*-eth1-v4'], 'ipv6': ['*-eth1-v6'],
                                                                  'matchMasterSubnet': False}
    ipam = {name: json.loads(double.get('NetworkAttachmentDefinition', name, 'kube-system')['spec']['config'])['plugins'][0]['ipam']
            for name in ('ipvlan-eth0', 'ipvlan-eth1')}
    assert ipam['ipvlan-eth0'] == {'type': 'spiderpool', 'default_ipv4_ippool': ['*-eth0-v4']}
    assert ipam['ipvlan-eth1'] == {'type': 'spiderpool', 'default_ipv4_ippool': ['*-eth1-v4'], 'default_ipv6_ippool': ['*-eth1-v6']}
    current = pools(double)
    assert sorted(current) == ['busy-eth0-v4', 'hand-made', 'master-eth0-v4', 'master-eth1-v4', 'master-eth1-v6',
                               'worker-eth0-v4', 'worker-eth1-v4']
    assert current['master-eth0-v4']['spec']['ips'] == ['172.31.199.185-172.31.199.189']
    assert current['master-eth0-v4']['spec']['gateway'] == '172.31.207.253'
    assert current['master-eth1-v6']['spec']['ips'] == ['2408:4005:3a1:a400::156-2408:4005:3a1:a400::157']
    # The IPv6 default route's gateway (Subnet-Router anycast of the /64), accepted by the real webhook.
    assert current['master-eth1-v6']['spec']['gateway'] == '2408:4005:3a1:a400::'
    assert current['worker-eth1-v4']['spec']['multusName'] == ['kube-system/ipvlan-eth1']
    assert 'stale SpiderIPPool busy-eth0-v4 kept: it still holds 172.31.199.101 (pod default/old-app)' in first.stdout + first.stderr

    # 2. Re-run: nothing to do.
    double.reset_stats()
    second = ok(playbook(path, env))
    assert second.changed == 0
    assert double.request_counts()['total'] == 2          # one list per kind, no write

    # 3. Render the same inventory: no cluster needed, same objects as applied.
    render = tmp_path / 'render'
    ok(playbook(path, env_for(None), '-e', 'underlay_mode=render', '-e', 'underlay_render_dir=%s' % render))
    kustomization, rendered = read_render(str(render))
    assert kustomization['resources'] == ['spiderpool-networks/spiderippools.yaml', 'spiderpool-networks/spidermultusconfigs.yaml']
    assert_valid(rendered)
    applied = {(o['kind'], o['metadata']['name']): o for o in list(pools(double).values()) + list(smcs(double).values())}
    assert len(rendered) == 7
    for obj in rendered:
        live = applied[(obj['kind'], obj['metadata']['name'])]
        assert obj['metadata']['labels'].items() <= live['metadata']['labels'].items()
        # Same object up to server-filled defaults (e.g. ipvlan.mtu 0, disable false).
        assert normalize_spec(obj['kind'], live['spec'], PRESERVED[obj['kind']]) == normalize_spec(obj['kind'], obj['spec'])
    kubectl = subprocess.run([os.path.join(VENV_BIN, 'kubectl'), 'kustomize', str(render)], capture_output=True, text=True, check=True)
    assert len([d for d in yaml.safe_load_all(kubectl.stdout) if d]) == 7

    # 4. A new secondary IP on worker's eth0 grows its pool; a node joins with both interfaces (eth1
    #    dual-stack): its pools are created, the multus configs are not written (their wildcards match them).
    eni_of(inventory, 'worker', 0)['secondary_ips'].append('172.31.199.195')
    joined = copy.deepcopy(host_vars(inventory, 'worker'))
    joined.update(alicloud_instance_id='i-bp1worker2', alicloud_hostname='worker-2')
    joined['alicloud_enis'][0].update(id='eni-bp1x0', mac='00:16:3e:00:00:05', primary_ip='172.31.199.196', secondary_ips=['172.31.199.197'])
    joined['alicloud_enis'][1].update(id='eni-bp1x1', mac='00:16:3e:00:00:06', primary_ip='192.168.0.153', secondary_ips=['192.168.0.166'],
                                      ipv6_ips=['2408:4005:3a1:a400::166'])
    inventory['all']['children']['k8s_cluster']['children']['kube_node']['hosts']['worker-2'] = joined
    path = write_inventory(tmp_path, inventory)
    versions = {name: smc['metadata']['resourceVersion'] for name, smc in smcs(double).items()}
    double.reset_stats()
    third = ok(playbook(path, env))
    assert third.changed == 1
    assert pools(double)['worker-eth0-v4']['spec']['ips'] == ['172.31.199.190-172.31.199.195']
    assert {'worker-2-eth0-v4', 'worker-2-eth1-v4', 'worker-2-eth1-v6'} <= set(pools(double))
    assert {name: smc['metadata']['resourceVersion'] for name, smc in smcs(double).items()} == versions
    assert [k for k in double.request_counts()['requests'] if 'spidermultusconfigs' in k and not k.startswith('list ')] == []

    # 5. An IP a pod holds disappears from the ENI: refused, naming IP and pod; nothing changes.
    set_allocated(double, 'worker-eth0-v4', {'172.31.199.193': 'default/test-app-1-x7k2p'})
    eni_of(inventory, 'worker', 0)['secondary_ips'].remove('172.31.199.193')
    eni_of(inventory, 'master', 0)['secondary_ips'].append('172.31.199.190')      # would be a valid change on its own
    host_vars(inventory, 'worker')['alicloud_enis'][0]['secondary_ips'].remove('172.31.199.190')
    path = write_inventory(tmp_path, inventory)
    before = copy.deepcopy(pools(double))
    fourth = playbook(path, env)
    assert fourth.returncode != 0 and fourth.failed == 1
    assert 'refusing to remove 172.31.199.193 (pod default/test-app-1-x7k2p) from SpiderIPPool worker-eth0-v4' in fourth.stdout
    after = pools(double)
    assert {n: p['spec'] for n, p in after.items()} == {n: p['spec'] for n, p in before.items()}

    # 6. Once the pod is gone the same run goes through and the address moves.
    set_allocated(double, 'worker-eth0-v4', {})
    ok(playbook(path, env))
    after = pools(double)
    assert after['worker-eth0-v4']['spec']['ips'] == ['172.31.199.191-172.31.199.192', '172.31.199.194-172.31.199.195']
    assert after['master-eth0-v4']['spec']['ips'] == ['172.31.199.185-172.31.199.190']


def test_check_mode_with_diff_changes_nothing(double, tmp_path):
    double.reset_stats()
    proc = ok(playbook(write_inventory(tmp_path, base_inventory()), env_for(double), '--check', '--diff'))
    assert proc.changed == 1
    assert 'SpiderIPPool master-eth0-v4 (create)' in proc.stdout
    assert '"172.31.199.185-172.31.199.189"' in proc.stdout
    assert 'SpiderMultusConfig kube-system/ipvlan-eth0 (replace)' in proc.stdout
    assert pools(double) == {}
    assert smcs(double)['ipvlan-eth0']['spec']['cniType'] == 'custom'
    counts = double.request_counts()['requests']
    assert counts.get('create spiderippools.spiderpool.spidernet.io (dry run)') == 5   # every create validated by a dry run


def test_planner_error_fails_in_one_line_and_writes_nothing(tmp_path):
    inventory = base_inventory()
    del host_vars(inventory, 'worker')['alicloud_enis']
    render = tmp_path / 'render'
    proc = playbook(write_inventory(tmp_path, inventory), env_for(None), '-e', 'underlay_mode=render',
                    '-e', 'underlay_render_dir=%s' % render)
    assert proc.returncode != 0
    assert 'spiderpool_plan: node worker (host worker) has no ENI facts (alicloud_enis is missing)' in proc.stdout
    assert not render.exists()


def test_render_from_the_dynamic_inventory_and_ecs_emulator(tmp_path):
    emulator_dir = os.path.join(ROOT, 'tests', 'emulator')
    if not os.path.exists(os.path.join(ROOT, 'plugins', 'inventory', 'ecs.py')):
        pytest.skip('inventory plugin underlay.alicloud.ecs not available')
    sys.path.insert(0, emulator_dir)
    from ecs_emulator import EcsEmulator  # pylint: disable=import-outside-toplevel,import-error
    render = tmp_path / 'render'
    with EcsEmulator(os.path.join(ROOT, 'inventories', 'lab', 'world.yml')) as emulator:
        env = env_for(None)
        env.update({'ALIBABA_CLOUD_ECS_ENDPOINT': emulator.url, 'ALIBABA_CLOUD_VPC_ENDPOINT': emulator.url,
                    'ALIBABA_CLOUD_ACCESS_KEY_ID': 'LTAIlabkey', 'ALIBABA_CLOUD_ACCESS_KEY_SECRET': 'labsecret'})
        args = ('-e', 'underlay_mode=render', '-e', 'underlay_render_dir=%s' % render)
        inventory = os.path.join(ROOT, 'inventories', 'lab', 'lab.alicloud_ecs.yml')
        first = ok(playbook(inventory, env, *args))
        second = ok(playbook(inventory, env, *args))
    assert first.changed > 0 and second.changed == 0
    _kustomization, rendered = read_render(str(render))
    assert_valid(rendered)
    names = {o['metadata']['name'] for o in rendered if o['kind'] == 'SpiderIPPool'}
    assert {'master-eth0-v4', 'master-eth1-v4', 'worker-eth0-v4', 'worker-eth1-v4'} <= names
    master = next(o for o in rendered if o['metadata']['name'] == 'master-eth0-v4')
    assert master['spec']['ips'] == ['172.31.199.185-172.31.199.189'] and master['spec']['gateway'] == '172.31.207.253'


def test_our_own_check_refuses_a_pool_overlapping_another(double, tmp_path):
    """A hand-made pool (not ours, never pruned) holds an address of master's ENI: the run fails naming
    both pools before anything is written."""
    double.create(stale_pool('team-pool', ['172.31.199.187'], labels={'team': 'db'}))
    double.reset_stats()
    proc = playbook(write_inventory(tmp_path, base_inventory()), env_for(double))
    assert proc.returncode != 0
    assert 'address 172.31.199.187 would be in both SpiderIPPool master-eth0-v4 and team-pool' in proc.stdout
    assert sorted(pools(double)) == ['team-pool']
    assert [k for k in double.request_counts()['requests'] if not k.startswith('list ')] == []


def apply_objects(kube, tmp_path, objects, check=False, **options):
    """spiderpool_objects alone in a play on localhost; returns its result (the play goes on when it fails)."""
    out = tmp_path / 'result.json'
    play = tmp_path / 'apply.yml'
    play.write_text(yaml.safe_dump([{'hosts': 'localhost', 'gather_facts': False, 'tasks': [
        {'underlay.alicloud.spiderpool_objects': dict({'objects': objects, 'owner_labels': OWNER}, **options),
         'register': 'result', 'ignore_errors': True},
        {'ansible.builtin.copy': {'content': '{{ result | to_json }}', 'dest': str(out)}, 'check_mode': False}],
        'vars': {'ansible_python_interpreter': sys.executable}}]))
    proc = subprocess.run([os.path.join(VENV_BIN, 'ansible-playbook'), '-i', 'localhost,', '-c', 'local', str(play)]
                          + (['--check'] if check else []),
                          env=env_for(kube), cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    return json.loads(out.read_text())


def numbered_pools(count):
    """One-address pools as the planner makes them (ipVersion set: the webhook would fill it)."""
    objects = [stale_pool('node-%02d-eth0-v4' % i, ['172.31.200.%d' % (i + 1)]) for i in range(count)]
    for obj in objects:
        obj['spec']['ipVersion'] = 4
    return objects


def peak_in_flight(events):
    """Most requests the API server was serving at once, from the audit log's received and completed times."""
    edges = []
    for event in events:
        edges += [(event['requestReceivedTimestamp'], 1), (event['stageTimestamp'], -1)]
    peak = running = 0
    for _stamp, step in sorted(edges, key=lambda e: (e[0], e[1])):
        running += step
        peak = max(peak, running)
    return peak


def test_pools_are_created_in_parallel_without_dry_runs_and_a_rerun_only_lists(double, tmp_path):
    objects = numbered_pools(60)
    double.reset_stats()
    result = apply_objects(double, tmp_path, objects, workers=6)
    assert result['changed'] and not result.get('failed') and all(c['applied'] for c in result['changes'])
    assert double.request_counts()['requests'] == {'list spiderippools.spiderpool.spidernet.io': 1,
                                                   'list spidermultusconfigs.spiderpool.spidernet.io': 1,
                                                   'create spiderippools.spiderpool.spidernet.io': 60}
    creates = [e for e in double.audit_events() if e['verb'] == 'create']
    assert 1 < peak_in_flight(creates) <= 6
    assert len(pools(double)) == 60
    double.reset_stats()
    again = apply_objects(double, tmp_path, objects, workers=6)
    assert not again['changed'] and again['unchanged'] == 60
    assert double.request_counts()['total'] == again['api_requests'] == 2


def test_the_real_webhook_refuses_two_pools_the_others_are_created_and_a_rerun_converges(double, tmp_path):
    """What only the webhook knows (an address outside the pool's subnet) comes back in the webhook's own
    words naming the object, in name order whatever order the writes finished in; every other pool is
    created (no dry run first); once fixed, a re-run creates the two and the next one only lists."""
    objects = numbered_pools(20)
    for index in (13, 4):
        objects[index]['spec']['ips'] = ['10.1.1.%d' % index]
    # Check mode: both refusals from the dry runs, nothing stored.
    checked = apply_objects(double, tmp_path, list(reversed(objects)), check=True, workers=8)
    refused = ['SpiderIPPool node-04-eth0-v4', 'SpiderIPPool node-13-eth0-v4']
    assert checked['failed'] and [e['object'] for e in checked['errors']] == refused
    assert pools(double) == {}
    double.reset_stats()
    result = apply_objects(double, tmp_path, list(reversed(objects)), workers=8)
    assert result['failed'] and result['changed']
    assert result['msg'].startswith('2 of 20 writes failed: create SpiderIPPool node-04-eth0-v4 failed (HTTP 422): ')
    assert 'not match base subnet: 10.1.1.4' in result['errors'][0]['msg']
    assert 'not match base subnet: 10.1.1.13' in result['errors'][1]['msg']
    assert [e['object'] for e in result['errors']] == refused
    assert result['msg'].endswith('Applied: 18 of 20 changes; a re-run makes the rest once the cause is fixed')
    assert sorted(c['name'] for c in result['changes'] if c['applied']) == sorted(pools(double))
    assert sorted(pools(double)) == ['node-%02d-eth0-v4' % i for i in range(20) if i not in (4, 13)]
    assert [k for k in double.request_counts()['requests'] if 'dry run' in k] == []
    fixed = numbered_pools(20)
    again = apply_objects(double, tmp_path, fixed, workers=8)
    assert not again.get('failed') and [c['name'] for c in again['changes']] == ['node-04-eth0-v4', 'node-13-eth0-v4']
    assert len(pools(double)) == 20
    double.reset_stats()
    last = apply_objects(double, tmp_path, fixed, workers=8)
    assert not last['changed'] and double.request_counts()['total'] == 2
