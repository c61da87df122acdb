"""A real Kubernetes control plane for tests, and the real Spiderpool controller beside it.

    tests/cluster/realkube build
    tests/cluster/realkube up --dir DIR [--node NAME[:control-plane]]... [--no-kubeadm-traces] [--api-san IP]...
                              [--kubelets]
    tests/cluster/realkube down --dir DIR

`up` starts etcd, kube-apiserver, kube-controller-manager and kube-scheduler (built from the
pinned `k8s.io/kubernetes` module), kwok for the lifecycle of Nodes and Pods (no kubelets here),
and a supervisor that plays the part of the missing kubelet for the Spiderpool chart: when the
chart's controller Deployment appears it runs the real `spiderpool-controller` as a process with
the Deployment's own environment and ConfigMap, points the chart's webhook configurations at it,
and reports its Pod ready once the controller's readiness endpoint answers; when the chart's
post-install Job appears it runs the real `spiderpool-init` with the Job's environment. It waits
until the API, the controllers and (once installed) the webhooks answer and prints
`kubeconfig DIR/kubeconfig`. `down` stops every process it started.

With `--kubelets` real kubelets run the pods (VM nodes joined by tests/cluster/kubenode): the
supervisor runs no stand-in, and the cluster network reaches the nodes' addresses from inside the
network namespaces named in DIR/cluster-routes.json (`[[CIDR, NETNS], ...]`, the VPC fabric's).

Binaries come from `KUBEBUILDER_ASSETS` when that folder has them, otherwise from
`.cache/realkube/bin`, built once per machine from the pinned modules (`build`).
"""
import argparse
import base64
import contextlib
import ctypes
import datetime
import fcntl
import gzip
import hashlib
import ipaddress
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tarfile
import threading
import time
import types
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CACHE = os.path.join(ROOT, '.cache', 'realkube')
BIN = os.path.join(CACHE, 'bin')
CHART = os.path.join(CACHE, 'spiderpool-chart')
BUILD_MODULES = os.path.join(ROOT, 'tests', 'cluster', 'build')
KUBE_MODULE, KWOK_BUILD, SPIDERPOOL_BUILD, CNI_BUILD, MULTUS_BUILD, PAUSE_BUILD = (
    os.path.join(BUILD_MODULES, name) for name in ('kubernetes', 'kwok', 'spiderpool', 'cni', 'multus', 'pause'))
CNI_CACHE = os.path.join(CACHE, 'cni')
# what VM nodes run: kubelet, kube-proxy and what goes into their images (tests/cluster/images.py)
NODE_BIN = os.path.join(CACHE, 'node')

KUBERNETES_VERSION = 'v1.33.13'
# The versions are pinned by the go.mod files under tests/cluster/build/; these name them in messages.
KWOK_MODULE, KWOK_VERSION = 'sigs.k8s.io/kwok', 'v0.7.0'
SPIDERPOOL_MODULE, SPIDERPOOL_VERSION = 'github.com/spidernet-io/spiderpool', 'v1.2.2'
# What role ipvlan_cni installs (ipvlan_cni_plugins_version); the tarball is laid out like the release's.
CNI_MODULE, CNI_VERSION = 'github.com/containernetworking/plugins', 'v1.8.0'
CNI_PLUGINS = {'main': ('bridge', 'dummy', 'host-device', 'ipvlan', 'loopback', 'macvlan', 'ptp', 'tap', 'vlan'),
               'ipam': ('dhcp', 'host-local', 'static'),
               'meta': ('bandwidth', 'firewall', 'portmap', 'sbr', 'tuning', 'vrf')}
CNI_TARBALL = 'cni-plugins-linux-amd64-%s.tgz' % CNI_VERSION
# what the Spiderpool 1.2.2 chart deploys (multus.multusCNI.image.tag)
MULTUS_MODULE, MULTUS_VERSION = 'gopkg.in/k8snetworkplumbingwg/multus-cni.v4', 'v4.1.4'
MULTUS_COMMANDS = ('multus', 'install_multus')
NODE_COMMANDS = {'kubelet': 'k8s.io/kubernetes/cmd/kubelet', 'kube-proxy': 'k8s.io/kubernetes/cmd/kube-proxy'}
KUBE_COMMANDS = {'etcd': 'go.etcd.io/etcd/server/v3', 'kube-apiserver': 'k8s.io/kubernetes/cmd/kube-apiserver',
                 'kube-controller-manager': 'k8s.io/kubernetes/cmd/kube-controller-manager',
                 'kube-scheduler': 'k8s.io/kubernetes/cmd/kube-scheduler'}
# controller and init run beside the API server; the agent and the plugins it installs (the IPAM plugin,
# coordinator, ifacer) go to nodes
SPIDERPOOL_COMMANDS = ('spiderpool-controller', 'spiderpool-init', 'spiderpool-agent', 'spiderpool', 'coordinator',
                       'ifacer')
BINARIES = (*KUBE_COMMANDS, 'kwok', *SPIDERPOOL_COMMANDS)

SERVICE_CIDR = '10.96.0.0/12'
KUBERNETES_SERVICE_IP = '10.96.0.1'  # the first address of SERVICE_CIDR: the `kubernetes` Service
NODE_IP = '10.0.0.1'  # kwok's default InternalIP; nothing here connects to it but through ClusterNetwork
POD_CIDR = '10.244.0.0/16'
KWOK_ANNOTATION = 'kwok.x-k8s.io/node'
QEMU_HOST = '10.0.2.2'  # the host's loopback services as VMs on QEMU's user network reach them
# Pods the supervisor runs itself; kwok leaves their status alone.
SUPERVISED_LABEL = 'app.kubernetes.io/component=spiderpool-controller'
READY_TIMEOUT = 180
CLONE_NEWNET = 0x40000000
_LIBC = ctypes.CDLL(None, use_errno=True)


class RealKubeError(Exception):
    """One line for the user: what is missing or wrong."""


# --------------------------------------------------------------------------------------------
# build


def _stamp(module, *extra):
    """What a group of binaries is built from; a change of any pin rebuilds that group."""
    digest = hashlib.sha256(' '.join(extra).encode())
    for name in ('go.mod', 'go.sum', 'tools.go', 'main.go'):
        with contextlib.suppress(FileNotFoundError), open(os.path.join(module, name), 'rb') as handle:
            digest.update(handle.read())
    return digest.hexdigest()


def _go(args, cwd, env_extra=None, log=None):
    if shutil.which('go') is None:
        raise RealKubeError('go not found on PATH: install Go >= 1.25 (or set KUBEBUILDER_ASSETS to a folder '
                            'with %s)' % ', '.join(BINARIES))
    env = dict(os.environ, CGO_ENABLED='0', GOFLAGS='-trimpath -buildvcs=false', **(env_extra or {}))
    proc = subprocess.run(['go', *args], cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if log:
        log.write(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        lines = [line for line in proc.stderr.splitlines() if line.strip() and not line.startswith('go: downloading')]
        raise RealKubeError('go %s failed: %s' % (' '.join(args[:2]), lines[-1] if lines else 'exit %d' % proc.returncode))
    return proc.stdout


def _version_ldflags():
    major, minor = KUBERNETES_VERSION[1:].split('.')[:2]
    flags = ['-s', '-w']
    for pkg in ('k8s.io/component-base/version', 'k8s.io/client-go/pkg/version'):
        flags += ['-X', '%s.gitVersion=%s' % (pkg, KUBERNETES_VERSION), '-X', '%s.gitMajor=%s' % (pkg, major),
                  '-X', '%s.gitMinor=%s' % (pkg, minor), '-X', '%s.gitTreeState=clean' % pkg]
    return ' '.join(flags)


def _build_kubernetes(out, log):
    for name, pkg in KUBE_COMMANDS.items():
        _go(['build', '-ldflags', _version_ldflags(), '-o', os.path.join(out, name), pkg], KUBE_MODULE, log=log)


def _build_node(out, log):
    for name, pkg in NODE_COMMANDS.items():
        _go(['build', '-ldflags', _version_ldflags(), '-o', os.path.join(out, name), pkg], KUBE_MODULE, log=log)


def _build_multus(out, log):
    _go(['build', '-ldflags=-s -w', '-o', out + '/', *('%s/cmd/%s' % (MULTUS_MODULE, name) for name in MULTUS_COMMANDS)],
        MULTUS_BUILD, log=log)


def _build_pause(out, log):
    _go(['build', '-ldflags=-s -w', '-o', os.path.join(out, 'pause'), '.'], PAUSE_BUILD, log=log)


def _build_kwok(out, log):
    _go(['build', '-ldflags=-s -w', '-o', out + '/', '%s/cmd/kwok' % KWOK_MODULE], KWOK_BUILD, log=log)


def _build_spiderpool(out, log):
    _go(['build', '-ldflags=-s -w', '-o', out + '/',
         *('%s/cmd/%s' % (SPIDERPOOL_MODULE, name) for name in SPIDERPOOL_COMMANDS)], SPIDERPOOL_BUILD, log=log)
    _fetch_chart(log)


def _build_cni(out, log):
    """The plugins as the release builds them (static, version stamped) and the release tarball."""
    version_flag = '-X %s/pkg/utils/buildversion.BuildVersion=%s' % (CNI_MODULE, CNI_VERSION)
    _go(['build', '-ldflags=-s -w ' + version_flag, '-o', out + '/',
         *('%s/plugins/%s/%s' % (CNI_MODULE, kind, name) for kind, names in CNI_PLUGINS.items() for name in names)],
        CNI_BUILD, log=log)
    source = json.loads(_go(['mod', 'download', '-json', '%s@%s' % (CNI_MODULE, CNI_VERSION)], CNI_BUILD, log=log))['Dir']
    for doc in ('LICENSE', 'README.md'):
        shutil.copyfile(os.path.join(source, doc), os.path.join(out, doc))
    _pack_release(out, os.path.join(out, CNI_TARBALL))


def _pack_release(folder, tarball):
    """Flat `./NAME` entries owned by root, like upstream's release tarball; fixed times make it reproducible."""
    with open(tarball + '.tmp', 'wb') as raw, gzip.GzipFile(fileobj=raw, mode='wb', mtime=0) as zipped, \
            tarfile.open(fileobj=zipped, mode='w', format=tarfile.GNU_FORMAT) as tar:
        def entry(name, mode, kind=tarfile.REGTYPE, size=0):
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.size, info.uid, info.gid, info.mtime = kind, mode, size, 0, 0, 0
            info.uname = info.gname = 'root'
            return info
        tar.addfile(entry('./', 0o755, tarfile.DIRTYPE))
        for name in sorted(os.listdir(folder)):
            path = os.path.join(folder, name)
            if name.endswith(('.tgz', '.tmp', '.sha256')):
                continue
            with open(path, 'rb') as handle:
                tar.addfile(entry('./' + name, 0o755 if os.access(path, os.X_OK) else 0o644,
                                  size=os.path.getsize(path)), handle)
    os.replace(tarball + '.tmp', tarball)
    with open(tarball, 'rb') as handle:
        digest = hashlib.sha256(handle.read()).hexdigest()
    with open(tarball + '.sha256', 'w', encoding='utf-8') as handle:
        handle.write('%s  %s\n' % (digest, os.path.basename(tarball)))


# group -> (what it is built from, what it makes, how, where the results go)
_GROUPS = {
    'kubernetes': ((KUBE_MODULE, KUBERNETES_VERSION), tuple(KUBE_COMMANDS), _build_kubernetes, BIN),
    'kwok': ((KWOK_BUILD,), ('kwok',), _build_kwok, BIN),
    'spiderpool': ((SPIDERPOOL_BUILD,), SPIDERPOOL_COMMANDS, _build_spiderpool, BIN),
    'cni': ((CNI_BUILD, CNI_VERSION), (CNI_TARBALL,), _build_cni, CNI_CACHE),
    'node': ((KUBE_MODULE, KUBERNETES_VERSION, 'node'), tuple(NODE_COMMANDS), _build_node, NODE_BIN),
    'multus': ((MULTUS_BUILD, MULTUS_VERSION), MULTUS_COMMANDS, _build_multus, NODE_BIN),
    'pause': ((PAUSE_BUILD,), ('pause',), _build_pause, NODE_BIN),
}


def _group_current(group):
    (module, *extra), outputs, dest = _GROUPS[group][0], _GROUPS[group][1], _GROUPS[group][3]
    stamp_file = os.path.join(CACHE, 'stamp.' + group)
    built = os.path.exists(stamp_file) and open(stamp_file, encoding='utf-8').read().strip() == _stamp(module, *extra)
    if dest != BIN:
        return built and all(os.path.exists(os.path.join(dest, name)) for name in outputs)
    found = [_asset(name) for name in outputs]
    assets = os.environ.get('KUBEBUILDER_ASSETS')
    # a folder of ready binaries (envtest convention) wins over the cache and needs no stamp
    return all(found) and (built or bool(assets and all(path.startswith(assets) for path in found)))


def build(force=False, quiet=False):
    """Build each group of binaries that is missing or out of date into .cache/realkube (once per machine)."""
    os.makedirs(CACHE, exist_ok=True)
    with open(os.path.join(CACHE, '.lock'), 'w', encoding='utf-8') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # parallel test workers build once
        stale = [group for group in _GROUPS if force or not _group_current(group)]
        if not stale:
            return
        say = (lambda msg: None) if quiet else (lambda msg: print('realkube: ' + msg, file=sys.stderr, flush=True))
        with open(os.path.join(CACHE, 'build.log'), 'a', encoding='utf-8') as log:
            started = time.time()
            for group in stale:
                (module, *extra), outputs, make, dest = _GROUPS[group]
                say('building %s (%s)' % (group, ', '.join(outputs)))
                group_started = time.time()
                tmp = os.path.join(CACHE, 'build.' + group)
                shutil.rmtree(tmp, ignore_errors=True)
                os.makedirs(tmp)
                make(tmp, log)
                os.makedirs(dest, exist_ok=True)
                # file by file: a running process keeps its old binary
                for name in os.listdir(tmp):
                    os.replace(os.path.join(tmp, name), os.path.join(dest, name))
                os.rmdir(tmp)
                with open(os.path.join(CACHE, 'stamp.' + group), 'w', encoding='utf-8') as handle:
                    handle.write(_stamp(module, *extra) + '\n')
                timing = '%s built in %.0f s' % (group, time.time() - group_started)
                log.write('realkube: %s\n' % timing)
                say(timing)
            say('built in %.0f s' % (time.time() - started))


def cni_tarball():
    """(path, sha256) of the CNI plugins release tarball built from the pinned module (built if missing)."""
    build(quiet=True)
    path = os.path.join(CNI_CACHE, CNI_TARBALL)
    with open(path + '.sha256', encoding='utf-8') as handle:
        return path, handle.read().split()[0]


def _fetch_chart(log):
    info = json.loads(_go(['mod', 'download', '-json', SPIDERPOOL_MODULE], SPIDERPOOL_BUILD, log=log))
    shutil.rmtree(CHART, ignore_errors=True)
    shutil.copytree(os.path.join(info['Dir'], 'charts', 'spiderpool'), CHART)
    os.chmod(CHART, 0o755)
    for dirpath, dirnames, filenames in os.walk(CHART):  # the module cache is read-only
        for entry in dirnames + filenames:
            os.chmod(os.path.join(dirpath, entry), 0o755 if entry in dirnames else 0o644)
    with open(os.path.join(CACHE, 'chart.stamp'), 'w', encoding='utf-8') as handle:
        handle.write(_stamp(SPIDERPOOL_BUILD) + '\n')


def _asset(name):
    assets = os.environ.get('KUBEBUILDER_ASSETS')
    for folder in ([assets] if assets else []) + [BIN]:
        path = os.path.join(folder, name)
        if os.access(path, os.X_OK):
            return path
    return None


def chart_path():
    """The real Spiderpool chart (charts/spiderpool of the pinned module): a module download, no build."""
    os.makedirs(CACHE, exist_ok=True)
    with open(os.path.join(CACHE, '.lock'), 'w', encoding='utf-8') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        stamp = os.path.join(CACHE, 'chart.stamp')
        if not os.path.exists(stamp) or open(stamp, encoding='utf-8').read().strip() != _stamp(SPIDERPOOL_BUILD):
            with open(os.path.join(CACHE, 'build.log'), 'a', encoding='utf-8') as log:
                _fetch_chart(log)
    return CHART


def crds_path():
    return os.path.join(chart_path(), 'crds')


# --------------------------------------------------------------------------------------------
# certificates


def _x509():
    # cryptography comes with the test requirements; imported here so `realkube build` runs without it
    from cryptography import x509  # pylint: disable=import-outside-toplevel
    from cryptography.hazmat.primitives import hashes, serialization  # pylint: disable=import-outside-toplevel
    from cryptography.hazmat.primitives.asymmetric import ec, rsa  # pylint: disable=import-outside-toplevel
    from cryptography.x509.oid import NameOID  # pylint: disable=import-outside-toplevel
    return types.SimpleNamespace(x509=x509, hashes=hashes, serialization=serialization, ec=ec, rsa=rsa,
                                 NameOID=NameOID)


def _key_bytes(key):
    serialization = _x509().serialization
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                             serialization.NoEncryption())


def _name(common, org=None):
    lib = _x509()
    x509, name_oid = lib.x509, lib.NameOID
    attrs = [x509.NameAttribute(name_oid.COMMON_NAME, common)]
    if org:
        attrs.append(x509.NameAttribute(name_oid.ORGANIZATION_NAME, org))
    return x509.Name(attrs)


def _sign(subject, key, issuer=None, issuer_key=None, ca=False, sans=(), usages=()):
    lib = _x509()
    x509, hashes = lib.x509, lib.hashes
    now = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=1)
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer or subject)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=30))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(list(sans)), critical=False)
    if usages:
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(usages)), critical=False)
    return builder.sign(issuer_key or key, hashes.SHA256())


def _write_leaf(pki, leaf, subject, sans=(), usages=(), ca=None):
    """LEAF.key and LEAF.crt under PKI, signed by CA (cert, key; default: PKI's ca.crt/ca.key)."""
    lib = _x509()
    x509, serialization, ec = lib.x509, lib.serialization, lib.ec
    if ca is None:
        with open(os.path.join(pki, 'ca.crt'), 'rb') as crt, open(os.path.join(pki, 'ca.key'), 'rb') as key:
            ca = (x509.load_pem_x509_certificate(crt.read()), serialization.load_pem_private_key(key.read(), None))
    key = ec.generate_private_key(ec.SECP256R1())
    with open(os.path.join(pki, leaf + '.key'), 'wb') as handle:
        handle.write(_key_bytes(key))
    with open(os.path.join(pki, leaf + '.crt'), 'wb') as handle:
        handle.write(_sign(subject, key, ca[0].subject, ca[1], sans=sans, usages=usages)
                     .public_bytes(serialization.Encoding.PEM))


def node_credentials(pki, node):
    """A kubelet's client certificate (system:node:NODE in system:nodes, what the Node authorizer wants)."""
    client = _x509().x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH
    _write_leaf(pki, 'node-' + node, _name('system:node:' + node, 'system:nodes'), usages=[client])
    return os.path.join(pki, 'node-' + node)


def _certificates(directory, api_sans=()):
    """A CA, the API server's serving cert, client certs and the service-account key pair, under DIR/pki.
    The serving cert also names 10.0.2.2 (the host as QEMU's user network shows it to VM nodes) and api_sans."""
    lib = _x509()
    x509, serialization, ec, rsa = lib.x509, lib.serialization, lib.ec, lib.rsa
    pki = os.path.join(directory, 'pki')
    os.makedirs(pki, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = _sign(_name('realkube-ca'), ca_key, ca=True)
    with open(os.path.join(pki, 'ca.crt'), 'wb') as handle:
        handle.write(ca_cert.public_bytes(serialization.Encoding.PEM))
    with open(os.path.join(pki, 'ca.key'), 'wb') as handle:
        handle.write(_key_bytes(ca_key))
    loopback = [x509.IPAddress(ipaddress.ip_address('127.0.0.1')), x509.DNSName('localhost')]
    server, client = x509.oid.ExtendedKeyUsageOID.SERVER_AUTH, x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH
    leaves = {
        'apiserver': (_name('kube-apiserver'), loopback + [x509.DNSName('kubernetes.default.svc')] + [
            x509.IPAddress(ipaddress.ip_address(ip)) for ip in (KUBERNETES_SERVICE_IP, QEMU_HOST, *api_sans)], [server]),
        'admin': (_name('realkube-admin', 'system:masters'), [], [client]),
        # the processes the supervisor runs for the chart's pods: apart from the test's own requests
        'workloads': (_name('realkube-workloads', 'system:masters'), [], [client]),
        # the API server to kubelets (exec, logs), as kubeadm's apiserver-kubelet-client
        'apiserver-kubelet-client': (_name('kube-apiserver-kubelet-client', 'system:masters'), [], [client]),
        # kube-proxy on every node (the default ClusterRoleBinding system:node-proxier names this user)
        'kube-proxy': (_name('system:kube-proxy'), [], [client]),
    }
    for leaf, (subject, sans, usages) in leaves.items():
        _write_leaf(pki, leaf, subject, sans, usages, ca=(ca_cert, ca_key))
    sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with open(os.path.join(pki, 'sa.key'), 'wb') as handle:
        handle.write(_key_bytes(sa_key))
    with open(os.path.join(pki, 'sa.pub'), 'wb') as handle:
        handle.write(sa_key.public_key().public_bytes(serialization.Encoding.PEM,
                                                      serialization.PublicFormat.SubjectPublicKeyInfo))
    return pki


def _kubeconfig(path, server, pki, user='admin'):
    def b64(name):
        with open(os.path.join(pki, name), 'rb') as handle:
            return base64.b64encode(handle.read()).decode()
    config = {
        'apiVersion': 'v1', 'kind': 'Config', 'current-context': 'realkube',
        'clusters': [{'name': 'realkube', 'cluster': {'server': server, 'certificate-authority-data': b64('ca.crt')}}],
        'users': [{'name': user, 'user': {'client-certificate-data': b64(user + '.crt'),
                                          'client-key-data': b64(user + '.key')}}],
        'contexts': [{'name': 'realkube', 'context': {'cluster': 'realkube', 'user': user}}],
    }
    with open(path, 'w', encoding='utf-8') as handle:
        json.dump(config, handle, indent=1)
    os.chmod(path, 0o600)


# --------------------------------------------------------------------------------------------
# a small API client (the supervisor must not depend on more than the standard library and
# `cryptography`, which ansible-core brings)


class Api:
    def __init__(self, server, pki, user):
        self.server = server
        self.ctx = ssl.create_default_context(cafile=os.path.join(pki, 'ca.crt'))
        self.ctx.load_cert_chain(os.path.join(pki, user + '.crt'), os.path.join(pki, user + '.key'))

    def request(self, method, path, body=None, content_type='application/json', timeout=10):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.server + path, data=data, method=method,
                                     headers={'Content-Type': content_type, 'Accept': 'application/json'})
        try:
            with urllib.request.urlopen(req, context=self.ctx, timeout=timeout) as resp:
                return resp.status, _decode(resp.read())
        except urllib.error.HTTPError as exc:
            return exc.code, _decode(exc.read())

    def get(self, path):
        code, body = self.request('GET', path)
        return body if code == 200 else None

    def items(self, path):
        body = self.get(path)
        return body.get('items', []) if body else []

    def merge_patch(self, path, patch):
        return self.request('PATCH', path, patch, 'application/merge-patch+json')


def _decode(raw):
    try:
        return json.loads(raw or b'null')
    except ValueError:  # /readyz and friends answer in plain text
        return {'message': raw.decode(errors='replace')}


def _free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


# --------------------------------------------------------------------------------------------
# the supervisor (a detached process; `down` signals its process group)


class Supervisor:
    def __init__(self, directory, nodes, kubeadm_traces, api_sans=(), kubelets=False):
        self.dir = directory
        self.kubelets = kubelets
        self.nodes = nodes
        self.kubeadm_traces = kubeadm_traces
        self.api_sans = api_sans
        self.procs = {}
        self.stopping = threading.Event()
        self.logs = os.path.join(directory, 'logs')
        os.makedirs(self.logs, exist_ok=True)
        self.spiderpool = {}  # controller Deployment uid -> state
        self.restart_after = {}
        self.init_jobs = set()

    # -- processes

    def spawn(self, name, argv, env=None):
        log = open(os.path.join(self.logs, name + '.log'), 'ab')  # pylint: disable=consider-using-with
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env,  # pylint: disable=consider-using-with
                                cwd=self.dir, stdin=subprocess.DEVNULL)
        self.procs[name] = proc
        return proc

    def check_alive(self, name):
        proc = self.procs[name]
        if proc.poll() is not None:
            tail = ''
            with open(os.path.join(self.logs, name + '.log'), 'rb') as handle:
                lines = [line for line in handle.read().decode(errors='replace').splitlines() if line.strip()]
            for line in reversed(lines):
                if 'address already in use' in line:
                    raise RealKubeError('%s: port in use (%s)' % (name, line.strip()[-160:]))
            tail = lines[-1].strip()[-200:] if lines else ''
            raise RealKubeError('%s exited with status %s: %s (log: %s)' % (
                name, proc.returncode, tail, os.path.join(self.logs, name + '.log')))

    def wait_for(self, what, check, names, timeout=READY_TIMEOUT):
        deadline = time.time() + timeout
        while time.time() < deadline:
            for name in names:
                self.check_alive(name)
            try:
                if check():
                    return
            except (OSError, ssl.SSLError, ValueError):
                pass
            time.sleep(0.2)
        raise RealKubeError('%s not ready after %d s (logs: %s)' % (what, timeout, self.logs))

    def stop_all(self):
        self.stopping.set()
        for proc in reversed(list(self.procs.values())):
            if proc.poll() is None:
                proc.terminate()
        deadline = time.time() + 10
        for proc in self.procs.values():
            try:
                proc.wait(max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                proc.kill()

    # -- control plane

    def start(self):
        binaries = {}
        for name in BINARIES:
            binaries[name] = _asset(name)
            if binaries[name] is None:
                raise RealKubeError('%s not built: run tests/cluster/realkube build' % name)
        pki = _certificates(self.dir, self.api_sans)
        etcd_port, peer_port, api_port = _free_port(), _free_port(), _free_port()
        self.spawn('etcd', [
            binaries['etcd'], '--name', 'realkube', '--data-dir', os.path.join(self.dir, 'etcd'),
            '--listen-client-urls', 'http://127.0.0.1:%d' % etcd_port,
            '--advertise-client-urls', 'http://127.0.0.1:%d' % etcd_port,
            '--listen-peer-urls', 'http://127.0.0.1:%d' % peer_port,
            '--initial-advertise-peer-urls', 'http://127.0.0.1:%d' % peer_port,
            '--initial-cluster', 'realkube=http://127.0.0.1:%d' % peer_port,
            '--listen-metrics-urls', '', '--unsafe-no-fsync', '--log-level', 'warn'])
        self.wait_for('etcd', lambda: urllib.request.urlopen(  # pylint: disable=consider-using-with
            'http://127.0.0.1:%d/health' % etcd_port, timeout=2).status == 200, ['etcd'])
        server = 'https://127.0.0.1:%d' % api_port

        def p(name):
            return os.path.join(pki, name)
        self.spawn('kube-apiserver', [
            binaries['kube-apiserver'], '--etcd-servers', 'http://127.0.0.1:%d' % etcd_port,
            '--bind-address', '127.0.0.1', '--advertise-address', '127.0.0.1', '--secure-port', str(api_port),
            '--tls-cert-file', p('apiserver.crt'), '--tls-private-key-file', p('apiserver.key'),
            '--client-ca-file', p('ca.crt'), '--service-account-key-file', p('sa.pub'),
            '--service-account-signing-key-file', p('sa.key'),
            '--service-account-issuer', 'https://kubernetes.default.svc.cluster.local',
            '--service-cluster-ip-range', SERVICE_CIDR, '--authorization-mode', 'Node,RBAC',
            '--allow-privileged', '--profiling=false', '--endpoint-reconciler-type', 'none',
            # webhooks go to their Service's endpoints (the Pod IP) through the cluster network
            '--enable-aggregator-routing=true', '--egress-selector-config-file', self.egress_config(pki),
            '--enable-priority-and-fairness=false', '--audit-policy-file', self.audit_policy(),
            '--audit-log-path', os.path.join(self.dir, 'audit.log'), '--audit-log-mode', 'blocking',
            '--audit-log-format', 'json',
            # kubelets on VM nodes: reached at their InternalIP through the cluster network, as kubeadm sets it
            '--kubelet-client-certificate', p('apiserver-kubelet-client.crt'),
            '--kubelet-client-key', p('apiserver-kubelet-client.key'),
            '--kubelet-preferred-address-types', 'InternalIP,Hostname', '--v', '1'])
        _kubeconfig(os.path.join(self.dir, 'kubeconfig'), server, pki)
        # every process of the harness has its own identity: the admin one is the user's alone
        kubeconfig = self.kubeconfig = os.path.join(self.dir, 'kubeconfig-workloads')
        _kubeconfig(kubeconfig, server, pki, 'workloads')
        api = self.api = Api(server, pki, 'workloads')
        self.wait_for('kube-apiserver', lambda: api.request('GET', '/readyz')[0] == 200, ['etcd', 'kube-apiserver'])
        self.spawn('kube-controller-manager', [
            binaries['kube-controller-manager'], '--kubeconfig', kubeconfig, '--secure-port', '0',
            '--leader-elect=false', '--service-account-private-key-file', p('sa.key'), '--root-ca-file', p('ca.crt'),
            '--use-service-account-credentials=false', '--allocate-node-cidrs', '--cluster-cidr', POD_CIDR,
            '--service-cluster-ip-range', SERVICE_CIDR, '--node-cidr-mask-size', '24',
            # kwok's node heartbeats come late on a loaded machine (VM nodes under software emulation):
            # without this the node lifecycle controller marks every Pod NotReady, and kwok never undoes it.
            '--node-monitor-grace-period', '10m',
            '--v', '1'])
        self.spawn('kube-scheduler', [binaries['kube-scheduler'], '--kubeconfig', kubeconfig, '--secure-port', '0',
                                      '--leader-elect=false', '--v', '1'])
        self.spawn('kwok', [
            binaries['kwok'], '--kubeconfig', kubeconfig, '--manage-all-nodes=false',
            '--manage-nodes-with-annotation-selector', KWOK_ANNOTATION + '=fake',
            '--disregard-status-with-label-selector', SUPERVISED_LABEL,
            '--cidr', '10.0.0.1/24', '--node-ip', NODE_IP, '--server-address', ''])
        running = ['etcd', 'kube-apiserver', 'kube-controller-manager', 'kube-scheduler', 'kwok']
        # the controllers are up when the default ServiceAccount exists (serviceaccount controller)
        self.wait_for('kube-controller-manager', lambda: api.get(
            '/api/v1/namespaces/default/serviceaccounts/default') is not None, running)
        if self.kubeadm_traces:
            self.kubeadm_config()
        for node in self.nodes:
            add_node(api, *node)
        self.wait_for('Nodes Ready', lambda: all(_node_ready(api, node[0]) for node in self.nodes), running)
        self.running = running

    def egress_config(self, pki):
        self.network = ClusterNetwork(pki)
        self.network.start()
        path = os.path.join(self.dir, 'egress-selector.json')
        with open(path, 'w', encoding='utf-8') as handle:
            json.dump({'apiVersion': 'apiserver.k8s.io/v1beta1', 'kind': 'EgressSelectorConfiguration',
                       'egressSelections': [{'name': 'cluster', 'connection': {
                           'proxyProtocol': 'HTTPConnect',
                           'transport': {'tcp': {'url': 'https://127.0.0.1:%d' % self.network.port, 'tlsConfig': {
                               'caBundle': os.path.join(pki, 'ca.crt'), 'clientCert': os.path.join(pki, 'workloads.crt'),
                               'clientKey': os.path.join(pki, 'workloads.key')}}}}}]}, handle)
        return path

    def audit_policy(self):
        """Metadata of every request a client makes (tests count the collection's own requests by user)."""
        path = os.path.join(self.dir, 'audit-policy.json')
        with open(path, 'w', encoding='utf-8') as handle:
            json.dump({'apiVersion': 'audit.k8s.io/v1', 'kind': 'Policy', 'omitStages': ['RequestReceived'],
                       'rules': [{'level': 'None', 'users': ['system:apiserver']},
                                 {'level': 'None', 'verbs': ['watch', 'get'], 'resources': [
                                     {'group': 'coordination.k8s.io', 'resources': ['leases']}]},
                                 {'level': 'Metadata'}]}, handle)
        return path

    def kubeadm_config(self):
        """What a kubeadm (kubespray) cluster leaves behind and components read (Spiderpool #3054)."""
        cluster_configuration = '\n'.join([
            'apiVersion: kubeadm.k8s.io/v1beta4', 'kind: ClusterConfiguration',
            'kubernetesVersion: %s' % KUBERNETES_VERSION, 'clusterName: cluster.local',
            'networking:', '  dnsDomain: cluster.local', '  podSubnet: %s' % POD_CIDR,
            '  serviceSubnet: %s' % SERVICE_CIDR, ''])
        self.api.request('POST', '/api/v1/namespaces/kube-system/configmaps', {
            'apiVersion': 'v1', 'kind': 'ConfigMap', 'metadata': {'name': 'kubeadm-config', 'namespace': 'kube-system'},
            'data': {'ClusterConfiguration': cluster_configuration}})

    # -- the Spiderpool chart's processes

    def serve(self):
        """Until stopped: run the chart's controller and init Job as processes, keep webhooks pointed at them."""
        while not self.stopping.wait(0.5):
            for name in self.running:
                self.check_alive(name)
            try:
                if not self.kubelets:
                    self.reconcile_controllers()
                    self.reconcile_init_jobs()
            except (OSError, ssl.SSLError, ValueError) as exc:
                print('supervisor: %s' % exc, file=sys.stderr, flush=True)

    def reconcile_controllers(self):
        seen = set()
        for deploy in self.api.items('/apis/apps/v1/deployments?labelSelector=' + SUPERVISED_LABEL.replace('=', '%3D')):
            uid = deploy['metadata']['uid']
            seen.add(uid)
            state = self.spiderpool.get(uid)
            generation = deploy['metadata'].get('generation')
            if state and self.procs[state['proc']].poll() is not None:
                # as a kubelet would: restart the crashed container after a pause
                print('supervisor: %s exited with status %s, restarting' % (
                    state['proc'], self.procs[state['proc']].returncode), file=sys.stderr, flush=True)
                self.restart_after[uid] = time.time() + 2
                del self.spiderpool[uid]
                state = None
            if state is None and time.time() < self.restart_after.get(uid, 0):
                continue
            if state is None or state['generation'] != generation:
                if state:
                    self.stop_controller(state)
                state = self.start_controller(deploy)
                if state is None:
                    continue
                self.spiderpool[uid] = state
            self.sync_tls(state)
            self.report_pods(deploy, state)
        for uid in set(self.spiderpool) - seen:
            self.stop_controller(self.spiderpool.pop(uid))

    def start_controller(self, deploy):
        namespace = deploy['metadata']['namespace']
        pods = self.api.items('/api/v1/namespaces/%s/pods?labelSelector=%s' % (
            namespace, ','.join('%s%%3D%s' % kv for kv in deploy['spec']['selector']['matchLabels'].items())))
        if not pods:
            return None
        pod = pods[0]
        spec = deploy['spec']['template']['spec']
        container = spec['containers'][0]
        home = os.path.join(self.dir, 'spiderpool', deploy['metadata']['uid'])
        os.makedirs(os.path.join(home, 'cni'), exist_ok=True)
        os.makedirs(os.path.join(home, 'tls'), exist_ok=True)
        config_path = os.path.join(home, 'conf.yml')
        for volume in spec.get('volumes', []):
            if 'configMap' in volume:
                cm = self.api.get('/api/v1/namespaces/%s/configmaps/%s' % (namespace, volume['configMap']['name']))
                with open(config_path, 'w', encoding='utf-8') as handle:
                    handle.write((cm or {}).get('data', {}).get('conf.yml', ''))
        secrets = [src['secret']['name'] for volume in spec.get('volumes', [])
                   for src in volume.get('projected', {}).get('sources', []) if 'secret' in src]
        state = {'generation': deploy['metadata'].get('generation'), 'ready': False, 'namespace': namespace,
                 'tls_secret': secrets[0] if secrets else None, 'tls_dir': os.path.join(home, 'tls'), 'tls': None}
        self.sync_tls(state)
        ports = {'SPIDERPOOL_HEALTH_PORT': _free_port(), 'SPIDERPOOL_METRIC_HTTP_PORT': _free_port(),
                 'SPIDERPOOL_WEBHOOK_PORT': _free_port(), 'SPIDERPOOL_GOPS_LISTEN_PORT': _free_port()}
        env = {'PATH': os.environ.get('PATH', '/usr/bin:/bin'), 'KUBECONFIG': self.kubeconfig}
        env.update(_container_env(container, pod))
        # A pod has its own network namespace and mounts: here ports and host paths are per cluster; the
        # API server reaches the declared webhook port at the Pod's address through the cluster network.
        env.update({key: str(value) for key, value in ports.items()})
        env['SPIDERPOOL_CNI_CONFIG_DIR'] = os.path.join(home, 'cni')
        declared = {p.get('name'): p['containerPort'] for p in container.get('ports', [])}
        node = self.api.get('/api/v1/nodes/%s' % pod['spec'].get('nodeName')) or {}
        state['pod_ip'] = next((a['address'] for a in node.get('status', {}).get('addresses', [])
                                if a['type'] == 'InternalIP'), NODE_IP)  # hostNetwork
        state['route'] = '%s:%d' % (state['pod_ip'], declared.get('webhook', 5722))
        self.network.routes[state['route']] = ports['SPIDERPOOL_WEBHOOK_PORT']
        args = []
        for arg in container.get('args', []):
            if arg.startswith('--config-path='):
                arg = '--config-path=' + config_path
            elif arg.startswith('--tls-server-cert='):
                arg = '--tls-server-cert=' + os.path.join(state['tls_dir'], 'tls.crt')
            elif arg.startswith('--tls-server-key='):
                arg = '--tls-server-key=' + os.path.join(state['tls_dir'], 'tls.key')
            args.append(arg)
        state['proc'] = 'spiderpool-controller-%s' % deploy['metadata']['uid'][:8]
        state['ports'] = ports
        self.spawn(state['proc'], [_asset('spiderpool-controller'), *args], env)
        return state

    def sync_tls(self, state):
        """The projected Secret volume: the chart's serving cert, refreshed when an upgrade renews it."""
        if not state['tls_secret']:
            return
        secret = self.api.get('/api/v1/namespaces/%s/secrets/%s' % (state['namespace'], state['tls_secret']))
        data = (secret or {}).get('data') or {}
        if data and data != state['tls']:
            for key in ('tls.crt', 'tls.key'):
                with open(os.path.join(state['tls_dir'], key), 'wb') as handle:
                    handle.write(base64.b64decode(data.get(key, '')))
            state['tls'] = data

    def stop_controller(self, state):
        self.network.routes.pop(state['route'], None)
        proc = self.procs.pop(state['proc'], None)
        if proc and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()

    def report_pods(self, deploy, state):
        """Report the controller's Pods Running and Ready once its readiness endpoint answers."""
        if not state['ready']:
            try:
                url = 'http://127.0.0.1:%d/v1/runtime/readiness' % state['ports']['SPIDERPOOL_HEALTH_PORT']
                with urllib.request.urlopen(url, timeout=2) as resp:  # nosec - loopback
                    state['ready'] = resp.status == 200
            except (OSError, ValueError):
                return
        namespace = deploy['metadata']['namespace']
        selector = ','.join('%s%%3D%s' % kv for kv in deploy['spec']['selector']['matchLabels'].items())
        now = datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')
        for pod in self.api.items('/api/v1/namespaces/%s/pods?labelSelector=%s' % (namespace, selector)):
            if pod['metadata'].get('deletionTimestamp') or not pod['spec'].get('nodeName'):
                continue
            status = pod.get('status', {})
            if status.get('phase') == 'Running' and any(
                    c.get('type') == 'Ready' and c.get('status') == 'True' for c in status.get('conditions', [])):
                continue
            host_ip = state['pod_ip']
            conditions = [{'type': t, 'status': 'True', 'lastTransitionTime': now}
                          for t in ('Initialized', 'PodReadyToStartContainers', 'ContainersReady', 'Ready',
                                    'PodScheduled')]
            containers = [{'name': c['name'], 'image': c['image'], 'imageID': '', 'ready': True, 'started': True,
                           'restartCount': 0, 'state': {'running': {'startedAt': now}}}
                          for c in pod['spec']['containers']]
            self.api.merge_patch('/api/v1/namespaces/%s/pods/%s/status' % (namespace, pod['metadata']['name']), {
                'status': {'phase': 'Running', 'conditions': conditions, 'containerStatuses': containers,
                           'hostIP': host_ip, 'hostIPs': [{'ip': host_ip}], 'podIP': host_ip,
                           'podIPs': [{'ip': host_ip}], 'startTime': now}})

    def reconcile_init_jobs(self):
        """Run each post-install Job of the chart (command spiderpool-init) once, with its environment."""
        for job in self.api.items('/apis/batch/v1/jobs'):
            uid = job['metadata']['uid']
            container = job['spec']['template']['spec']['containers'][0]
            if uid in self.init_jobs or os.path.basename(container.get('command', [''])[0]) != 'spiderpool-init':
                continue
            self.init_jobs.add(uid)
            env = {'PATH': os.environ.get('PATH', '/usr/bin:/bin'),
                   'KUBECONFIG': self.kubeconfig}
            env.update(_container_env(container, {'metadata': {'name': job['metadata']['name'],
                                                               'namespace': job['metadata']['namespace']}}))
            if 'SPIDERPOOL_INIT_DEFAULT_CNI_DIR' in env:
                env['SPIDERPOOL_INIT_DEFAULT_CNI_DIR'] = os.path.join(self.dir, 'spiderpool', 'init-cni')
                os.makedirs(env['SPIDERPOOL_INIT_DEFAULT_CNI_DIR'], exist_ok=True)
            self.spawn('spiderpool-init-%s' % uid[:8], [_asset('spiderpool-init'), *container.get('args', [])], env)


class ClusterNetwork(threading.Thread):
    """What the API server reaches through its "cluster" egress (an HTTP CONNECT proxy): Pod addresses
    and ports that the supervisor maps to the processes it runs; anything else is unreachable."""

    def __init__(self, pki):
        super().__init__(daemon=True)
        # the API server speaks TLS to its egress proxy
        self.tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=os.path.join(pki, 'ca.crt'))
        self.tls.load_cert_chain(os.path.join(pki, 'apiserver.crt'), os.path.join(pki, 'apiserver.key'))
        self.sock = socket.socket()
        self.sock.bind(('127.0.0.1', 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.routes = {}
        self.netns_routes = os.path.join(os.path.dirname(pki), 'cluster-routes.json')

    def run(self):
        while True:
            try:
                client = self.sock.accept()[0]
            except OSError:
                return
            threading.Thread(target=self.connect, args=(client,), daemon=True).start()

    def connect(self, client):
        try:
            client = self.tls.wrap_socket(client, server_side=True)
            head = b''
            while b'\r\n\r\n' not in head and len(head) < 8192:
                chunk = client.recv(4096)
                if not chunk:
                    raise OSError('closed')
                head += chunk
            method, target = head.split(b' ', 2)[:2]
            upstream = self.dial(target.decode()) if method == b'CONNECT' else None
            if upstream is None:
                client.sendall(b'HTTP/1.1 502 Bad Gateway\r\n\r\n')
                raise OSError('no route to %s' % target.decode())
            upstream.settimeout(None)
            client.sendall(b'HTTP/1.1 200 Connection established\r\n\r\n')
        except (OSError, ValueError):
            client.close()
            return
        for src, dst in ((client, upstream), (upstream, client)):
            threading.Thread(target=_pipe, args=(src, dst), daemon=True).start()

    def dial(self, target):
        local = self.routes.get(target)
        if local is not None:
            return socket.create_connection(('127.0.0.1', local), timeout=5)
        host, port = target.rsplit(':', 1) if ':' in target else (target, '')
        try:
            address = ipaddress.ip_address(host.strip('[]'))
            with open(self.netns_routes, encoding='utf-8') as handle:
                routes = json.load(handle)
        except (ValueError, OSError):
            return None
        for cidr, netns in routes:
            if address in ipaddress.ip_network(cidr):
                return _connect_in_netns(netns, str(address), int(port))
        return None

    def close(self):
        self.sock.close()


def _connect_in_netns(netns, host, port):
    """A TCP connection made from inside network namespace NETNS (the socket stays in it)."""
    result = {}

    def dial():  # setns changes only the calling thread's namespace
        try:
            with open('/run/netns/' + netns, 'rb') as handle:
                if _LIBC.setns(handle.fileno(), CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), 'setns %s' % netns)
            result['sock'] = socket.create_connection((host, port), timeout=5)
        except OSError as exc:
            result['error'] = exc
    worker = threading.Thread(target=dial)
    worker.start()
    worker.join()
    if 'error' in result:
        raise result['error']
    return result['sock']


def _pipe(src, dst):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for sock in (src, dst):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def _container_env(container, pod):
    env = {}
    for item in container.get('env', []):
        if 'value' in item:
            env[item['name']] = str(item['value'])
        elif 'fieldRef' in item.get('valueFrom', {}):
            field = item['valueFrom']['fieldRef']['fieldPath']
            env[item['name']] = {'metadata.name': pod['metadata']['name'],
                                 'metadata.namespace': pod['metadata']['namespace'],
                                 'spec.nodeName': pod.get('spec', {}).get('nodeName', '')}.get(field, '')
    return env


def add_node(api, name, control_plane=False, internal_ip=None, labels=None, taints=None):
    """A Node kwok keeps Ready, labelled as kubeadm labels it."""
    all_labels = {'kubernetes.io/hostname': name, 'kubernetes.io/os': 'linux', 'kubernetes.io/arch': 'amd64',
                  'type': 'kwok'}
    if control_plane:
        all_labels['node-role.kubernetes.io/control-plane'] = ''
    all_labels.update(labels or {})
    node = {'apiVersion': 'v1', 'kind': 'Node',
            'metadata': {'name': name, 'labels': all_labels, 'annotations': {KWOK_ANNOTATION: 'fake'}},
            'spec': {'taints': taints or []}}
    if internal_ip:
        node['status'] = {'addresses': [{'type': 'InternalIP', 'address': internal_ip},
                                        {'type': 'Hostname', 'address': name}]}
    code, body = api.request('POST', '/api/v1/nodes', node)
    if code not in (200, 201):
        raise RealKubeError('creating Node %s failed: %s' % (name, body.get('message')))
    if internal_ip:  # status is not taken on create
        api.merge_patch('/api/v1/nodes/%s/status' % name, {'status': node['status']})


def _node_ready(api, name):
    node = api.get('/api/v1/nodes/' + name) or {}
    return any(c.get('type') == 'Ready' and c.get('status') == 'True'
               for c in node.get('status', {}).get('conditions', []))


# --------------------------------------------------------------------------------------------
# commands


def _serve(args):
    """The detached supervisor: start everything, write DIR/ready (or DIR/error), then serve."""
    directory = args.dir
    supervisor = Supervisor(directory, [_parse_node(n) for n in args.node], not args.no_kubeadm_traces,
                            args.api_san, args.kubelets)

    def on_term(*_):
        supervisor.stop_all()
        sys.exit(0)
    signal.signal(signal.SIGTERM, on_term)
    try:
        supervisor.start()
    except (RealKubeError, OSError) as exc:
        with open(os.path.join(directory, 'error'), 'w', encoding='utf-8') as handle:
            handle.write(str(exc).replace('\n', ' ') + '\n')
        supervisor.stop_all()
        return 1
    with open(os.path.join(directory, 'ready'), 'w', encoding='utf-8') as handle:
        handle.write(supervisor.api.server + '\n')
    try:
        supervisor.serve()
    except RealKubeError as exc:
        print('supervisor: %s' % exc, file=sys.stderr, flush=True)
        supervisor.stop_all()
        return 1
    return 0


def _parse_node(text):
    name, role = (text.split(':', 1) + [''])[:2]
    if role not in ('', 'control-plane'):
        raise SystemExit('realkube: bad --node %r: expected NAME or NAME:control-plane' % text)
    return (name, role == 'control-plane')


def up(directory, nodes=(), kubeadm_traces=True, timeout=READY_TIMEOUT, api_sans=(), kubelets=False):
    """Start a cluster in DIR (detached); return the kubeconfig path. Raises RealKubeError."""
    for ip in api_sans:
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            raise RealKubeError('bad --api-san %r: expected an IP address' % ip) from None
    directory = os.path.abspath(directory)
    os.makedirs(directory, exist_ok=True)
    if _supervisor_pid(directory):
        raise RealKubeError('a cluster is already running in %s (realkube down --dir %s)' % (directory, directory))
    build()
    for stale in ('ready', 'error'):
        if os.path.exists(os.path.join(directory, stale)):
            os.remove(os.path.join(directory, stale))
    argv = [sys.executable, os.path.abspath(__file__), '_serve', '--dir', directory]
    for name, control_plane in nodes:
        argv += ['--node', name + (':control-plane' if control_plane else '')]
    if not kubeadm_traces:
        argv.append('--no-kubeadm-traces')
    for ip in api_sans:
        argv += ['--api-san', ip]
    if kubelets:
        argv.append('--kubelets')
    with open(os.path.join(directory, 'supervisor.log'), 'ab') as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,  # pylint: disable=consider-using-with
                                stdin=subprocess.DEVNULL, start_new_session=True)
    with open(os.path.join(directory, 'supervisor.pid'), 'w', encoding='utf-8') as handle:
        handle.write('%d\n' % proc.pid)
    deadline = time.time() + timeout
    while time.time() < deadline:
        if os.path.exists(os.path.join(directory, 'ready')):
            return os.path.join(directory, 'kubeconfig')
        if proc.poll() is not None or os.path.exists(os.path.join(directory, 'error')):
            proc.wait(15)
            down(directory)
            error = os.path.join(directory, 'error')
            raise RealKubeError(open(error, encoding='utf-8').read().strip() if os.path.exists(error)
                                else 'supervisor exited (%s)' % os.path.join(directory, 'supervisor.log'))
        time.sleep(0.2)
    down(directory)
    raise RealKubeError('cluster not ready after %d s (logs: %s)' % (timeout, os.path.join(directory, 'logs')))


def _supervisor_pid(directory):
    """The supervisor's pid, which is also its process group: alive while any process of it is."""
    try:
        with open(os.path.join(directory, 'supervisor.pid'), encoding='utf-8') as handle:
            pid = int(handle.read().strip())
        os.killpg(pid, 0)  # the group: a crashed supervisor may leave its children behind
        return pid
    except (OSError, ValueError):
        return None


def down(directory):
    """Stop everything `up` started in DIR; nothing is left running."""
    directory = os.path.abspath(directory)
    pid = _supervisor_pid(directory)
    if pid:
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                # A supervisor started by this process stays a zombie (and its group alive) until reaped.
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
            try:
                os.killpg(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.2)
        else:
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    pid_file = os.path.join(directory, 'supervisor.pid')
    if os.path.exists(pid_file):
        os.remove(pid_file)


def main(argv=None):
    parser = argparse.ArgumentParser(prog='realkube', description=__doc__.split('\n\n', maxsplit=1)[0])
    sub = parser.add_subparsers(dest='command', required=True)
    build_parser = sub.add_parser('build', help='build the pinned components into .cache/realkube (once per machine)')
    build_parser.add_argument('--force', action='store_true', help='rebuild even when the cache is current')
    up_parser = sub.add_parser('up', help='start a cluster in DIR and print its kubeconfig')
    up_parser.add_argument('--dir', required=True)
    up_parser.add_argument('--node', action='append', default=[], metavar='NAME[:control-plane]')
    up_parser.add_argument('--no-kubeadm-traces', action='store_true',
                           help='leave out what kubeadm leaves behind (ConfigMap kube-system/kubeadm-config)')
    up_parser.add_argument('--api-san', action='append', default=[], metavar='IP',
                           help='another IP address the API server certificate names (10.0.2.2 always is)')
    up_parser.add_argument('--kubelets', action='store_true',
                           help='kubelets run the pods (tests/cluster/kubenode): no process stands in for the '
                                'chart\'s controller and init Job')
    down_parser = sub.add_parser('down', help='stop the cluster in DIR')
    down_parser.add_argument('--dir', required=True)
    serve_parser = sub.add_parser('_serve')
    serve_parser.add_argument('--dir', required=True)
    serve_parser.add_argument('--node', action='append', default=[])
    serve_parser.add_argument('--no-kubeadm-traces', action='store_true')
    serve_parser.add_argument('--api-san', action='append', default=[])
    serve_parser.add_argument('--kubelets', action='store_true')
    args = parser.parse_args(argv)
    try:
        if args.command == 'build':
            build(force=args.force)
            chart_path()
        elif args.command == 'up':
            kubeconfig = up(args.dir, [_parse_node(n) for n in args.node], not args.no_kubeadm_traces,
                            api_sans=args.api_san, kubelets=args.kubelets)
            print('kubeconfig %s' % kubeconfig, flush=True)
        elif args.command == 'down':
            down(args.dir)
        else:
            return _serve(args)
    except RealKubeError as exc:
        print('realkube: %s' % exc, file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
