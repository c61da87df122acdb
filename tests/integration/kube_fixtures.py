"""pytest fixtures for the Kubernetes API double (tests/emulator/kube_emulator.py).

Use from a test module:  `from kube_fixtures import kube, kube_factory, spiderpool_crds  # noqa: F401`

- `kube`: a started double with the simulated kubelet and one Node `node-1`; a kubeconfig in tmp_path.
- `kube_factory(**options)`: start more doubles with other options (see KubeEmulator: simulate_kubelet,
  nodes, exec_rules, spiderpool_webhooks, spiderpool_ipam, latency_ms, crds=DIR, pod_ip_allocator).
- `spiderpool_crds`: the directory of the real Spiderpool CRDs, or the test is skipped.
"""
import json
import os
import sys
import urllib.request

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EMULATOR_DIR = os.path.join(ROOT, 'tests', 'emulator')
if EMULATOR_DIR not in sys.path:
    sys.path.insert(0, EMULATOR_DIR)

import kube_emulator  # noqa: E402  pylint: disable=wrong-import-position,import-error

# The real CRDs, from the Spiderpool chart of the pinned module (make env fetches it).
SPIDERPOOL_CRDS = os.path.join(ROOT, '.cache', 'realkube', 'spiderpool-chart', 'crds')


class KubeDouble:
    """A running double: its URL, a kubeconfig file and helpers to look inside."""

    def __init__(self, emulator, kubeconfig):
        self.emulator = emulator
        self.store = emulator.store
        self.url = emulator.url
        self.kubeconfig = str(kubeconfig)

    def env(self, base=None):
        """Environment for subprocesses (kubernetes.core, kubectl, helm) pointing at this double."""
        env = dict(os.environ if base is None else base)
        env.update({'K8S_AUTH_KUBECONFIG': self.kubeconfig, 'KUBECONFIG': self.kubeconfig})
        return env

    def objects(self, kind, namespace=None, api_version=None):
        return self.emulator.objects(kind, namespace, api_version)

    def get(self, kind, name, namespace=None, api_version=None):
        for obj in self.objects(kind, namespace, api_version):
            if obj['metadata']['name'] == name:
                return obj
        return None

    def apply(self, obj):
        return self.emulator.apply_object(obj)

    def add_node(self, name, labels=None, internal_ip=None, taints=None):
        return self.emulator.add_node(name, labels, internal_ip, taints)

    def load_crds(self, directory):
        self.emulator.load_crds(directory)

    def request_counts(self):
        return self.emulator.request_counts()

    def reset_stats(self):
        self.emulator.stats.reset()

    def set_exec_table(self, rules):
        self.emulator.set_exec_table(rules)

    def set_pod_log(self, namespace, name, text):
        self.emulator.set_pod_log(namespace, name, text)

    def set_load_balancer_ip(self, namespace, name, ip):
        return self.emulator.set_load_balancer_ip(namespace, name, ip)

    def http(self, method, path, body=None, content_type='application/json'):
        """Raw request to the double; returns (status code, decoded JSON body)."""
        data = json.dumps(body).encode() if body is not None and not isinstance(body, bytes) else body
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={'Content-Type': content_type})
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, json.loads(resp.read() or b'null')
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b'null')

    def stop(self):
        self.emulator.stop()


@pytest.fixture
def kube_factory(tmp_path):
    started = []

    def factory(crds=None, **options):
        emulator = kube_emulator.KubeEmulator(**options)
        if crds:
            emulator.load_crds(crds)
        emulator.start()
        path = tmp_path / ('kubeconfig-%d' % len(started))
        emulator.write_kubeconfig(str(path))
        double = KubeDouble(emulator, path)
        started.append(double)
        return double

    yield factory
    for double in started:
        double.stop()


@pytest.fixture
def kube(kube_factory):  # pylint: disable=redefined-outer-name
    return kube_factory(simulate_kubelet=True, nodes=['node-1'])


@pytest.fixture
def spiderpool_crds():
    if not os.path.isdir(SPIDERPOOL_CRDS):
        pytest.skip('Spiderpool CRDs not available at %s' % SPIDERPOOL_CRDS)
    return SPIDERPOOL_CRDS
