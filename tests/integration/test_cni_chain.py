"""The real CNI chain without a kubelet: the real spiderpool-agent (bundle of tests/cluster/spideragent.py)
serves the real spiderpool IPAM plugin and coordinator, the chain is the NetworkAttachmentDefinition the
real controller made from a SpiderMultusConfig, and tests/cluster/cnipod.py runs it as multus would.

This host stands in for a VM node: network namespace `node` holds the node's NIC (lab0, a veth whose peer
is the vSwitch gateway in namespace `gw`) and runs the agent and the plugins; it reaches the API server at
https://10.0.2.2:PORT as a VM on QEMU's user network does (a relay). The host kernel has no ipvlan, so the
chain is macvlan on lab0 (the VM nodes use ipvlan). Slow: a cluster, the chart, the agent start (~1-2 min).
"""
import ipaddress
import json
import os
import subprocess
import sys
import tarfile

import pytest

from real_cluster import CLUSTER_DIR, ROOT, real_kube_factory  # noqa: F401  pylint: disable=unused-import

import realkube  # noqa: E402  pylint: disable=wrong-import-order,import-error
import spideragent  # noqa: E402  pylint: disable=wrong-import-order,import-error

GROUP = 'spiderpool.spidernet.io/v2beta1'
NODE = 'node-1'
NETWORK = 'macvlan-lab'
SUBNET, GATEWAY, NODE_IP, RANGE = '198.51.100.0/24', '198.51.100.1', '198.51.100.2', ('198.51.100.10', '198.51.100.14')
SPIDERNET = '/var/run/spidernet'
SPIDERNET_LOGS = '/var/log/spidernet'
CNIPOD = os.path.join(CLUSTER_DIR, 'cnipod.py')


def sh(*argv, check=True):
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, check=check)


class Lab:
    """Network namespaces `node` (lab0, the agent, the plugins) and `gw` (gw0 with the gateway address)."""

    def __init__(self, tmp_path):
        suffix = str(os.getpid())
        self.node, self.gw, self.pod = ('cni-%s-%s' % (role, suffix) for role in ('node', 'gw', 'pod'))
        self.dirs = {path: str(tmp_path / name) for path, name in ((SPIDERNET, 'spidernet'), (SPIDERNET_LOGS, 'logs'))}
        self.cleanups = []  # run on exit, last first

    def __enter__(self):
        for netns in (self.node, self.gw):
            sh('ip', 'netns', 'add', netns)
        sh('ip', 'link', 'add', 'lab0', 'netns', self.node, 'type', 'veth', 'peer', 'gw0', 'netns', self.gw)
        for netns, link in ((self.node, 'lab0'), (self.gw, 'gw0'), (self.node, 'lo'), (self.gw, 'lo')):
            sh('ip', '-n', netns, 'link', 'set', link, 'up')
        sh('ip', '-n', self.gw, 'addr', 'add', GATEWAY + '/24', 'dev', 'gw0')
        # the node's primary address on its NIC and its default route, as on a VM
        sh('ip', '-n', self.node, 'addr', 'add', NODE_IP + '/24', 'dev', 'lab0')
        sh('ip', '-n', self.node, 'route', 'add', 'default', 'via', GATEWAY)
        for host_path, local in self.dirs.items():
            os.makedirs(host_path, exist_ok=True)  # mount points; what the agent writes stays in `local`
            os.makedirs(local)
        return self

    def __exit__(self, *exc):
        for cleanup in reversed(self.cleanups):
            cleanup()
        for netns in (self.pod, self.node, self.gw):
            sh('ip', 'netns', 'delete', netns, check=False)

    def on_node(self, *argv):
        """ARGV in the node's network namespace with the agent's host paths (a VM needs neither)."""
        binds = ' && '.join('mount --bind %s %s' % (local, path) for path, local in self.dirs.items())
        return ['unshare', '--mount', '--propagation', 'private', 'sh', '-c', binds + ' && exec "$@"', 'sh',
                'nsenter', '--net=/run/netns/' + self.node, *argv]

    def binds(self):
        return [arg for path, local in self.dirs.items() for arg in ('--bind', '%s=%s' % (path, local))]


def tcp_answer(client_netns, pod_netns, ip):
    """What a TCP client in CLIENT_NETNS reads from a one-shot server in the pod's network namespace."""
    server = subprocess.Popen(['ip', 'netns', 'exec', pod_netns, sys.executable, '-c', (  # pylint: disable=consider-using-with
        'import socket, sys; s = socket.create_server(("0.0.0.0", 8080)); print("up", flush=True); '
        'c = s.accept()[0]; c.sendall(("pod " + sys.argv[1]).encode()); c.close()'), pod_netns],
        stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout.readline() == 'up\n'
        return sh('ip', 'netns', 'exec', client_netns, sys.executable, '-c', (
            'import socket, sys; print(socket.create_connection((sys.argv[1], 8080), timeout=5).recv(100).decode())'),
            ip).stdout.strip()
    finally:
        server.kill()
        server.wait()


def pool_status(kube, name):
    status = kube.get('SpiderIPPool', name).get('status') or {}
    return json.loads(status.get('allocatedIPs') or '{}'), status.get('allocatedIPCount') or 0


@pytest.mark.skipif(os.geteuid() != 0, reason='network namespaces need root')
def test_the_real_agent_and_ipam_wire_a_pod_from_its_node_pool(real_kube_factory, tmp_path):  # noqa: F811  pylint: disable=redefined-outer-name,too-many-locals
    kube = real_kube_factory(nodes=[('master', True)])
    kube.install_spiderpool('ipvlan-eth0')
    # a node as a VM is to the cluster: no kwok, no kubelet; Pods bound to it stay Pending, and a deleted
    # one stays Terminating until someone (its kubelet, here the test) finishes it
    kube.create({'apiVersion': 'v1', 'kind': 'Node', 'metadata': {'name': NODE, 'labels': {
        'kubernetes.io/hostname': NODE, 'kubernetes.io/os': 'linux'}}})
    kube.create({'apiVersion': GROUP, 'kind': 'SpiderMultusConfig',
                 'metadata': {'name': NETWORK, 'namespace': 'kube-system'},
                 'spec': {'cniType': 'macvlan', 'enableCoordinator': True, 'macvlan': {'master': ['lab0']}}})
    kube.create({'apiVersion': GROUP, 'kind': 'SpiderIPPool', 'metadata': {'name': NODE + '-lab0-v4'},
                 'spec': {'subnet': SUBNET, 'ips': ['%s-%s' % RANGE], 'gateway': GATEWAY, 'default': True,
                          'nodeName': [NODE], 'multusName': ['kube-system/' + NETWORK]}})
    nad = kube.wait_for('NAD made by the controller', lambda: kube.get(
        'NetworkAttachmentDefinition', NETWORK, 'kube-system', 'k8s.cni.cncf.io/v1'))
    chain = json.loads(nad['spec']['config'])
    assert [p['type'] for p in chain['plugins']] == ['macvlan', 'coordinator']
    assert chain['plugins'][0]['master'] == 'lab0' and chain['plugins'][0]['ipam']['type'] == 'spiderpool'
    config = tmp_path / 'nad.json'
    config.write_text(nad['spec']['config'])

    # the node's CNI bin dir as role ipvlan_cni fills it: the release tarball, unpacked
    tarball, digest = realkube.cni_tarball()
    cni_bin = tmp_path / 'opt-cni-bin'
    with tarfile.open(tarball) as tar:
        assert {'./ipvlan', './macvlan', './loopback', './host-local'} <= set(tar.getnames())
        tar.extractall(cni_bin)  # nosec - built here
    assert open(tarball + '.sha256', encoding='utf-8').read().split()[0] == digest

    port = int(kube.server().rsplit(':', 1)[1])
    with Lab(tmp_path) as lab:
        relay = subprocess.Popen([sys.executable, os.path.join(CLUSTER_DIR, 'spideragent.py'), 'relay', '--netns',  # pylint: disable=consider-using-with
                                  lab.node, '--listen', '10.0.2.2:%d' % port, '--to', '127.0.0.1:%d' % port],
                                 stdout=subprocess.PIPE, text=True)
        lab.cleanups += [relay.wait, relay.terminate]
        assert relay.stdout.readline().startswith('relay 10.0.2.2:%d' % port)
        bundle = spideragent.bundle(kube.kubeconfig, NODE, 'https://10.0.2.2:%d' % port, str(tmp_path / 'bundle'))
        started = sh(*lab.on_node('env', 'CNI_BIN_DIR=%s' % cni_bin, os.path.join(bundle, 'run-agent.sh')),
                     check=False)
        lab.cleanups.append(lambda: sh(*lab.on_node(os.path.join(bundle, 'run-agent.sh'), 'stop'), check=False))
        assert started.returncode == 0, started.stderr + _tail(os.path.join(bundle, 'agent.log'))
        assert {'spiderpool', 'coordinator'} <= set(os.listdir(cni_bin))  # the container's postStart

        pod = kube.pod_for_cni('app-1', NODE, network='kube-system/' + NETWORK)
        uid = pod['metadata']['uid']
        cnipod = [sys.executable, CNIPOD, '--namespace', 'default', '--name', 'app-1', '--uid', uid,
                  '--netns', lab.pod, '--config', str(config), '--cni-path', str(cni_bin),
                  '--cache-dir', str(tmp_path / 'cni-results'), '--node-netns', lab.node, *lab.binds()]
        added = sh(*cnipod[:2], 'add', *cnipod[2:], check=False)
        assert added.returncode == 0, added.stderr + _tail(os.path.join(bundle, 'agent.log'))
        result = json.loads(added.stdout)
        address = ipaddress.ip_interface(result['ips'][0]['address'])
        first, last = (ipaddress.ip_address(ip) for ip in RANGE)
        assert first <= address.ip <= last and str(address.network) == SUBNET

        # the pod's eth0 has it; the vSwitch gateway reaches it over lab0 (macvlan), the node through
        # coordinator's veth0 and its route in table 500 (a macvlan child cannot talk to its parent)
        shown = json.loads(sh('ip', '-n', lab.pod, '-j', 'addr', 'show', 'eth0').stdout)
        assert str(address.ip) in [a['local'] for a in shown[0]['addr_info']]
        assert str(address.ip) in sh('ip', '-n', lab.node, 'route', 'show', 'table', '500').stdout
        for peer in (lab.gw, lab.node):
            assert tcp_answer(peer, lab.pod, str(address.ip)) == 'pod %s' % lab.pod

        # the allocation as the API records it
        allocated, count = pool_status(kube, NODE + '-lab0-v4')
        assert allocated == {str(address.ip): {'pod': 'default/app-1', 'podUid': uid}}
        assert count == 1
        endpoint = kube.get('SpiderEndpoint', 'app-1', 'default')
        current = endpoint['status']['current']
        assert current['node'] == NODE and current['uid'] == uid
        assert current['ips'][0]['ipv4'] == str(address) and current['ips'][0]['ipv4Pool'] == NODE + '-lab0-v4'

        # a sandbox torn down while its Pod lives (a restart) keeps the address, and gets it back
        assert sh(*cnipod[:2], 'del', *cnipod[2:], check=False).returncode == 0
        assert not os.path.exists('/run/netns/' + lab.pod)
        assert pool_status(kube, NODE + '-lab0-v4') == (allocated, 1)
        again = sh(*cnipod[:2], 'add', *cnipod[2:], check=False)
        assert again.returncode == 0, again.stderr
        assert json.loads(again.stdout)['ips'][0]['address'] == str(address)

        # as a kubelet does: the Pod is deleted (Terminating), its sandbox torn down, then the Pod removed;
        # the address goes back to the pool
        kube.delete('Pod', 'app-1', 'default')
        deleted = sh(*cnipod[:2], 'del', *cnipod[2:], check=False)
        assert deleted.returncode == 0, deleted.stderr + _tail(os.path.join(bundle, 'agent.log'))
        assert pool_status(kube, NODE + '-lab0-v4') == ({}, 0)
        assert str(address.ip) not in sh('ip', '-n', lab.node, 'route', 'show', 'table', '500').stdout
        kube.resource('Pod').delete(name='app-1', namespace='default', body={'gracePeriodSeconds': 0})
        kube.wait_for('SpiderEndpoint gone', lambda: kube.get('SpiderEndpoint', 'app-1', 'default') is None)


def _tail(path):
    return open(path, encoding='utf-8').read()[-3000:] if os.path.exists(path) else ''
