"""Role underlay.alicloud.underlay_verify, run by ansible-playbook against the Kubernetes double.

The double plays kubelet and Spiderpool IPAM: DaemonSet pods become Running with the lowest free IP
of the SpiderIPPool serving their node and NAD. `kubectl exec` answers come from an exec rule that
runs the role's probe script in a real `sh`, with stand-in `ping` and `wget` that answer from a
reachability table built from the double's objects (pod, node and Service addresses), minus the
pairs a test breaks. Nothing real is pinged: the network is scripted.
"""
import http.server
import ipaddress
import json
import os
import subprocess
import sys
import threading
import time

import pytest
import yaml

from cloud_helpers import EcsEmulator, cloud_env, write_world
from cluster_sim import Network, minimal_crds
from test_egress_modules import lab_world, mutations
from kube_fixtures import ROOT, SPIDERPOOL_CRDS, kube_factory  # noqa: F401  pylint: disable=unused-import

import kube_spiderpool  # noqa: E402  pylint: disable=import-error,wrong-import-order

PLAYBOOK = os.path.join(ROOT, 'playbooks', 'underlay_verify.yml')
POOL_API = 'spiderpool.spidernet.io/v2beta1'
NS = 'underlay-verify'

# node -> (InternalIP, eth0 pool range, eth1 pool range)
TOPOLOGY = {
    'node-1': ('172.31.199.183', '172.31.199.185-172.31.199.189', '192.168.0.156-192.168.0.160'),
    'node-2': ('172.31.199.184', '172.31.199.190-172.31.199.194', '192.168.0.161-192.168.0.165'),
    'node-3': ('172.31.199.182', '172.31.199.195-172.31.199.199', '192.168.0.166-192.168.0.170'),
}
SUBNETS = {'eth0': ('172.31.192.0/20', '172.31.207.253'), 'eth1': ('192.168.0.0/24', '192.168.0.253')}


class MisallocatingPools(kube_spiderpool.PoolAllocator):
    """Spiderpool IPAM that hands node-2's eth1 pod an address of node-1's eth1 pool."""

    def allocate(self, pod, node):
        nad = (pod['metadata'].get('annotations') or {}).get('v1.multus-cni.io/default-network', '')
        if node['metadata']['name'] == 'node-2' and nad.endswith('/ipvlan-eth1'):
            return '192.168.0.160'
        return super().allocate(pod, node)


@pytest.fixture
def cluster(kube_factory, tmp_path):  # noqa: F811  pylint: disable=redefined-outer-name
    def make(nodes=2, allocator=None):
        double = kube_factory(simulate_kubelet=True, spiderpool_ipam=True,
                              crds=SPIDERPOOL_CRDS if os.path.isdir(SPIDERPOOL_CRDS) else None)
        if not os.path.isdir(SPIDERPOOL_CRDS):
            for crd in minimal_crds():
                double.apply(crd)
        if allocator:
            double.emulator.kubelet.allocator = allocator(double.store)
        for name in sorted(TOPOLOGY)[:nodes]:
            node_ip, eth0, eth1 = TOPOLOGY[name]
            double.add_node(name, internal_ip=node_ip)
            for nic, ips in (('eth0', eth0), ('eth1', eth1)):
                subnet, gateway = SUBNETS[nic]
                double.apply({'apiVersion': POOL_API, 'kind': 'SpiderIPPool', 'metadata': {'name': '%s-%s-v4' % (name, nic)},
                              'spec': {'default': True, 'ips': [ips], 'subnet': subnet, 'gateway': gateway, 'nodeName': [name],
                                       'multusName': ['kube-system/ipvlan-%s' % nic]}})
        coordinator = {'apiVersion': POOL_API, 'kind': 'SpiderCoordinator', 'metadata': {'name': 'default'},
                       'spec': {'mode': 'auto', 'podCIDRType': 'auto'}, 'status': {'phase': 'Synced'}}
        double.apply(coordinator)
        double.apply(coordinator)  # the second write (an update) sets the status subresource
        network = Network(double, tmp_path / 'bin')
        double.set_exec_table([network])
        double.network = network
        return double
    return make


def run(double, tmp_path, cloud=None, inventory='localhost,', **extra):
    """ansible-playbook underlay_verify.yml against the double; ``cloud``: an ECS/VPC emulator for the egress diagnosis."""
    report_dir = tmp_path / 'report'
    variables = dict({'ansible_python_interpreter': sys.executable, 'underlay_verify_report_dir': str(report_dir),
                      'underlay_verify_wait_timeout': 30,
                      'underlay_verify_ping_timeout': 1}, **extra)
    extra_file = tmp_path / 'extra.json'
    extra_file.write_text(json.dumps(variables))
    env = double.env()
    if cloud:
        env.update((k, v) for k, v in cloud_env(cloud).items() if k.startswith('ALIBABA_CLOUD_'))
    env.update({'ANSIBLE_CONFIG': os.path.join(ROOT, 'ansible.cfg'), 'ANSIBLE_COLLECTIONS_PATH': os.path.join(ROOT, '.collections'),
                'ANSIBLE_NOCOLOR': '1', 'ANSIBLE_FORCE_COLOR': '0', 'PATH': os.path.dirname(sys.executable) + ':' + env['PATH']})
    proc = subprocess.run(['ansible-playbook', '-i', inventory, PLAYBOOK, '-e', '@' + str(extra_file)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    report = json.loads((report_dir / 'report.json').read_text()) if (report_dir / 'report.json').exists() else None
    return proc, report, report_dir


def pods_by_node_nic(double):
    return {(p['spec']['nodeName'], p['metadata']['labels']['underlay.alicloud/nic']): p for p in double.objects('Pod', NS)}


def failed_cells(report):
    return sorted((row['pod'], key) for row in report['rows'] for key, cell in row['cells'].items() if cell['status'] == 'fail')


class FakeCCM(threading.Thread):
    """Plays the cloud-controller-manager: a few seconds after a LoadBalancer Service appears in the test
    namespace, its status gets the external address 127.0.0.1 (where the test's web server listens)."""

    def __init__(self, double, delay=1.0):
        super().__init__(daemon=True)
        self.double, self.delay, self.stopped, self.seen, self.services = double, delay, threading.Event(), {}, {}

    def run(self):
        while not self.stopped.wait(0.2):
            for svc in self.double.objects('Service', NS):
                name = svc['metadata']['name']
                if svc['spec'].get('type') != 'LoadBalancer' or (svc.get('status') or {}).get('loadBalancer', {}).get('ingress'):
                    continue
                self.services[name] = svc
                if time.monotonic() - self.seen.setdefault(name, time.monotonic()) >= self.delay:
                    self.double.set_load_balancer_ip(NS, name, '127.0.0.1')


class LoadBalancerStandIn(http.server.BaseHTTPRequestHandler):
    """Answers 503 to the very first request (a load balancer still warming up), then 200."""

    requests = 0

    def do_GET(self):  # noqa: N802 - http.server naming
        type(self).requests += 1
        self.send_response(503 if type(self).requests == 1 else 200)
        self.end_headers()
        self.wfile.write(b'underlay-verify\n')

    def log_message(self, format, *args):  # pylint: disable=redefined-builtin
        """Quiet."""


@pytest.fixture
def web():
    """An HTTP server on loopback standing in for the load balancers' external address."""
    handler = type('Handler', (LoadBalancerStandIn,), {'requests': 0})
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()


def test_green_run_with_loadbalancers_and_cleanup(cluster, tmp_path, web):
    double = cluster(nodes=2)
    ccm = FakeCCM(double)
    ccm.start()
    services = [{'name': 'uv-l4', 'ports': [{'name': 'tcp', 'port': web, 'protocol': 'TCP', 'targetPort': 'http'}]},
                {'name': 'uv-l7', 'protocol_port': 'http:%d' % web, 'ports': [{'name': 'http', 'port': web, 'protocol': 'TCP', 'targetPort': 'http'}]}]
    try:
        proc, report, report_dir = run(double, tmp_path, underlay_verify_loadbalancer=True, underlay_verify_loadbalancer_services=services,
                                       underlay_verify_loadbalancer_delay=1)
    finally:
        ccm.stopped.set()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert 'ignored=0' in proc.stdout  # the rollout wait succeeded rather than timing out
    assert report['result'] == 'pass' and not report['failures']
    # 2 nodes x 2 NICs: 4 source pods, each probing its node, 3 pods (12 pairs) and 2 Services
    assert len(report['rows']) == 4 and report['probes'] == 4 * (1 + 3 + 2)
    assert report['checks']['pod']['ok'] == 12 and report['checks']['node']['ok'] == 4
    assert report['checks']['service']['ok'] == 8 and report['checks']['pool']['ok'] == 4
    # one exec per source pod, not per pair
    execs = double.request_counts()['execs']
    assert len(execs) == 4 and len({e['pod'] for e in execs}) == 4
    assert all(e['namespace'] == NS and e['command'][:2] == ['sh', '-c'] for e in execs)
    # each pod got its address from its own node x NIC pool (the double's IPAM), and the report says so
    for row in report['rows']:
        assert row['pool'][0]['pool'] == '%s-%s-v4' % (row['node'], row['nic'])
        assert row['pool'][0]['reason'] == 'in pool %s-%s-v4' % (row['node'], row['nic'])
    assert 'Underlay connectivity (underlay-verify): PASS (4 exec calls, 24 probes)' in proc.stdout
    # LoadBalancers: created through the alicloud_ccm role, waited for with progress, probed from the controller
    assert [(lb['target'], lb['status'], lb['url'], lb['reason']) for lb in report['loadbalancers']] == [
        ('uv-l4', 'ok', 'http://127.0.0.1:%d/' % web, 'HTTP 200 after 2 attempt(s)'),
        ('uv-l7', 'ok', 'http://127.0.0.1:%d/' % web, 'HTTP 200 after 1 attempt(s)')]
    assert 'FAILED - RETRYING: [localhost]: Probe each LoadBalancer address from the controller' in proc.stdout
    assert 'loadbalancer   2/2   ok  controller -> LoadBalancer address' in proc.stdout
    l7 = ccm.services['uv-l7']
    assert l7['spec']['externalTrafficPolicy'] == 'Local'
    assert l7['metadata']['annotations']['service.beta.kubernetes.io/alibaba-cloud-loadbalancer-protocol-port'] == 'http:%d' % web
    assert l7['spec']['selector'] == {'app.kubernetes.io/name': 'underlay-verify', 'app.kubernetes.io/part-of': 'underlay-alicloud',
                                      'underlay.alicloud/nic': 'eth0'}
    for name in ('report.json', 'report.md', 'report.html'):
        assert (report_dir / name).stat().st_size > 0
    assert not (report_dir / 'diagnostics.yaml').exists()
    # cleanup: namespace, DaemonSets, Services and pods are gone
    assert not double.get('Namespace', NS)
    assert not double.objects('Pod', NS) and not double.objects('DaemonSet', NS) and not double.objects('Service', NS)


def test_one_broken_pair_marks_that_cell_and_fails(cluster, tmp_path):
    double = cluster(nodes=2)
    # the node-1/eth0 pod (first free IP .185) cannot reach the node-2/eth1 pod (.161)
    double.network.broken.add(('172.31.199.185', '192.168.0.161'))
    proc, report, report_dir = run(double, tmp_path)
    assert proc.returncode != 0
    assert report['result'] == 'fail' and report['failed_checks'] == ['pod']
    rows = {(r['node'], r['nic']): r['pod'] for r in report['rows']}
    assert failed_cells(report) == [(rows[('node-1', 'eth0')], 'pod/' + rows[('node-2', 'eth1')])]
    failure = report['failures'][0]
    assert failure['address'] == '192.168.0.161' and failure['command'] == 'ping -c 2 -w 3 -W 1 192.168.0.161'
    assert '0 packets received, 100% packet loss' in failure['output']
    assert 'Underlay verification FAILED: pod' in proc.stdout
    html = (report_dir / 'report.html').read_text()
    assert html.count('<td class="fail">') == 1 and '$ ping -c 2 -w 3 -W 1 192.168.0.161' in html
    # diagnostics collected before failing
    assert 'SpiderCoordinator phase(s): default=Synced' in proc.stdout
    diag = yaml.safe_load((report_dir / 'diagnostics.yaml').read_text())
    assert diag['failure'].startswith('Underlay verification FAILED: pod')
    assert [c['status']['phase'] for c in diag['spidercoordinators']] == ['Synced']
    assert len(diag['pods']) == 4 and {p['metadata']['name'] for p in diag['spiderippools']} >= {'node-1-eth0-v4', 'node-2-eth1-v4'}
    assert len(diag['daemonsets']) == 2 and len(diag['services']) == 2
    assert 'events' in diag and 'spidermultusconfigs' in diag and 'network_attachment_definitions' in diag
    # and still cleaned up
    assert not double.objects('Pod', NS)


def test_ip_outside_pool_then_rerun_on_more_nodes(cluster, tmp_path):
    double = cluster(nodes=2, allocator=MisallocatingPools)
    proc, report = run(double, tmp_path, underlay_verify_keep=True)[:2]
    assert proc.returncode != 0
    assert report['failed_checks'] == ['pool']
    bad = [p for row in report['rows'] for p in row['pool'] if p['status'] == 'fail']
    assert [(b['address'], b['reason']) for b in bad] == [(
        '192.168.0.160', '192.168.0.160 is outside pool node-2-eth1-v4 for node node-2 and network kube-system/ipvlan-eth1; '
                         'it belongs to pool node-1-eth1-v4')]
    assert 'FAIL pool: ' in proc.stdout and '192.168.0.160 is outside pool node-2-eth1-v4' in proc.stdout
    # kept: the workloads stay; exec calls = pods (4), pod pairs = 12
    kept = {p['metadata']['name'] for p in double.objects('Pod', NS)}
    assert len(kept) == 4 and double.request_counts()['exec_count'] == 4
    # a third node joins; the re-run reuses the kept workloads and covers it: 6 pods, 30 pairs, 6 execs
    node_ip, eth0, eth1 = TOPOLOGY['node-3']
    double.add_node('node-3', internal_ip=node_ip)
    for nic, ips in (('eth0', eth0), ('eth1', eth1)):
        double.apply({'apiVersion': POOL_API, 'kind': 'SpiderIPPool', 'metadata': {'name': 'node-3-%s-v4' % nic},
                      'spec': {'ips': [ips], 'subnet': SUBNETS[nic][0], 'nodeName': ['node-3'], 'multusName': ['kube-system/ipvlan-%s' % nic]}})
    double.reset_stats()
    proc, report = run(double, tmp_path)[:2]
    assert report['failed_checks'] == ['pool'] and len(report['rows']) == 6
    assert report['checks']['pod']['total'] == 30 and report['checks']['pod']['ok'] == 30
    assert double.request_counts()['exec_count'] == 6 == report['exec_calls']
    assert kept < {row['pod'] for row in report['rows']}  # the kept pods were reused, not recreated
    assert not double.objects('Pod', NS)


def test_render_mode_does_nothing(cluster, tmp_path):
    double = cluster(nodes=1)
    double.reset_stats()
    proc, report = run(double, tmp_path, underlay_mode='render')[:2]
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert 'underlay_verify skipped: underlay_mode is render' in proc.stdout
    assert report is None and double.request_counts()['total'] == 0


EGRESS_URL = 'http://203.0.113.80/'
SNAT_COVERED = ipaddress.ip_network('172.31.0.0/16')   # the user's entry in lab_world(user_nat=True)


class EgressNetwork(Network):
    """The scripted data path plus the Internet: reachable from pods whose address a SNAT entry covers."""

    def reachable(self, source_ip):
        extra = ['203.0.113.80'] if source_ip and ipaddress.ip_address(source_ip) in SNAT_COVERED else []
        return super().reachable(source_ip) + extra


def egress_cells(report):
    return {(row['node'], row['nic']): row['cells']['egress']['results'][0] for row in report['rows']}


def test_egress_cells_explain_the_vpc_side_with_the_users_own_snat_entry(cluster, tmp_path):
    double = cluster(nodes=2)
    double.set_exec_table([EgressNetwork(double, tmp_path / 'egress-bin')])
    with EcsEmulator(write_world(tmp_path, lab_world(user_nat=True))) as emu:
        proc, report, report_dir = run(double, tmp_path, cloud=emu, underlay_verify_egress_url=EGRESS_URL,
                                       underlay_verify_region='cn-hangzhou', underlay_verify_vpc_id='vpc-bp1lab')
        assert mutations(emu) == {}  # read-only
        counts = emu.request_counts()
    assert proc.returncode != 0 and report['failed_checks'] == ['egress']
    assert counts.get('DescribeSnatTableEntries') and counts.get('DescribeIpv6Addresses') and counts.get('DescribeVSwitches')
    cells = egress_cells(report)
    # eth0 pods (vsw-bp1a) leave through the user's VPC-wide entry; eth1 pods (vsw-bp1b) have none.
    for node in ('node-1', 'node-2'):
        ok, bad = cells[(node, 'eth0')], cells[(node, 'eth1')]
        assert ok['status'] == 'ok' and ok['diagnosis']['complete']
        assert [(d['vswitch_id'], d['state'], d['nat_gateway_id'], d['snat_entry'], d['snat_ips'], d['managed'])
                for d in ok['diagnosis']['ipv4']] == [('vsw-bp1a', 'ok', 'ngw-bp1user', 'snat-bp1user', ['47.100.0.1'], False)]
        assert bad['status'] == 'fail' and not bad['diagnosis']['complete']
        assert [(d['vswitch_id'], d['state'], d['reason']) for d in bad['diagnosis']['ipv4']] == [
            ('vsw-bp1b', 'missing', 'no SNAT entry covers vsw-bp1b (192.168.0.0/24) on NAT gateway(s) ngw-bp1user')]
    # every failure says it in the JSON, the Markdown, the HTML and the play output
    failures = [f for f in report['failures'] if f['check'] == 'egress']
    assert len(failures) == 2 and all(f['diagnosis']['ipv4'][0]['state'] == 'missing' for f in failures)
    address = cells[('node-1', 'eth1')]['diagnosis']['ipv4'][0]['address']
    line = 'IPv4 %s: no SNAT entry covers vsw-bp1b (192.168.0.0/24) on NAT gateway(s) ngw-bp1user' % address
    assert 'Cloud side: ' + line in (report_dir / 'report.md').read_text()
    assert 'cloud: ' + line in (report_dir / 'report.html').read_text()
    assert 'cloud: ' + line in proc.stdout
    assert not double.objects('Pod', NS)


def test_egress_diagnosis_without_a_nat_gateway_and_from_the_inventory_facts(cluster, tmp_path):
    double = cluster(nodes=1)
    double.set_exec_table([EgressNetwork(double, tmp_path / 'egress-bin')])
    inventory = tmp_path / 'hosts.yml'
    inventory.write_text(yaml.safe_dump({'all': {'hosts': {'localhost': {'ansible_connection': 'local'}}, 'children': {'k8s_cluster': {
        'hosts': {'node-1': {'alicloud_region': 'cn-hangzhou', 'alicloud_vpc_id': 'vpc-bp1lab'}}}}}}))
    with EcsEmulator(write_world(tmp_path, lab_world())) as emu:
        proc, report = run(double, tmp_path, cloud=emu, inventory=str(inventory), underlay_verify_egress_url=EGRESS_URL)[:2]
        assert mutations(emu) == {}
    cells = egress_cells(report)
    # The data path is scripted to let vsw-bp1a out; the cloud side says that cannot be the NAT gateway.
    assert [(c['status'], c['diagnosis']['summary']) for _key, c in sorted(cells.items())] == [
        ('ok', 'IPv4 %s: no NAT gateway in VPC vpc-bp1lab' % cells[('node-1', 'eth0')]['diagnosis']['ipv4'][0]['address']),
        ('fail', 'IPv4 %s: no NAT gateway in VPC vpc-bp1lab' % cells[('node-1', 'eth1')]['diagnosis']['ipv4'][0]['address'])]
    assert report['failed_checks'] == ['egress'] and proc.returncode != 0
