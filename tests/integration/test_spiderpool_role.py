"""Role underlay.alicloud.spiderpool: the real playbook, kubernetes.core.helm and the real helm v3 binary
installing the real Spiderpool 1.2.2 chart (charts/spiderpool of the pinned module) into a real
Kubernetes API server, where the real spiderpool-controller serves the chart's webhooks, and
spiderpool-init (the chart's post-install Job) creates the SpiderCoordinator; render mode; and the
values keys checked against the real chart's values.yaml."""
import functools
import http.server
import json
import os
import subprocess
import sys
import threading

import pytest
import yaml

from real_cluster import real_kube_factory, spiderpool_chart  # noqa: F401  pylint: disable=unused-import

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PLAYBOOK = os.path.join(ROOT, 'playbooks', 'spiderpool.yml')
HELM = os.path.join(ROOT, '.cache', 'bin', 'helm')
FAST = {'spiderpool_coordinator_retries': 20, 'spiderpool_coordinator_delay': 1, 'spiderpool_wait_timeout': 120}

pytestmark = pytest.mark.skipif(not os.access(HELM, os.X_OK), reason='helm binary not set up (make env)')


@pytest.fixture
def chart():
    return spiderpool_chart()


@pytest.fixture
def local_chart(chart):  # pylint: disable=redefined-outer-name
    return dict(FAST, spiderpool_chart_source='local', spiderpool_chart_path=chart)


@pytest.fixture
def chart_repo(tmp_path, chart):  # pylint: disable=redefined-outer-name
    """A Helm chart repository (index.yaml + the packaged real chart) over HTTP on loopback."""
    root = tmp_path / 'chart-repo'
    root.mkdir()
    fetched = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):  # pylint: disable=arguments-differ
            fetched.append(self.path)

    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), functools.partial(Handler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = 'http://127.0.0.1:%d' % server.server_address[1]
    env = tool_env(tmp_path)
    for args in (['package', chart, '-d', str(root)], ['repo', 'index', str(root), '--url', url]):
        subprocess.run([HELM, *args], env=env, capture_output=True, text=True, timeout=60, check=True)
    yield url, fetched
    server.shutdown()
    server.server_close()


def tool_env(tmp_path, kube=None):
    env = dict(os.environ) if kube is None else kube.env()
    env.update({
        'PATH': os.pathsep.join([os.path.dirname(sys.executable), os.path.dirname(HELM), env.get('PATH', '')]),
        'ANSIBLE_CONFIG': os.path.join(ROOT, 'ansible.cfg'),
        'ANSIBLE_COLLECTIONS_PATH': os.path.join(ROOT, '.collections'),
        'ANSIBLE_INVENTORY_ENABLED': 'ansible.builtin.host_list,ansible.builtin.yaml',
        'ANSIBLE_LOCAL_TEMP': str(tmp_path / 'ansible-tmp'), 'ANSIBLE_NOCOLOR': '1', 'ANSIBLE_PIPELINING': '1',
        'HELM_CACHE_HOME': str(tmp_path / 'helm' / 'cache'), 'HELM_CONFIG_HOME': str(tmp_path / 'helm' / 'config'),
        'HELM_DATA_HOME': str(tmp_path / 'helm' / 'data'),
    })
    return env


class Run:
    def __init__(self, proc):
        self.rc, self.out = proc.returncode, proc.stdout + proc.stderr
        recap = [line for line in self.out.splitlines() if line.startswith('localhost') and 'changed=' in line]
        fields = dict(item.split('=') for item in recap[-1].split(':', 1)[1].split()) if recap else {}
        self.changed = int(fields['changed']) if fields else None


def run_role(tmp_path, kube=None, check=False, inventory='localhost,', **variables):
    extra = tmp_path / 'extra.json'
    extra.write_text(json.dumps(dict({'ansible_python_interpreter': sys.executable}, **variables)))
    cmd = ['ansible-playbook', '-i', inventory, PLAYBOOK, '-e', '@' + str(extra)] + (['--check'] if check else [])
    proc = subprocess.run(cmd, env=tool_env(tmp_path, kube), capture_output=True, text=True, timeout=300, check=False)
    return Run(proc)


def helm_json(tmp_path, kube, *args):
    proc = subprocess.run([HELM, *args, '--namespace', 'kube-system', '-o', 'json'], env=tool_env(tmp_path, kube),
                          capture_output=True, text=True, timeout=60, check=True)
    return json.loads(proc.stdout)


def init_containers(daemonset):
    return {c['name']: c['image'] for c in daemonset['spec']['template']['spec'].get('initContainers') or []}


def test_check_mode_then_install_then_rerun_is_unchanged(real_kube_factory, local_chart, tmp_path):
    kube = real_kube_factory()
    checked = run_role(tmp_path, kube, check=True, **local_chart)
    assert checked.rc == 0 and checked.changed >= 1, checked.out
    assert kube.objects('DaemonSet', 'kube-system') == [] and kube.get('Deployment', 'spiderpool-controller', 'kube-system') is None

    first = run_role(tmp_path, kube, **local_chart)
    assert first.rc == 0, first.out
    assert first.changed >= 1
    assert helm_json(tmp_path, kube, 'get', 'values', 'spiderpool') == {
        'ipam': {'enableStatefulSet': False},
        'multus': {'multusCNI': {'defaultCniCRName': 'ipvlan-eth0'}},
        'plugins': {'installCNI': False},     # ipvlan_cni installs the plugins by default
    }
    release = helm_json(tmp_path, kube, 'list')
    assert [(r['name'], r['chart'], r['status']) for r in release] == [('spiderpool', 'spiderpool-1.2.2', 'deployed')]
    conf = kube.get('ConfigMap', 'spiderpool-conf', 'kube-system')
    assert conf['data']['clusterNetwork'] == 'ipvlan-eth0'
    assert 'enableStatefulSet: false' in conf['data']['conf.yml']
    agent = kube.get('DaemonSet', 'spiderpool-agent', 'kube-system')
    assert agent['status']['numberReady'] == 2
    # plugins.installCNI=false leaves the chart's RDMA/OVS plugin installer (their defaults are true)
    assert sorted(init_containers(agent)) == ['install-multus-binary', 'install-plugins']
    assert kube.get('Deployment', 'spiderpool-controller', 'kube-system')['status']['readyReplicas'] == 1
    # spiderpool-init (the post-install Job) made the coordinator and the placeholder for the default
    # network; the real controller synced one and turned the other into a NetworkAttachmentDefinition.
    assert kube.get('SpiderCoordinator', 'default')['status']['phase'] == 'Synced'
    assert kube.get('SpiderMultusConfig', 'ipvlan-eth0', 'kube-system')['spec']['cniType'] == 'custom'
    kube.wait_for('NAD ipvlan-eth0', lambda: kube.get('NetworkAttachmentDefinition', 'ipvlan-eth0', 'kube-system'))

    second = run_role(tmp_path, kube, **local_chart)
    assert second.rc == 0, second.out
    assert second.changed == 0, second.out
    assert helm_json(tmp_path, kube, 'history', 'spiderpool')[-1]['revision'] == 1


def test_repo_chart_installs_cni_user_values_win_and_check_mode_changes_nothing(
        real_kube_factory, local_chart, chart_repo, tmp_path):
    """The default source (a chart repository, here served on loopback), the chart installing the CNI
    plugins, another first NIC, a registry mirror and user values on top."""
    kube = real_kube_factory()
    repo_url, fetched = chart_repo
    settings = {**local_chart, 'spiderpool_chart_source': 'repo', 'spiderpool_chart_repo_url': repo_url,
                'ipvlan_cni_install_method': 'chart', 'spiderpool_first_nic': 'eth1',
                'spiderpool_image_registry_override': 'ghcr.m.daocloud.io',
                'spiderpool_values': {'multus': {'multusCNI': {'install': False}}, 'ipam': {'enableIPv6': False}}}
    first = run_role(tmp_path, kube, **settings)
    assert first.rc == 0, first.out
    assert {'/index.yaml', '/spiderpool-1.2.2.tgz'} <= set(fetched)
    values = helm_json(tmp_path, kube, 'get', 'values', 'spiderpool')
    assert values['plugins'] == {'installCNI': True}
    assert values['multus'] == {'multusCNI': {'defaultCniCRName': 'ipvlan-eth1', 'install': False}}
    assert values['ipam'] == {'enableStatefulSet': False, 'enableIPv6': False}
    assert values['global'] == {'imageRegistryOverride': 'ghcr.m.daocloud.io'}
    agent = kube.get('DaemonSet', 'spiderpool-agent', 'kube-system')
    plugins_image = init_containers(agent)['install-plugins']
    assert plugins_image.startswith('ghcr.m.daocloud.io/spidernet-io/spiderpool/spiderpool-plugins:'), plugins_image
    assert kube.get('SpiderMultusConfig', 'ipvlan-eth1', 'kube-system') is not None

    changed = {**settings, 'spiderpool_values': {'ipam': {'enableIPv6': True}}}
    checked = run_role(tmp_path, kube, check=True, **changed)
    assert checked.rc == 0, checked.out
    assert checked.changed >= 1
    assert helm_json(tmp_path, kube, 'history', 'spiderpool')[-1]['revision'] == 1
    assert helm_json(tmp_path, kube, 'get', 'values', 'spiderpool') == values


def test_coordinator_not_synced_fails_with_cause_and_fix(real_kube_factory, local_chart, tmp_path):
    """A cluster without kubeadm's traces (Spiderpool #3054), with the real controller's answer."""
    kube = real_kube_factory(kubeadm_traces=False)
    settings = {**local_chart, 'spiderpool_coordinator_retries': 3}
    failed = run_role(tmp_path, kube, **settings)
    assert failed.rc != 0
    scc = kube.get('SpiderCoordinator', 'default')
    assert scc['status']['phase'] == 'NotReady', scc.get('status')
    assert 'spiderpool: SpiderCoordinator default is NotReady (%s) after 3s' % scc['status']['reason'] in failed.out
    assert 'Known cause (Spiderpool #3054)' in failed.out
    assert 'spiderpool_cluster_networking: {pod_subnet: <pod CIDR>, service_subnet: <service CIDR>}' in failed.out

    # podCIDRType alone does not help: the 1.2.2 controller still wants the service CIDR from kubeadm's traces.
    alone = run_role(tmp_path, kube, **{**settings, 'spiderpool_values': {'coordinator': {'podCIDRType': 'none'}}})
    assert alone.rc != 0 and kube.get('SpiderCoordinator', 'default')['status']['phase'] == 'NotReady', alone.out

    # The documented fix on a re-run: the role writes kubeadm's ConfigMap and carries podCIDRType to the
    # coordinator (the chart's upgrade does not touch it: post-install only); the real controller syncs.
    fixed = {**local_chart, 'spiderpool_values': {'coordinator': {'podCIDRType': 'none'}},
             'spiderpool_cluster_networking': {'pod_subnet': '10.233.64.0/18', 'service_subnet': '10.233.0.0/18'}}
    second = run_role(tmp_path, kube, **fixed)
    assert second.rc == 0, second.out
    scc = kube.get('SpiderCoordinator', 'default')
    assert scc['spec']['podCIDRType'] == 'none' and scc['status']['phase'] == 'Synced'
    assert scc['status']['serviceCIDR'] == ['10.233.0.0/18']
    third = run_role(tmp_path, kube, **fixed)
    assert third.rc == 0 and third.changed == 0, third.out


def test_cluster_networking_never_overwrites_kubeadm_config(real_kube_factory, local_chart, tmp_path):
    kube = real_kube_factory()
    before = kube.get('ConfigMap', 'kubeadm-config', 'kube-system')
    settings = {**local_chart, 'spiderpool_cluster_networking': {'pod_subnet': '10.9.0.0/16', 'service_subnet': '10.8.0.0/16'}}
    first = run_role(tmp_path, kube, **settings)
    assert first.rc == 0, first.out
    assert kube.get('ConfigMap', 'kubeadm-config', 'kube-system')['data'] == before['data']
    assert kube.get('SpiderCoordinator', 'default')['status']['serviceCIDR'] == ['10.96.0.0/12']


def test_local_chart_of_another_version_is_refused(real_kube_factory, local_chart, chart, tmp_path):  # pylint: disable=redefined-outer-name
    kube = real_kube_factory()
    kube.reset_stats()
    r = run_role(tmp_path, kube, **{**local_chart, 'spiderpool_chart_version': '1.2.1'})
    assert r.rc != 0
    assert 'spiderpool: {0} is chart spiderpool 1.2.2, expected spiderpool 1.2.1'.format(chart) in r.out
    assert kube.request_counts()['total'] == 0


def test_render_writes_values_and_contacts_nothing(real_kube_factory, tmp_path):
    kube = real_kube_factory()
    kube.reset_stats()
    out = tmp_path / 'render'
    variables = dict(underlay_mode='render', underlay_render_dir=str(out), spiderpool_helm_binary='/nonexistent/helm',
                     spiderpool_chart_source='oci', spiderpool_chart_oci_ref='oci://registry.example/charts/spiderpool')
    first = run_role(tmp_path, kube, **variables)
    assert first.rc == 0, first.out
    assert kube.request_counts()['total'] == 0, 'render mode must not contact the cluster'
    values = yaml.safe_load((out / 'helm' / 'spiderpool-values.yaml').read_text())
    assert values == {'ipam': {'enableStatefulSet': False},
                      'multus': {'multusCNI': {'defaultCniCRName': 'ipvlan-eth0'}},
                      'plugins': {'installCNI': False}}
    readme = (out / 'helm' / 'README.md').read_text()
    assert 'helm upgrade --install spiderpool oci://registry.example/charts/spiderpool' in readme
    assert '--version 1.2.2 --namespace kube-system' in readme
    kustomization = yaml.safe_load((out / 'kustomization.yaml').read_text())
    assert kustomization['resources'] == [], 'Helm values are not kustomize resources'
    again = run_role(tmp_path, kube, **variables)
    assert again.rc == 0 and again.changed == 0, again.out


def node_inventory(tmp_path, first_nics):
    """k8s_cluster nodes as the ipvlan_cni preflight leaves them: ENIs plus the MAC -> interface fact."""
    hosts = {}
    for index, nic in enumerate(first_nics):
        macs = ['00:16:3e:00:0%d:01' % index, '00:16:3e:00:0%d:02' % index]
        hosts['node-%d' % index] = {
            'alicloud_enis': [{'id': 'eni-%d0' % index, 'type': 'Primary', 'mac': macs[0].upper()},
                              {'id': 'eni-%d1' % index, 'type': 'Secondary', 'mac': macs[1]}],
            'ipvlan_cni_interfaces': {macs[0]: nic, macs[1]: 'other%d' % index}}
    path = tmp_path / 'inventory.yml'
    path.write_text(json.dumps({'k8s_cluster': {'hosts': hosts}}))
    return str(path)


def test_first_nic_comes_from_the_node_preflight(tmp_path):
    out = tmp_path / 'render'
    r = run_role(tmp_path, inventory=node_inventory(tmp_path, ['ens5', 'ens5']),
                 underlay_mode='render', underlay_render_dir=str(out))
    assert r.rc == 0, r.out
    values = yaml.safe_load((out / 'helm' / 'spiderpool-values.yaml').read_text())
    assert values['multus']['multusCNI']['defaultCniCRName'] == 'ipvlan-ens5'
    r = run_role(tmp_path, inventory=node_inventory(tmp_path, ['ens5', 'eth0']),
                 underlay_mode='render', underlay_render_dir=str(out))
    assert r.rc != 0
    assert 'spiderpool: the nodes name their primary ENI interface differently (ens5, eth0)' in r.out


def test_bad_input_fails_in_one_line_and_touches_nothing(real_kube_factory, tmp_path):
    kube = real_kube_factory()
    kube.reset_stats()
    r = run_role(tmp_path, kube, spiderpool_chart_source='oci', spiderpool_chart_oci_ref='registry.example/spiderpool')
    assert r.rc != 0
    assert "spiderpool: bad input - mode=apply render_dir='', chart_source=oci oci_ref='registry.example/spiderpool'" in r.out
    assert kube.request_counts()['total'] == 0


def leaf_paths(tree, prefix=()):
    if isinstance(tree, dict) and tree:
        for key, value in tree.items():
            yield from leaf_paths(value, prefix + (key,))
    else:
        yield prefix


def has_path(tree, path):
    for key in path:
        if not isinstance(tree, dict) or key not in tree:
            return False
        tree = tree[key]
    return True


@pytest.fixture
def reference_values(chart):  # pylint: disable=redefined-outer-name
    with open(os.path.join(chart, 'values.yaml'), encoding='utf-8') as handle:
        return yaml.safe_load(handle)


def test_every_values_key_the_role_sets_exists_in_the_real_chart(reference_values, tmp_path):  # pylint: disable=redefined-outer-name
    out = tmp_path / 'render'
    r = run_role(tmp_path, underlay_mode='render', underlay_render_dir=str(out), ipvlan_cni_install_method='chart',
                 spiderpool_image_registry_override='ghcr.m.daocloud.io')
    assert r.rc == 0, r.out
    values = yaml.safe_load((out / 'helm' / 'spiderpool-values.yaml').read_text())
    paths = list(leaf_paths(values))
    assert len(paths) == 4
    assert [p for p in paths if not has_path(reference_values, p)] == []
