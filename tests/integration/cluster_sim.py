"""Stand-ins for what a real cluster has around the Kubernetes API, shared by integration tests.

- `CoordinatorController`: the spiderpool-controller's SpiderCoordinator status.
- `Network`: a `kubectl exec` rule that runs the verification probe script in a real `sh` whose
  `ping`/`wget` (FAKE_PING/FAKE_WGET) answer from a reachability table built from the double's objects.
- `minimal_crds()`: schema-less Spiderpool CRDs for machines without the reference CRDs.
- `plugins_tarball()`: a release-shaped containernetworking-plugins tarball of small fake binaries.
"""
import hashlib
import io
import platform
import subprocess
import tarfile
import textwrap
import threading

SCC_STATUS = '/apis/spiderpool.spidernet.io/v2beta1/spidercoordinators/default/status'

CNI_VERSION = '1.8.0'
CNI_ARCH = {'x86_64': 'amd64', 'aarch64': 'arm64'}.get(platform.machine(), platform.machine())
CNI_PLUGINS = ('ipvlan', 'host-local', 'loopback', 'bridge', 'macvlan')

BUSYBOX_PING_OK = """PING {t} ({t}): 56 data bytes
64 bytes from {t}: seq=0 ttl=64 time=0.311 ms
64 bytes from {t}: seq=1 ttl=64 time=0.207 ms

--- {t} ping statistics ---
2 packets transmitted, 2 packets received, 0% packet loss
round-trip min/avg/max = 0.207/0.259/0.311 ms"""
BUSYBOX_PING_LOST = """PING {t} ({t}): 56 data bytes

--- {t} ping statistics ---
2 packets transmitted, 0 packets received, 100% packet loss"""

# Stand-ins for the image's ping and wget: reachable iff the target is in $UV_REACHABLE.
FAKE_PING = textwrap.dedent('''\
    #!/bin/sh
    for a; do t=$a; done
    case " $UV_REACHABLE " in *" $t "*) cat <<EOF
    %s
    EOF
    exit 0;; esac
    cat <<EOF
    %s
    EOF
    exit 1
    ''') % (BUSYBOX_PING_OK.format(t='$t'), BUSYBOX_PING_LOST.format(t='$t'))
FAKE_WGET = textwrap.dedent('''\
    #!/bin/sh
    for a; do u=$a; done
    h=${u#http://}; h=${h%%/*}; h=${h%:*}
    case " $UV_REACHABLE " in *" $h "*) echo "  HTTP/1.0 200 OK" >&2; exit 0;; esac
    echo "wget: download timed out" >&2
    exit 1
    ''')


class CoordinatorController(threading.Thread):
    """Plays the spiderpool-controller's SpiderCoordinator status: Synced when the cluster has a
    kubeadm-config (or a kube-controller-manager pod), otherwise only with an explicit podCIDRType
    (Spiderpool #3054). Writes go through the status subresource, as the controller's do."""

    def __init__(self, double, kubeadm_cluster):
        super().__init__(daemon=True)
        self.double, self.kubeadm_cluster = double, kubeadm_cluster
        self.done = threading.Event()

    def run(self):
        while not self.done.wait(0.2):
            scc = self.double.get('SpiderCoordinator', 'default')
            if scc is None:
                continue
            if self.kubeadm_cluster or scc['spec'].get('podCIDRType', 'auto') != 'auto':
                status = {'phase': 'Synced', 'serviceCIDR': ['10.96.0.0/12'], 'overlayPodCIDR': []}
            else:
                status = {'phase': 'NotReady',
                          'reason': 'Neither kubeadm-config ConfigMap nor kube-controller-manager Pod can be found'}
            if {k: scc.get('status', {}).get(k) for k in status} != status:
                self.double.http('PATCH', SCC_STATUS, {'status': status}, 'application/merge-patch+json')

    def stop(self):
        self.done.set()
        self.join(5)


def minimal_crds():
    """Stand-in CRDs (no schema) for machines without the reference CRDs."""
    crds = []
    for kind, plural, scope in (('SpiderIPPool', 'spiderippools', 'Cluster'), ('SpiderCoordinator', 'spidercoordinators', 'Cluster'),
                                ('SpiderMultusConfig', 'spidermultusconfigs', 'Namespaced')):
        crds.append({'apiVersion': 'apiextensions.k8s.io/v1', 'kind': 'CustomResourceDefinition',
                     'metadata': {'name': '%s.spiderpool.spidernet.io' % plural},
                     'spec': {'group': 'spiderpool.spidernet.io', 'scope': scope,
                              'names': {'kind': kind, 'plural': plural, 'singular': kind.lower(), 'listKind': kind + 'List'},
                              'versions': [{'name': 'v2beta1', 'served': True, 'storage': True, 'subresources': {'status': {}},
                                            'schema': {'openAPIV3Schema': {'type': 'object',
                                                                           'x-kubernetes-preserve-unknown-fields': True}}}]}})
    return crds


class Network:
    """Exec rule: run the probe script in a real shell; fake ping/wget reach what exists in the double."""

    def __init__(self, double, bindir):
        self.double = double
        self.bindir = str(bindir)
        self.broken = set()   # (source pod IP, target address)
        bindir.mkdir(exist_ok=True)
        for name, body in (('ping', FAKE_PING), ('wget', FAKE_WGET)):
            (bindir / name).write_text(body)
            (bindir / name).chmod(0o755)

    def reachable(self, source_ip):
        addresses = set()
        for pod in self.double.objects('Pod'):
            addresses.update(ip['ip'] for ip in (pod.get('status') or {}).get('podIPs') or [])
        for node in self.double.objects('Node'):
            addresses.update(a['address'] for a in node['status']['addresses'] if a['type'] == 'InternalIP')
        for svc in self.double.objects('Service'):
            addresses.update(svc['spec'].get('clusterIPs') or [])
        return sorted(a for a in addresses if (source_ip, a) not in self.broken)

    def __call__(self, pod, container, command):
        if command[:2] != ['sh', '-c']:
            return None
        env = {'PATH': self.bindir + ':/usr/bin:/bin', 'UV_REACHABLE': ' '.join(self.reachable(pod['status'].get('podIP')))}
        proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)
        return proc.stdout, proc.stderr, proc.returncode


def plugins_tarball(directory):
    """A release-shaped tarball (./ipvlan, ./host-local, ...) of small fake binaries in ``directory``
    (a pathlib.Path); returns (path, sha256)."""
    path = directory / 'cni-plugins-linux-{0}-v{1}.tgz'.format(CNI_ARCH, CNI_VERSION)
    with tarfile.open(path, 'w:gz') as tar:
        for name in CNI_PLUGINS:
            data = '#!/bin/sh\necho {0}\n'.format(name).encode()
            info = tarfile.TarInfo('./' + name)
            info.size, info.mode = len(data), 0o755
            tar.addfile(info, io.BytesIO(data))
    return path, hashlib.sha256(path.read_bytes()).hexdigest()
