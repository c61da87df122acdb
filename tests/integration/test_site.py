"""playbooks/site.yml end to end on the offline lab: the lab dynamic inventory against the ECS/VPC
emulator (inventories/lab/world.yml), every stage against the Kubernetes double, real helm on the
local stand-in Spiderpool chart; then the same run again, which must change nothing.

The lab hosts are emulated, not machines: the node stage runs on localhost (ansible_connection=local)
with a temporary CNI directory per host and a local plugins tarball. Its ipvlan preflight is skipped
(ipvlan_cni_preflight=false) because this kernel lacks ipvlan; test_ipvlan_cni.py proves the
preflight fails clearly here. Without the preflight's MAC -> interface map the planner names ENIs
eth<device index>, which is what the lab's nodes would report.

The double plays the rest of the cluster: kubelet, Spiderpool webhooks and IPAM, the
spiderpool-controller's SpiderCoordinator status (CoordinatorController) and the pods' network for
the verification probes (Network). Render mode runs site.yml against no cluster at all.
"""
import base64
import fnmatch
import hashlib
import ipaddress
import json
import os
import subprocess
import sys

import pytest
import yaml

from cloud_helpers import LAB_INVENTORY, LAB_WORLD, ROOT, VENV_BIN, EcsEmulator, cloud_env, load_world, run_playbook, write_world
from cluster_sim import CoordinatorController, Network, minimal_crds, plugins_tarball
from kube_fixtures import SPIDERPOOL_CRDS, kube_factory  # noqa: F401  pylint: disable=unused-import
from real_cluster import real_kube_factory, spiderpool_chart  # noqa: F401  pylint: disable=unused-import

sys.path.insert(0, os.path.join(ROOT, '.collections'))
from ansible_collections.underlay.alicloud.tests.unit.utils.spiderpool_crds import assert_valid  # noqa: E402

SITE = os.path.join(ROOT, 'playbooks', 'site.yml')
CHART = os.path.join(ROOT, 'tests', 'integration', 'files', 'spiderpool-chart')
HELM = os.path.join(ROOT, '.cache', 'bin', 'helm')
POOL_API = 'spiderpool.spidernet.io/v2beta1'
KEY_SECRET = 'labsecret'
SECRET_FORMS = (KEY_SECRET, base64.b64encode(KEY_SECRET.encode()).decode())

pytestmark = pytest.mark.skipif(not os.access(HELM, os.X_OK), reason='helm binary not set up (make env)')


def lab_group_vars():
    with open(os.path.join(os.path.dirname(LAB_INVENTORY), 'group_vars', 'all.yml'), encoding='utf-8') as handle:
        return yaml.safe_load(handle)


def lab_nodes():
    """The instances the lab inventory selects (cluster=lab, Running), with their vSwitches."""
    region = load_world(LAB_WORLD)['regions']['cn-hangzhou']
    vswitches = {v['id']: v for vpc in region['vpcs'] for v in vpc['vswitches']}
    nodes = [i for i in region['instances'] if i['tags'].get('cluster') == 'lab' and i['status'] == 'Running']
    return nodes, vswitches


def addresses(entries):
    """The set of addresses in Spiderpool `ips` entries (single addresses and a-b ranges)."""
    out = set()
    for entry in entries:
        first, last = (entry.split('-') + [''])[:2]
        start, end = ipaddress.ip_address(first), ipaddress.ip_address(last or first)
        out.update(ipaddress.ip_address(n) for n in range(int(start), int(end) + 1))
    return out


def expected_pools():
    """One pool per node x NIC x family that has secondary addresses, straight from the world file."""
    nodes, vswitches = lab_nodes()
    pools = {}
    for node in nodes:
        for index, eni in enumerate(node['enis']):
            vsw = vswitches[eni['vswitch']]
            for family, ips, cidr in ((4, eni['secondary_ips'], vsw['cidr']), (6, eni['ipv6_ips'], vsw['ipv6_cidr'])):
                if not ips:
                    continue
                network = ipaddress.ip_network(cidr)
                pools['%s-eth%d-v%d' % (node['hostname'], index, family)] = {
                    'ips': addresses(ips), 'subnet': cidr, 'nodeName': [node['hostname']],
                    'multusName': ['kube-system/ipvlan-eth%d' % index],
                    'gateway': str(network[-3] if family == 4 else network[0])}
    return pools


def pools_as_expected(objects):
    """SpiderIPPools in the form of expected_pools()."""
    return {p['metadata']['name']: {'ips': addresses(p['spec']['ips']), 'subnet': p['spec']['subnet'],
                                    'nodeName': p['spec']['nodeName'], 'multusName': p['spec']['multusName'],
                                    'gateway': p['spec'].get('gateway')} for p in objects}


def multus_as_expected(objects):
    """(namespace, cniType, ipvlan master, has customCNI, ipvlan ippools without the CRD default matchMasterSubnet: false)."""
    def ippools(spec):
        pools = dict((spec.get('ipvlan') or {}).get('ippools') or {})
        if pools.get('matchMasterSubnet') is False:
            del pools['matchMasterSubnet']
        return pools
    return {m['metadata']['name']: (m['metadata']['namespace'], m['spec']['cniType'], m['spec'].get('ipvlan', {}).get('master'),
                                    'customCNI' in m['spec'], ippools(m['spec'])) for m in objects}


# eth0's vSwitch has no IPv6: its pods ask for IPv4 only; eth1 is dual-stack. The wildcards cover
# every node's pool of the interface (expected_pools()).
EXPECTED_MULTUS = {'ipvlan-eth0': ('kube-system', 'ipvlan', ['eth0'], False, {'ipv4': ['*-eth0-v4']}),
                   'ipvlan-eth1': ('kube-system', 'ipvlan', ['eth1'], False, {'ipv4': ['*-eth1-v4'], 'ipv6': ['*-eth1-v6']})}


def test_expected_multus_ippools_select_exactly_the_expected_pools():
    for name, (_ns, _cni, _master, _custom, ippools) in EXPECTED_MULTUS.items():
        for family in (4, 6):
            selected = {p for pattern in ippools.get('ipv%d' % family, []) for p in expected_pools() if fnmatch.fnmatchcase(p, pattern)}
            assert selected == {p for p, spec in expected_pools().items()
                                if spec['multusName'] == ['kube-system/' + name] and p.endswith('-v%d' % family)}


def assert_no_secret(text, where):
    for form in SECRET_FORMS:
        assert form not in text, 'the AccessKey secret appears in %s' % where


@pytest.fixture
def cloud():
    with EcsEmulator(LAB_WORLD) as emu:
        yield emu


@pytest.fixture
def cluster(kube_factory, tmp_path):  # noqa: F811  pylint: disable=redefined-outer-name
    """The lab's Kubernetes cluster: its three Nodes, Spiderpool's CRDs, webhooks, IPAM and controller, a network."""
    real_crds = os.path.isdir(SPIDERPOOL_CRDS)
    double = kube_factory(crds=SPIDERPOOL_CRDS if real_crds else None, simulate_kubelet=True,
                          spiderpool_webhooks=True, spiderpool_ipam=True)
    if not real_crds:
        for crd in minimal_crds():
            double.apply(crd)
    nodes = lab_nodes()[0]
    for node in nodes:
        labels = {'node-role.kubernetes.io/control-plane': ''} if node['tags']['role'] == 'master' else None
        double.add_node(node['hostname'], labels=labels, internal_ip=node['enis'][0]['primary_ip'])
    # What the chart's post-install job leaves behind with defaultCniCRName=ipvlan-eth0 (#2700).
    double.apply({'apiVersion': POOL_API, 'kind': 'SpiderMultusConfig', 'metadata': {'name': 'ipvlan-eth0', 'namespace': 'kube-system'},
                  'spec': {'cniType': 'custom', 'customCNI': '', 'enableCoordinator': False}})
    double.set_exec_table([Network(double, tmp_path / 'net-bin')])
    controller = CoordinatorController(double, kubeadm_cluster=True)
    controller.start()
    yield double
    controller.stop()


def site_env(emu, double, tmp_path):
    env = double.env(cloud_env(emu))
    env.update({'HELM_CACHE_HOME': str(tmp_path / 'helm' / 'cache'), 'HELM_CONFIG_HOME': str(tmp_path / 'helm' / 'config'),
                'HELM_DATA_HOME': str(tmp_path / 'helm' / 'data'), 'ANSIBLE_PIPELINING': '1'})
    return env


def extra_vars(tmp_path, **variables):
    path = tmp_path / ('extra-%d.json' % len(list(tmp_path.glob('extra-*.json'))))
    path.write_text(json.dumps(dict({'ansible_connection': 'local', 'ansible_python_interpreter': sys.executable}, **variables)))
    return '@' + str(path)


def assert_unchanged(run, hosts=('localhost', 'master', 'worker', 'worker2')):
    recap = run.recap()
    assert sorted(recap) == list(hosts), run.output
    changed = {host: counts['changed'] for host, counts in recap.items() if counts['changed']}
    assert not changed, 'a second run changed %s:\n%s' % (changed, run.output)


def test_apply_then_rerun_changes_nothing(cloud, cluster, tmp_path):
    """Every stage in apply mode; the node stage on localhost without the ipvlan preflight (this
    kernel lacks ipvlan; test_ipvlan_cni.py proves that preflight fails clearly here)."""
    tarball, sha256 = plugins_tarball(tmp_path)
    report_dir = tmp_path / 'report'
    variables = extra_vars(
        tmp_path,
        # Node stage: no ipvlan in this kernel, so no preflight; one CNI dir per (emulated) host.
        ipvlan_cni_preflight=False, ipvlan_cni_plugins_archive=str(tarball), ipvlan_cni_plugins_checksum=sha256,
        ipvlan_cni_bin_dir=str(tmp_path / 'cni') + '/{{ inventory_hostname }}',
        ipvlan_cni_download_dir=str(tmp_path / 'cni-cache') + '/{{ inventory_hostname }}',
        spiderpool_chart_source='local', spiderpool_chart_path=CHART, spiderpool_wait_timeout=60,
        spiderpool_coordinator_retries=20, spiderpool_coordinator_delay=1,
        alicloud_ccm_wait_timeout=60,
        underlay_verify_report_dir=str(report_dir), underlay_verify_wait_timeout=60, underlay_verify_ping_timeout=1)
    env = site_env(cloud, cluster, tmp_path)

    first = run_playbook(SITE, env, '-e', variables)
    assert_no_secret(first.output, 'the output')
    nodes = lab_nodes()[0]
    for node in nodes:
        installed = tmp_path / 'cni' / node['hostname'] / 'ipvlan'
        assert installed.read_text() == '#!/bin/sh\necho ipvlan\n' and os.access(installed, os.X_OK)

    # Pools and multus configs: what the lab's ENIs give, the chart's placeholder replaced.
    assert pools_as_expected(cluster.objects('SpiderIPPool')) == expected_pools()
    assert multus_as_expected(cluster.objects('SpiderMultusConfig')) == EXPECTED_MULTUS
    values = json.loads(subprocess.run([HELM, 'get', 'values', 'spiderpool', '-n', 'kube-system', '-o', 'json'], env=env,
                                       capture_output=True, text=True, check=True, timeout=60).stdout)
    assert values['multus']['multusCNI']['defaultCniCRName'] == 'ipvlan-eth0'
    assert cluster.get('SpiderCoordinator', 'default')['status']['phase'] == 'Synced'

    # CCM: providerIDs, the cloud-config Secret (the one place the key belongs), the workload.
    assert {n['metadata']['name']: n['spec'].get('providerID') for n in cluster.objects('Node')} == {
        node['hostname']: 'cn-hangzhou.' + node['id'] for node in nodes}
    cloud_config = cluster.get('Secret', 'cloud-config', 'kube-system')
    assert cloud_config is not None
    ccm = cluster.get('DaemonSet', 'cloud-controller-manager', 'kube-system')
    command = ccm['spec']['template']['spec']['containers'][0]['command']
    assert '--cluster-cidr=' + lab_group_vars()['alicloud_ccm_cluster_cidr'] in command
    assert ccm['status']['numberReady'] == 1

    # Verification: every node x NIC pod, all green, and cleaned up.
    report = json.loads((report_dir / 'report.json').read_text())
    assert report['result'] == 'pass' and not report['failures'] and not report['failed_checks'], report
    assert sorted((row['node'], row['nic']) for row in report['rows']) == sorted(
        (node['hostname'], nic) for node in nodes for nic in ('eth0', 'eth1'))
    assert all(check['ok'] == check['total'] for check in report['checks'].values()), report['checks']
    assert not cluster.objects('Pod', 'underlay-verify')

    second = run_playbook(SITE, env, '-e', variables)
    assert_unchanged(second)
    assert_no_secret(second.output, 'the output of the second run')
    assert pools_as_expected(cluster.objects('SpiderIPPool')) == expected_pools()


@pytest.fixture
def real_lab(real_kube_factory):  # noqa: F811  pylint: disable=redefined-outer-name
    """The lab's cluster on a real API server: its three Nodes, named and addressed like the ECS hosts."""
    kube = real_kube_factory(nodes=())
    for node in lab_nodes()[0]:
        kube.add_node(node['hostname'], control_plane=node['tags']['role'] == 'master',
                      internal_ip=node['enis'][0]['primary_ip'])
    return kube


def test_apply_on_a_real_cluster_then_rerun_changes_nothing(cloud, real_lab, tmp_path):
    """site.yml's apply stages against a real API server with the real Spiderpool 1.2.2 chart,
    controller and webhooks, then the same run again. The verification stage is left out: its probes
    exec into pods, and no container runs without kubelets (the test above runs it on the double)."""
    tarball, sha256 = plugins_tarball(tmp_path)
    variables = extra_vars(
        tmp_path,
        ipvlan_cni_preflight=False, ipvlan_cni_plugins_archive=str(tarball), ipvlan_cni_plugins_checksum=sha256,
        ipvlan_cni_bin_dir=str(tmp_path / 'cni') + '/{{ inventory_hostname }}',
        ipvlan_cni_download_dir=str(tmp_path / 'cni-cache') + '/{{ inventory_hostname }}',
        spiderpool_chart_source='local', spiderpool_chart_path=spiderpool_chart(), spiderpool_wait_timeout=120,
        spiderpool_coordinator_retries=30, spiderpool_coordinator_delay=1, alicloud_ccm_wait_timeout=120)
    env = site_env(cloud, real_lab, tmp_path)

    first = run_playbook(SITE, env, '-e', variables, '--skip-tags', 'verify')
    assert_no_secret(first.output, 'the output')
    assert pools_as_expected(real_lab.objects('SpiderIPPool')) == expected_pools()
    assert multus_as_expected(real_lab.objects('SpiderMultusConfig', 'kube-system')) == EXPECTED_MULTUS
    real_lab.wait_for('NADs from the real controller', lambda: sorted(
        n['metadata']['name'] for n in real_lab.objects('NetworkAttachmentDefinition', 'kube-system')) == sorted(EXPECTED_MULTUS))
    assert real_lab.get('SpiderCoordinator', 'default')['status']['phase'] == 'Synced'
    nodes = lab_nodes()[0]
    assert {n['metadata']['name']: n['spec'].get('providerID') for n in real_lab.objects('Node')} == {
        node['hostname']: 'cn-hangzhou.' + node['id'] for node in nodes}
    ccm = real_lab.get('DaemonSet', 'cloud-controller-manager', 'kube-system')
    assert ccm['status']['numberReady'] == 1

    real_lab.reset_stats()
    second = run_playbook(SITE, env, '-e', variables, '--skip-tags', 'verify')
    assert_unchanged(second)
    assert_no_secret(second.output, 'the output of the second run')
    assert pools_as_expected(real_lab.objects('SpiderIPPool')) == expected_pools()


def read_render(directory):
    with open(os.path.join(directory, 'kustomization.yaml'), encoding='utf-8') as handle:
        resources = yaml.safe_load(handle)['resources']
    objects = []
    for name in resources:
        with open(os.path.join(directory, name), encoding='utf-8') as handle:
            objects.extend(doc for doc in yaml.safe_load_all(handle) if doc)
    return resources, objects


def test_render_contacts_nothing_and_writes_one_directory(cloud, real_kube_factory, tmp_path):  # noqa: F811
    """Render mode: no request reaches the cluster; the whole configuration lands in one directory.
    The second run names the same directory relative to where ansible-playbook starts: every stage
    must resolve it the same way, so that nothing changes."""
    double = real_kube_factory()  # reachable, but render mode must not send it a single request
    env = double.env(cloud_env(cloud))
    env['HELM_CACHE_HOME'] = str(tmp_path / 'no-helm')
    out = tmp_path / 'render'
    double.reset_stats()

    first = run_playbook(SITE, env, '-e', 'underlay_mode=render', '-e', 'underlay_render_dir=%s' % out)
    assert double.request_counts()['total'] == 0, 'render mode contacted the cluster'
    assert sorted(str(p.relative_to(out)) for p in out.rglob('*') if p.is_file()) == [
        'alicloud-ccm/cloud-controller-manager.yaml', 'alicloud-ccm/rbac.yaml', 'helm/README.md', 'helm/spiderpool-values.yaml',
        'kustomization.yaml', 'spiderpool-networks/spiderippools.yaml', 'spiderpool-networks/spidermultusconfigs.yaml']
    resources, objects = read_render(out)
    assert sorted(resources) == ['alicloud-ccm/cloud-controller-manager.yaml', 'alicloud-ccm/rbac.yaml',
                                 'spiderpool-networks/spiderippools.yaml', 'spiderpool-networks/spidermultusconfigs.yaml']
    values = yaml.safe_load((out / 'helm' / 'spiderpool-values.yaml').read_text())
    assert values['multus']['multusCNI']['defaultCniCRName'] == 'ipvlan-eth0'
    assert pools_as_expected([o for o in objects if o['kind'] == 'SpiderIPPool']) == expected_pools()
    assert multus_as_expected([o for o in objects if o['kind'] == 'SpiderMultusConfig']) == EXPECTED_MULTUS
    assert_valid([o for o in objects if o['kind'] in ('SpiderIPPool', 'SpiderMultusConfig')])
    kinds = {o['kind'] for o in objects}
    assert {'DaemonSet', 'ClusterRole', 'ServiceAccount'} <= kinds and 'Secret' not in kinds
    kustomized = subprocess.run([os.path.join(VENV_BIN, 'kubectl'), 'kustomize', str(out)], capture_output=True, text=True,
                                timeout=60, check=False)
    assert kustomized.returncode == 0, kustomized.stderr
    assert len([d for d in yaml.safe_load_all(kustomized.stdout) if d]) == len(objects)
    for path in out.rglob('*'):
        if path.is_file():
            assert_no_secret(path.read_text(), str(path))
    assert_no_secret(first.output, 'the output')

    # Same directory, relative to the start directory.
    second = run_playbook(SITE, env, '-e', 'underlay_mode=render', '-e', 'underlay_render_dir=render', cwd=str(tmp_path))
    # No task on a node: only the run-once tasks of the node plays report, on the first node.
    assert_unchanged(second, hosts=('localhost', 'master'))
    assert double.request_counts()['total'] == 0
    assert not os.path.exists(os.path.join(ROOT, 'playbooks', 'render')) and not os.path.exists(os.path.join(ROOT, 'render'))


def state_hash(emu):
    return hashlib.sha256(json.dumps(emu.state(), sort_keys=True).encode()).hexdigest()


def lab_inventory_dir(tmp_path, world_filters=None, group_vars=None, host_vars=None):
    """A copy of the lab inventory (config and group_vars) in its own directory, with optional
    changed filters, more group variables and per-host variables."""
    directory = tmp_path / 'inventory'
    (directory / 'group_vars').mkdir(parents=True)
    config = load_world(LAB_INVENTORY)
    config['filters'].update(world_filters or {})
    (directory / 'lab.alicloud_ecs.yml').write_text(yaml.safe_dump(config))
    (directory / 'group_vars' / 'all.yml').write_text(yaml.safe_dump(dict(lab_group_vars(), **(group_vars or {}))))
    for host, variables in (host_vars or {}).items():
        (directory / 'host_vars').mkdir(exist_ok=True)
        (directory / 'host_vars' / ('%s.yml' % host)).write_text(yaml.safe_dump(variables))
    return str(directory)


def renamed_world(tmp_path, instance_id, hostname):
    world = load_world(LAB_WORLD)
    for instance in world['regions']['cn-hangzhou']['instances']:
        if instance['id'] == instance_id:
            instance['hostname'] = hostname
    return write_world(tmp_path, world)


# An ENI shape that changes worker2 (2 -> 4 secondary IPv4 addresses per ENI) when the run goes ahead.
GROW_WORKER2 = ('-e', 'alicloud_enis_ipv4_per_eni=4')
# underlay_render_dir is added by the test; None: leave it out.
WHOLE_RUN_CASES = {
    'empty inventory': ({'Tag': [{'Key': 'cluster', 'Value': 'no-such-cluster'}]}, None, (),
                        ['inventory group k8s_cluster has no hosts']),
    'invalid node name': ({}, ('i-bp1worker2', 'Worker_2.LAB'), GROW_WORKER2,
                          ["host Worker_2.LAB: Kubernetes node name 'Worker_2.LAB' (from alicloud_hostname) "
                           'is not a valid RFC 1123 subdomain']),
    'cluster CIDR with host bits': ({}, None, GROW_WORKER2 + ('-e', 'alicloud_ccm_cluster_cidr=10.233.64.1/18'),
                                    ['alicloud_ccm_cluster_cidr: 10.233.64.1/18 is not a network in CIDR notation']),
    'two IPv4 cluster CIDRs': ({}, None, GROW_WORKER2 + ('-e', 'alicloud_ccm_cluster_cidr=10.233.64.0/18,10.244.0.0/16'),
                               ['10.233.64.0/18 and 10.244.0.0/16 are both IPv4']),
    'render mode without a directory': ({}, None, GROW_WORKER2 + ('-e', 'underlay_render_dir='),
                                        ['underlay_mode is render but underlay_render_dir is empty']),
}


@pytest.mark.parametrize('case', sorted(WHOLE_RUN_CASES))
def test_whole_run_input_is_checked_before_any_change(case, tmp_path):
    """One early step checks what later stages would refuse: nothing is written to the cloud or
    the render directory, and the error names the bad value."""
    filters, rename, args, messages = WHOLE_RUN_CASES[case]
    world = renamed_world(tmp_path, *rename) if rename else LAB_WORLD
    with EcsEmulator(world) as emu:
        before = state_hash(emu)
        out = tmp_path / 'render'
        run = run_playbook(SITE, cloud_env(emu), '-e', 'underlay_mode=render', '-e', 'underlay_render_dir=%s' % out, *args,
                           inventory=lab_inventory_dir(tmp_path, filters), expect_rc=2)
        assert state_hash(emu) == before, 'the cloud changed'
        assert emu.request_counts().get('AssignPrivateIpAddresses', 0) == 0
    for message in messages:
        assert message in run.output, run.output
    assert not out.exists(), 'files were rendered: %s' % sorted(str(p) for p in out.rglob('*'))
    assert 'Whole-run checks' in run.output and 'Cloud preparation' not in run.output.split('PLAY RECAP')[0]
    assert_no_secret(run.output, 'the output')


def test_stage_failed_on_a_node_leaves_its_pools_alone(tmp_path):
    """The ENI stage fails on worker2 (more addresses than its quota): the pool stage must not
    plan worker2's pools from the inventory's stale facts, and says so."""
    with EcsEmulator(LAB_WORLD) as emu:
        out = tmp_path / 'render'
        inventory = lab_inventory_dir(tmp_path, group_vars={'alicloud_enis_ipv4_per_eni': 5},
                                      host_vars={'worker2': {'alicloud_enis_ipv4_per_eni': 9}})
        run = run_playbook(SITE, cloud_env(emu), '-e', 'underlay_mode=render', '-e', 'underlay_render_dir=%s' % out,
                           inventory=inventory, expect_rc=2)
    assert 'the ENI stage did not finish on worker2 in this run, so their ENI facts are stale' in run.output, run.output
    assert not (out / 'spiderpool-networks').exists()
    assert run.recap()['worker2']['failed'] == 1
    assert_no_secret(run.output, 'the output')
