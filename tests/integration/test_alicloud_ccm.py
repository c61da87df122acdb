"""Role alicloud_ccm through ansible-playbook against a real API server (tests/cluster/realkube):
real admission and validation of the Secret, RBAC, DaemonSet and Services, the real DaemonSet
controller and scheduler placing the CCM on the control plane, kwok running it.

The inventory is a static YAML file carrying the DESIGN.md section 4 host facts.
"""
import base64
import concurrent.futures
import json
import os
import re
import subprocess
import threading
import time

import yaml

from real_cluster import real_kube_factory  # noqa: F401  pylint: disable=unused-import

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FILES = os.path.join(ROOT, 'tests', 'integration', 'files', 'alicloud_ccm')
INVENTORY = os.path.join(FILES, 'inventory.yml')
PLAYBOOK = os.path.join(ROOT, 'playbooks', 'alicloud_ccm.yml')
VENV_BIN = os.path.join(ROOT, '.venv', 'bin')

AK_ID = 'LTAI5tCcmTestKeyId01'
AK_SECRET = 'ccmS3cretOnlyForThisTest9f8e7d6c'
CIDR = '10.244.0.0/16'
WRITE_VERBS = ('create', 'update', 'patch', 'apply', 'delete', 'deletecollection')
CONTROL_PLANE_TAINTS = [
    {'key': 'node-role.kubernetes.io/control-plane', 'effect': 'NoSchedule'},
    {'key': 'node.cloudprovider.kubernetes.io/uninitialized', 'value': 'true', 'effect': 'NoSchedule'},
]


def b64(text):
    return base64.b64encode(text.encode()).decode()


def secret_forms():
    """Every form in which the AccessKey secret could leak."""
    return [AK_SECRET, b64(AK_SECRET)]


def run_playbook(double, *args, ak_id=AK_ID, ak_secret=AK_SECRET, playbook=PLAYBOOK):
    env = double.env()
    env.update({
        'PATH': VENV_BIN + os.pathsep + os.path.join(ROOT, '.cache', 'bin') + os.pathsep + env.get('PATH', ''),
        'ANSIBLE_CONFIG': os.path.join(ROOT, 'ansible.cfg'),
        'ANSIBLE_COLLECTIONS_PATH': os.path.join(ROOT, '.collections'),
        # The static test inventory needs only the YAML plugin.
        'ANSIBLE_INVENTORY_ENABLED': 'ansible.builtin.yaml',
        'ANSIBLE_NOCOLOR': '1',
        'ALIBABA_CLOUD_ACCESS_KEY_ID': ak_id,
        'ALIBABA_CLOUD_ACCESS_KEY_SECRET': ak_secret,
    })
    cmd = [os.path.join(VENV_BIN, 'ansible-playbook'), '-i', INVENTORY, playbook] + list(args)
    return subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)


def recap(proc):
    match = re.search(r'localhost\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=\d+\s+failed=(\d+)', proc.stdout)
    assert match, proc.stdout + proc.stderr
    return {'ok': int(match.group(1)), 'changed': int(match.group(2)), 'failed': int(match.group(3))}


def writes(double):
    counts = double.request_counts()['requests']
    return {key: value for key, value in counts.items() if key.split(' ')[0] in WRITE_VERBS}


def provider_ids(double):
    return {n['metadata']['name']: (n.get('spec') or {}).get('providerID', '') for n in double.objects('Node')}


def lab_cluster(real_kube_factory, master_provider_id=None, worker2=False):  # noqa: F811 pylint: disable=redefined-outer-name
    double = real_kube_factory(nodes=())
    double.add_node('master', control_plane=True, taints=CONTROL_PLANE_TAINTS)
    double.add_node('worker')
    if worker2:
        double.add_node('worker-2')
    if master_provider_id:
        double.patch('Node', 'master', {'spec': {'providerID': master_provider_id}})
    double.reset_stats()
    return double


def versions(double):
    """resourceVersion of everything the role manages: unchanged means nothing was written."""
    kinds = (('Secret', 'kube-system'), ('DaemonSet', 'kube-system'), ('ServiceAccount', 'kube-system'),
             ('ClusterRole', None), ('ClusterRoleBinding', None), ('Service', 'default'))
    return {(kind, o['metadata']['name']): o['metadata']['resourceVersion']
            for kind, namespace in kinds for o in double.objects(kind, namespace)}


def give_load_balancers_addresses(double, names, stop, namespace='default'):
    """Play the CCM's service controller: publish an external IP once each Service exists."""
    pending = dict(names)
    while pending and not stop.is_set():
        for name, ip in list(pending.items()):
            if double.get('Service', name, namespace):
                double.set_load_balancer_ip(namespace, name, ip)
                del pending[name]
        time.sleep(0.2)


def test_check_apply_and_rerun(real_kube_factory, tmp_path):  # noqa: F811 pylint: disable=redefined-outer-name
    double = lab_cluster(real_kube_factory)
    extra = tmp_path / 'vars.yml'
    extra.write_text(yaml.safe_dump({
        'alicloud_ccm_cluster_cidr': CIDR,
        'alicloud_ccm_loadbalancer_services': '{{ alicloud_ccm_loadbalancer_examples }}',
        'alicloud_ccm_loadbalancer_example_selector': {'app': 'lb-test'},
        'alicloud_ccm_loadbalancer_wait': True,
        'alicloud_ccm_loadbalancer_wait_timeout': 120,
        'alicloud_ccm_loadbalancer_wait_delay': 1,
    }))

    # Check mode on a fresh cluster: succeeds, shows no secret, changes nothing.
    check = run_playbook(double, '-e', '@%s' % extra, '--check', '--diff')
    assert check.returncode == 0, check.stdout + check.stderr
    assert recap(check)['changed'] > 0
    assert provider_ids(double) == {'master': '', 'worker': ''}
    for kind in ('Secret', 'DaemonSet', 'ClusterRole', 'Service'):
        assert not [o for o in double.objects(kind) if 'underlay-alicloud' in json.dumps(o)], kind

    stop = threading.Event()
    helper = threading.Thread(target=give_load_balancers_addresses,
                              args=(double, {'tcp-service': '47.98.137.75', 'http-service': '121.41.165.119'}, stop))
    helper.start()
    try:
        first = run_playbook(double, '-e', '@%s' % extra, '--diff', '-vvvv')
    finally:
        stop.set()
        helper.join()
    output = first.stdout + first.stderr
    assert first.returncode == 0, output[-6000:]
    for form in secret_forms():
        assert output.count(form) == 0, 'AccessKey secret leaked into the -vvvv output'
        assert (check.stdout + check.stderr).count(form) == 0

    # providerIDs from the inventory; the host without a Node is reported, not fatal.
    assert provider_ids(double) == {'master': 'cn-hangzhou.i-bp1master', 'worker': 'cn-hangzhou.i-bp1worker'}
    assert 'WARNING: host worker2: no Node named worker-2 in the cluster (wanted providerID cn-hangzhou.i-bp1worker2)' in output

    # The cloud-config Secret holds the base64 key pair the CCM decodes.
    secret = double.get('Secret', 'cloud-config', 'kube-system')
    config = json.loads(base64.b64decode(secret['data']['cloud-config.conf']))
    assert config == {'Global': {'accessKeyID': b64(AK_ID), 'accessKeySecret': b64(AK_SECRET)}}
    assert not double.get('ConfigMap', 'cloud-config', 'kube-system')

    # The workload: cluster CIDR, no placeholder, leases, tolerations, control-plane only, secret mounted.
    ds = double.get('DaemonSet', 'cloud-controller-manager', 'kube-system')
    pod = ds['spec']['template']['spec']
    command = pod['containers'][0]['command']
    assert '--cluster-cidr=%s' % CIDR in command
    assert '--leader-elect-resource-lock=leases' in command
    assert not re.search(r'<<|>>|\$\{', json.dumps(ds['spec']))
    assert {t['key'] for t in pod['tolerations']} >= {
        'node-role.kubernetes.io/control-plane', 'node-role.kubernetes.io/master',
        'node.cloudprovider.kubernetes.io/uninitialized'}
    assert pod['nodeSelector'] == {'node-role.kubernetes.io/control-plane': ''}
    [volume] = [v for v in pod['volumes'] if v['name'] == 'cloud-config']
    assert volume['secret']['secretName'] == 'cloud-config'
    assert ds['status']['numberReady'] == ds['status']['desiredNumberScheduled'] == 1
    assert double.get('ClusterRoleBinding', 'cloud-controller-manager')['subjects'][0]['name'] == 'cloud-controller-manager'
    assert double.get('ServiceAccount', 'cloud-controller-manager', 'kube-system')

    # LoadBalancer Services: L4 and L7, externalTrafficPolicy Local, addresses waited for.
    tcp = double.get('Service', 'tcp-service', 'default')
    http = double.get('Service', 'http-service', 'default')
    assert tcp['spec']['type'] == http['spec']['type'] == 'LoadBalancer'
    assert tcp['spec']['externalTrafficPolicy'] == http['spec']['externalTrafficPolicy'] == 'Local'
    assert http['metadata']['annotations']['service.beta.kubernetes.io/alibaba-cloud-loadbalancer-protocol-port'] == 'http:80'
    assert tcp['spec']['ports'][0]['port'] == 999 and tcp['spec']['selector'] == {'app': 'lb-test'}

    before = versions(double)
    second = run_playbook(double, '-e', '@%s' % extra)
    assert second.returncode == 0, second.stdout + second.stderr
    assert recap(second)['changed'] == 0, second.stdout
    assert versions(double) == before
    assert provider_ids(double) == {'master': 'cn-hangzhou.i-bp1master', 'worker': 'cn-hangzhou.i-bp1worker'}


def test_loadbalancer_entry_point_for_other_roles(real_kube_factory):  # noqa: F811 pylint: disable=redefined-outer-name
    double = lab_cluster(real_kube_factory)
    double.create({'apiVersion': 'v1', 'kind': 'Namespace', 'metadata': {'name': 'lb-test'}})
    stop = threading.Event()
    names = {'tcp-service': '47.98.137.75', 'http-service': '121.41.165.119'}
    helper = threading.Thread(target=give_load_balancers_addresses, args=(double, names, stop, 'lb-test'))
    helper.start()
    try:
        proc = run_playbook(double, playbook=os.path.join(FILES, 'loadbalancer_entrypoint.yml'))
    finally:
        stop.set()
        helper.join()
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr
    # The entry point waited for both addresses and handed back the Services; then deleted them.
    assert 'LBSTATUS http-service=121.41.165.119,tcp-service=47.98.137.75' in proc.stdout
    assert double.objects('Service', 'lb-test') == []
    assert writes(double).get('delete services') == 2


def test_conflicting_provider_id_fails_clearly_and_others_are_patched(real_kube_factory):  # noqa: F811 pylint: disable=redefined-outer-name
    double = lab_cluster(real_kube_factory, master_provider_id='cn-hangzhou.i-bp1oldmaster')
    proc = run_playbook(double, '-e', 'alicloud_ccm_cluster_cidr=%s' % CIDR, '-e', 'alicloud_ccm_missing_nodes=fail')
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert ('node master (host master) already has providerID cn-hangzhou.i-bp1oldmaster, '
            'wanted cn-hangzhou.i-bp1master: Kubernetes does not allow changing spec.providerID') in output
    assert 'host worker2: no Node named worker-2 in the cluster' in output
    # The other node was still patched; the wrong one kept its value; the CCM was not started.
    assert provider_ids(double) == {'master': 'cn-hangzhou.i-bp1oldmaster', 'worker': 'cn-hangzhou.i-bp1worker'}
    assert not double.get('DaemonSet', 'cloud-controller-manager', 'kube-system')
    assert not double.get('Secret', 'cloud-config', 'kube-system')


def test_bad_input_fails_before_any_change(real_kube_factory):  # noqa: F811 pylint: disable=redefined-outer-name
    double = lab_cluster(real_kube_factory)
    cases = {
        'missing cidr': (['-e', 'alicloud_ccm_cluster_cidr='], {},
                         ['alicloud_ccm_cluster_cidr is not set: expected the cluster\'s pod CIDR']),
        'host bits': (['-e', 'alicloud_ccm_cluster_cidr=10.244.0.1/16'], {},
                      ['10.244.0.1/16 is not a network in CIDR notation']),
        'not a cidr': (['-e', 'alicloud_ccm_cluster_cidr=10.244.0.0/16,banana'], {},
                       ['banana is not a network in CIDR notation']),
        'no key': (['-e', 'alicloud_ccm_cluster_cidr=%s' % CIDR], {'ak_id': '', 'ak_secret': ''},
                   ['alicloud_ccm_access_key_id is empty: set it, or export ALIBABA_CLOUD_ACCESS_KEY_ID',
                    'alicloud_ccm_access_key_secret is empty: set it, or export ALIBABA_CLOUD_ACCESS_KEY_SECRET']),
    }
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(cases)) as pool:
        futures = {name: pool.submit(run_playbook, double, *case[0], **case[1]) for name, case in cases.items()}
        results = {name: future.result() for name, future in futures.items()}
    for name, case in cases.items():
        messages = case[2]
        output = results[name].stdout + results[name].stderr
        assert results[name].returncode != 0, name
        for message in messages:
            assert message in output, '%s: %s' % (name, output[-3000:])
    # Validation precedes any contact with the cluster.
    assert double.request_counts()['total'] == 0
    assert provider_ids(double) == {'master': '', 'worker': ''}


def test_render_mode_writes_no_secret_and_contacts_nothing(real_kube_factory, tmp_path):  # noqa: F811 pylint: disable=redefined-outer-name
    double = lab_cluster(real_kube_factory)
    render = tmp_path / 'render'
    proc = run_playbook(double, '-e', 'underlay_mode=render', '-e', 'underlay_render_dir=%s' % render,
                        '-e', 'alicloud_ccm_cluster_cidr=%s' % CIDR, '-vvvv')
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-4000:]
    assert double.request_counts()['total'] == 0
    for form in secret_forms():
        assert output.count(form) == 0

    files = sorted(str(p.relative_to(render)) for p in render.rglob('*') if p.is_file())
    assert files == ['alicloud-ccm/cloud-controller-manager.yaml', 'alicloud-ccm/rbac.yaml', 'kustomization.yaml']
    for path in render.rglob('*'):
        if path.is_file():
            text = path.read_text()
            for form in secret_forms() + [AK_ID, b64(AK_ID)]:
                assert form not in text, path
    kustomization = yaml.safe_load((render / 'kustomization.yaml').read_text())
    assert kustomization['resources'] == ['alicloud-ccm/cloud-controller-manager.yaml', 'alicloud-ccm/rbac.yaml']

    [ds] = list(yaml.safe_load_all((render / 'alicloud-ccm' / 'cloud-controller-manager.yaml').read_text()))
    assert '--cluster-cidr=%s' % CIDR in ds['spec']['template']['spec']['containers'][0]['command']
    assert ds['spec']['template']['spec']['volumes'][0]['secret']['secretName'] == 'cloud-config'
    # kubectl's built-in kustomize accepts the directory as it is.
    built = subprocess.run([os.path.join(VENV_BIN, 'kubectl'), 'kustomize', str(render)],
                           capture_output=True, text=True, timeout=120, check=False)
    assert built.returncode == 0, built.stderr
    kinds = sorted(doc['kind'] for doc in yaml.safe_load_all(built.stdout))
    assert kinds == ['ClusterRole', 'ClusterRoleBinding', 'DaemonSet', 'ServiceAccount']

    # RAM role credentials (no key in the environment at all) and the LoadBalancer examples:
    # the key-less cloud-config and the Services join the directory and its kustomization.
    again = run_playbook(double, '-e', 'underlay_mode=render', '-e', 'underlay_render_dir=%s' % render,
                         '-e', 'alicloud_ccm_cluster_cidr=%s' % CIDR, '-e', 'alicloud_ccm_credentials=ram_role',
                         '-e', '{"alicloud_ccm_loadbalancer_services": "{{ alicloud_ccm_loadbalancer_examples }}"}',
                         ak_id='', ak_secret='')
    assert again.returncode == 0, again.stdout[-4000:] + again.stderr
    assert double.request_counts()['total'] == 0
    [config] = list(yaml.safe_load_all((render / 'alicloud-ccm' / 'cloud-config.yaml').read_text()))
    assert config['kind'] == 'Secret'
    assert json.loads(base64.b64decode(config['data']['cloud-config.conf'])) == {'Global': {}}
    built = subprocess.run([os.path.join(VENV_BIN, 'kubectl'), 'kustomize', str(render)],
                           capture_output=True, text=True, timeout=120, check=False)
    assert built.returncode == 0, built.stderr
    services = [doc for doc in yaml.safe_load_all(built.stdout) if doc['kind'] == 'Service']
    assert sorted(svc['metadata']['name'] for svc in services) == ['http-service', 'tcp-service']
    assert {svc['spec']['externalTrafficPolicy'] for svc in services} == {'Local'}
    assert len([doc for doc in yaml.safe_load_all(built.stdout) if doc['kind'] == 'Secret']) == 1
    # ... and the directory applies as it is (what a GitOps controller would do).
    applied = subprocess.run([os.path.join(VENV_BIN, 'kubectl'), 'apply', '-k', str(render)], env=double.env(),
                             capture_output=True, text=True, timeout=120, check=False)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    ds = double.get('DaemonSet', 'cloud-controller-manager', 'kube-system')
    assert '--cluster-cidr=%s' % CIDR in ds['spec']['template']['spec']['containers'][0]['command']
    assert double.get('Service', 'http-service', 'default')['spec']['type'] == 'LoadBalancer'


def test_a_ccm_that_cannot_run_is_named_with_its_pod_and_reason(real_kube_factory):  # noqa: F811 pylint: disable=redefined-outer-name
    double = real_kube_factory(nodes=())
    # A control-plane Node with no kubelet behind it (kwok leaves it alone): no room, the pod stays Pending.
    double.create({'apiVersion': 'v1', 'kind': 'Node',
                   'metadata': {'name': 'master', 'labels': {'node-role.kubernetes.io/control-plane': ''}}})
    double.add_node('worker')
    proc = run_playbook(double, '-e', 'alicloud_ccm_cluster_cidr=%s' % CIDR, '-e', 'alicloud_ccm_wait_timeout=10')
    assert proc.returncode != 0
    message = re.search(r'"msg": "(The cloud-controller-manager cannot run[^"]*)"', proc.stdout)
    assert message, proc.stdout + proc.stderr
    assert re.match(r'The cloud-controller-manager cannot run within 10 s: pod kube-system/cloud-controller-manager-\w+ '
                    r'on no node: Unschedulable \(0/2 nodes are available: .*\); last warning FailedScheduling: ',
                    message.group(1)), message.group(1)
    assert not any(form in proc.stdout + proc.stderr for form in secret_forms())
