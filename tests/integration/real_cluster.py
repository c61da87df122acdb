"""pytest fixtures for the real cluster (tests/cluster/realkube.py): a real kube-apiserver, etcd,
controller-manager and scheduler, kwok for Node/Pod lifecycle, and the real Spiderpool controller
once the chart is installed.

Use from a test module:  `from real_cluster import real_kube, real_kube_factory  # noqa: F401`

- `real_kube_factory(nodes=[...], kubeadm_traces=True)`: start a cluster (one per call, in tmp_path).
- `real_kube`: a cluster with Nodes `master` (control plane) and `worker`.
- `spiderpool_chart()`: the real Spiderpool 1.2.2 chart of the pinned module.

When the components cannot be built here (no Go, no module proxy) the tests skip, unless
UNDERLAY_REQUIRE_REAL_CLUSTER=1 (set by .ci/run), which turns that into a failure.
"""
import json
import os
import subprocess
import sys
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CLUSTER_DIR = os.path.join(ROOT, 'tests', 'cluster')
if CLUSTER_DIR not in sys.path:
    sys.path.insert(0, CLUSTER_DIR)

import realkube  # noqa: E402  pylint: disable=wrong-import-position,import-error

ADMIN = 'realkube-admin'
HELM = os.path.join(ROOT, '.cache', 'bin', 'helm')


def _unavailable(reason):
    if os.environ.get('UNDERLAY_REQUIRE_REAL_CLUSTER') == '1':
        pytest.fail('real cluster unavailable: %s' % reason, pytrace=False)
    pytest.skip('real cluster unavailable: %s' % reason)


def require_real_cluster():
    """Build what is missing (once per machine); skip, or fail under UNDERLAY_REQUIRE_REAL_CLUSTER=1."""
    try:
        realkube.build(quiet=True)
    except realkube.RealKubeError as exc:
        _unavailable(str(exc))


def spiderpool_chart():
    try:
        return realkube.chart_path()
    except realkube.RealKubeError as exc:
        return _unavailable(str(exc))


class RealCluster:
    """A running cluster: kubeconfig, a dynamic client, and the API server's audit log for counting
    what the collection (user realkube-admin) asked."""

    def __init__(self, directory, kubeconfig):
        from kubernetes import config, dynamic  # pylint: disable=import-outside-toplevel
        self.dir = directory
        self.kubeconfig = kubeconfig
        self.client = dynamic.DynamicClient(config.new_client_from_config(config_file=kubeconfig))
        self.audit_offset = 0

    def env(self, base=None):
        """Environment for subprocesses (kubernetes.core, kubectl, helm) pointing at this cluster."""
        env = dict(os.environ if base is None else base)
        env.update({'K8S_AUTH_KUBECONFIG': self.kubeconfig, 'KUBECONFIG': self.kubeconfig})
        return env

    def resource(self, kind, api_version=None):
        return self.client.resources.get(kind=kind, api_version=api_version) if api_version \
            else self.client.resources.get(kind=kind)

    def objects(self, kind, namespace=None, api_version=None):
        return [item.to_dict() for item in self.resource(kind, api_version).get(namespace=namespace).items]

    def get(self, kind, name, namespace=None, api_version=None):
        from kubernetes.dynamic.exceptions import NotFoundError  # pylint: disable=import-outside-toplevel
        try:
            return self.resource(kind, api_version).get(name=name, namespace=namespace).to_dict()
        except NotFoundError:
            return None

    def create(self, obj):
        """Create through the API (admission and webhooks included); returns the stored object."""
        res = self.resource(obj['kind'], obj['apiVersion'])
        return res.create(body=obj, namespace=obj['metadata'].get('namespace')).to_dict()

    def patch_status(self, kind, name, status, namespace=None, api_version=None):
        res = self.resource(kind, api_version)
        return res.status.patch(body={'status': status}, name=name, namespace=namespace,
                                content_type='application/merge-patch+json').to_dict()

    def patch(self, kind, name, patch, namespace=None, api_version=None):
        return self.resource(kind, api_version).patch(body=patch, name=name, namespace=namespace,
                                                      content_type='application/merge-patch+json').to_dict()

    def set_load_balancer_ip(self, namespace, name, ip):
        """What a cloud-controller-manager's service controller writes once the load balancer exists."""
        return self.patch_status('Service', name, {'loadBalancer': {'ingress': [{'ip': ip}]}}, namespace)

    def delete(self, kind, name, namespace=None, api_version=None):
        self.resource(kind, api_version).delete(name=name, namespace=namespace)

    def add_node(self, name, labels=None, internal_ip=None, taints=None, control_plane=False):
        """A Node kwok keeps Ready; returns once it is Ready."""
        api = realkube.Api(self.server(), os.path.join(self.dir, 'pki'), 'admin')
        realkube.add_node(api, name, control_plane, internal_ip, labels, taints)
        self.wait_for('Node %s Ready' % name, lambda: any(
            c['type'] == 'Ready' and c['status'] == 'True'
            for c in (self.get('Node', name) or {}).get('status', {}).get('conditions') or []))

    def server(self):
        with open(self.kubeconfig, encoding='utf-8') as handle:
            return json.load(handle)['clusters'][0]['cluster']['server']

    def wait_for(self, what, check, timeout=60):
        deadline = time.time() + timeout
        while time.time() < deadline:
            result = check()
            if result:
                return result
            time.sleep(0.3)
        raise AssertionError('%s not reached within %d s' % (what, timeout))

    def run_pod(self, name, namespace='default', node=None, annotations=None):
        """A Pod kwok runs (no containers start here); returns it once Running with an IP."""
        spec = {'containers': [{'name': 'app', 'image': 'registry.invalid/app:1'}]}
        if node:
            spec['nodeName'] = node
        self.create({'apiVersion': 'v1', 'kind': 'Pod', 'spec': spec,
                     'metadata': {'name': name, 'namespace': namespace, 'annotations': annotations or {}}})

        def running():
            pod = self.get('Pod', name, namespace)
            return pod if pod and pod.get('status', {}).get('phase') == 'Running' else None
        return self.wait_for('pod %s/%s Running' % (namespace, name), running)

    def pod_for_cni(self, name, node, network=None, namespace='default'):
        """A Pod bound to NODE (spec.nodeName: no scheduler) whose network tests/cluster/cnipod.py sets up: the
        agent's IPAM and coordinator read it by namespace/name; NETWORK (a NAD's namespace/name) is its multus
        default network, the one pools match with multusName. Returned as created (uid for K8S_POD_UID)."""
        return self.create({'apiVersion': 'v1', 'kind': 'Pod', 'metadata': {
            'name': name, 'namespace': namespace,
            'annotations': {'v1.multus-cni.io/default-network': network} if network else {}},
            'spec': {'nodeName': node, 'containers': [{'name': 'app', 'image': 'registry.invalid/app:1'}]}})

    def install_spiderpool(self, default_cni='ipvlan-eth0'):
        """The real chart as role spiderpool installs it (the guide's values), the controller's webhooks
        serving, and the placeholder SpiderMultusConfig of the default network made by spiderpool-init."""
        homes = {name: os.path.join(self.dir, 'helm', name) for name in ('cache', 'config', 'data')}
        env = self.env({'PATH': os.environ.get('PATH', ''), 'HELM_CACHE_HOME': homes['cache'],
                        'HELM_CONFIG_HOME': homes['config'], 'HELM_DATA_HOME': homes['data']})
        subprocess.run([HELM, 'install', 'spiderpool', spiderpool_chart(), '--namespace', 'kube-system', '--wait',
                        '--timeout', '3m', '--set', 'multus.multusCNI.defaultCniCRName=' + default_cni,
                        '--set', 'ipam.enableStatefulSet=false', '--set', 'plugins.installCNI=false'],
                       env=env, capture_output=True, text=True, timeout=240, check=True)
        self.wait_for('placeholder SpiderMultusConfig %s' % default_cni,
                      lambda: self.get('SpiderMultusConfig', default_cni, 'kube-system'))

    # -- what the collection asked (the API server's audit log, user realkube-admin)

    def audit_events(self):
        path = os.path.join(self.dir, 'audit.log')
        events = []
        with open(path, encoding='utf-8') as handle:
            handle.seek(self.audit_offset)
            for line in handle:
                event = json.loads(line)
                if event.get('user', {}).get('username') == ADMIN and event.get('stage') == 'ResponseComplete':
                    events.append(event)
        return events

    def reset_stats(self):
        self.audit_offset = os.path.getsize(os.path.join(self.dir, 'audit.log'))

    def request_counts(self, group=None):
        """{'total': n, 'requests': {'<verb> <resource>[.<group>][ (dry run)]': n}} since reset_stats()."""
        counts = {}
        for event in self.audit_events():
            ref = event.get('objectRef', {})
            if group is not None and ref.get('apiGroup', '') != group:
                continue
            if not ref:  # discovery and /version
                continue
            key = '%s %s%s%s' % (event['verb'], ref.get('resource', ''),
                                 '.' + ref['apiGroup'] if ref.get('apiGroup') else '',
                                 ' (dry run)' if 'dryRun=All' in event.get('requestURI', '') else '')
            counts[key] = counts.get(key, 0) + 1
        return {'total': sum(counts.values()), 'requests': counts}


@pytest.fixture
def real_kube_factory(tmp_path):
    started = []

    def factory(nodes=(('master', True), ('worker', False)), kubeadm_traces=True):
        directory = str(tmp_path / ('realkube-%d' % len(started)))
        require_real_cluster()
        started.append(directory)
        kubeconfig = realkube.up(directory, nodes, kubeadm_traces)
        return RealCluster(directory, kubeconfig)

    yield factory
    for directory in started:
        realkube.down(directory)


@pytest.fixture
def real_kube(real_kube_factory):  # pylint: disable=redefined-outer-name
    return real_kube_factory()
