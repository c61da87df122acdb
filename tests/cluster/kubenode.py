"""Kubernetes nodes on the VM nodes: kubelet, kube-proxy and containerd, joined to a realkube cluster.

    python3 tests/cluster/kubenode.py disk
    python3 tests/cluster/kubenode.py join --lab DIR --cluster DIR [--control-plane NODE]... [--timeout S]

`disk` writes .cache/kubenode/disk.img (ext4, every VM gets its own copy-on-write view of it through
`vmnodes up --disk`): containerd's root with the images of tests/cluster/images.py imported by this
host's containerd (Debian's, the nodes' version), and under kubenode/bin kubelet and kube-proxy (the
pinned k8s.io/kubernetes build). Rebuilt when any of them changes.

`join` makes every VM of a `vmnodes up` lab (DIR) a node of the `realkube up --kubelets` cluster in
DIR: a client certificate per node (system:node:<ECS hostname>), the kube-proxy one, kubeconfigs
pointing at the API server as the VMs reach it (the host address of QEMU's user network), then on
each VM over SSH the join script (tests/cluster/kubenode-join): containerd imports the images, kubelet and kube-proxy start as
systemd services with the node named like the ECS hostname and the primary ENI address as its
InternalIP. It also points the `kubernetes` Service at that address and tells the cluster network
which VPC namespace reaches each node (kubectl exec/logs and webhooks on hostNetwork pods).
It returns when every Node is registered; a node that does not register within the timeout fails
the join with the node named and the last lines of its kubelet log.
"""
import argparse
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import images  # noqa: E402  pylint: disable=wrong-import-position
import realkube  # noqa: E402  pylint: disable=wrong-import-position
import vmnodes  # noqa: E402  pylint: disable=wrong-import-position

HERE = os.path.dirname(os.path.abspath(__file__))
CACHE = os.path.join(realkube.ROOT, '.cache', 'kubenode')
DISK = os.path.join(CACHE, 'disk.img')
JOIN_SCRIPT = os.path.join(HERE, 'kubenode-join')
NODE_BINARIES = tuple(realkube.NODE_COMMANDS)
MOUNT = '/mnt/kubenode'
JOIN_TIMEOUT = 600


class KubeNodeError(Exception):
    """One line: which node, which step, where to look."""


def _digest(paths):
    digest = hashlib.sha256()
    for path in paths:
        with open(path, 'rb') as handle:
            digest.update(path.encode() + hashlib.sha256(handle.read()).digest())
    return digest.hexdigest()


CONTAINERD_CONFIG = """version = 2
root = "%(root)s"
state = "%(state)s"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "%(sock)s"
"""


def _import_images(archives, root, tmp):
    """containerd's root (/var/lib/containerd) with ARCHIVES imported and unpacked: done once here, at
    native speed, instead of on every VM under software emulation."""
    state, sock = os.path.join(tmp, 'state'), os.path.join(tmp, 'containerd.sock')
    config = os.path.join(tmp, 'containerd.toml')
    with open(config, 'w', encoding='utf-8') as handle:
        handle.write(CONTAINERD_CONFIG % {'root': root, 'state': state, 'sock': sock})
    with open(os.path.join(tmp, 'containerd.log'), 'w', encoding='utf-8') as log:
        daemon = subprocess.Popen(['containerd', '--config', config], stdout=log,  # pylint: disable=consider-using-with
                                  stderr=subprocess.STDOUT)
    try:
        for _attempt in range(100):
            if os.path.exists(sock) or daemon.poll() is not None:
                break
            time.sleep(0.1)
        for archive in archives:
            vmnodes._run(['ctr', '--address', sock, '-n', 'k8s.io', 'images', 'import', archive])
    finally:
        daemon.terminate()
        daemon.wait(30)


def disk():
    """The node disk image; rebuilt only when its contents change."""
    if not shutil.which('containerd'):
        raise KubeNodeError('containerd not found: apt-get install containerd (make env does)')
    archives = sorted(images.build().values())
    sources = {'bin/' + name: os.path.join(realkube.NODE_BIN, name) for name in NODE_BINARIES}
    stamp = os.path.join(CACHE, 'disk.stamp')
    digest = _digest([sources[name] for name in sorted(sources)] + archives)
    if os.path.exists(DISK) and os.path.exists(stamp) and open(stamp, encoding='utf-8').read().strip() == digest:
        return DISK
    os.makedirs(CACHE, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
        root = os.path.join(tmp, 'root')
        for name, path in sources.items():
            os.makedirs(os.path.dirname(os.path.join(root, 'kubenode', name)), exist_ok=True)
            shutil.copyfile(path, os.path.join(root, 'kubenode', name))
            os.chmod(os.path.join(root, 'kubenode', name), 0o755 if name.startswith('bin/') else 0o644)
        _import_images(archives, os.path.join(root, 'containerd'), tmp)
        used = int(subprocess.run(['du', '-sb', root], capture_output=True, text=True, check=True).stdout.split()[0])
        # room for what the pods write (the VMs' writes stay in QEMU's snapshot)
        vmnodes._run(['mkfs.ext4', '-q', '-F', '-L', 'kubenode', '-d', root, os.path.join(tmp, 'disk.img'),
                      '%dM' % (used // 2 ** 20 + 1024)])
        os.replace(os.path.join(tmp, 'disk.img'), DISK)
    with open(stamp, 'w', encoding='utf-8') as handle:
        handle.write(digest + '\n')
    return DISK


def _server_port(cluster_dir):
    with open(os.path.join(cluster_dir, 'kubeconfig'), encoding='utf-8') as handle:
        server = json.load(handle)['clusters'][0]['cluster']['server']
    return int(server.rsplit(':', 1)[1])


def _ssh(lab_dir, vm, command, stdin=None, timeout=JOIN_TIMEOUT):
    return subprocess.run(vmnodes.ssh_argv(lab_dir, vm, command), input=stdin, capture_output=True, timeout=timeout,
                          check=False)


def _node_files(pki, server, node):
    """/etc/kubernetes of NODE as a tar: the CA, kubelet.conf (its own identity), kube-proxy.conf, the join script."""
    leaf = os.path.basename(realkube.node_credentials(pki, node))
    out = io.BytesIO()
    with tempfile.TemporaryDirectory() as tmp, tarfile.open(fileobj=out, mode='w') as tar:
        for name, user in (('kubelet.conf', leaf), ('kube-proxy.conf', 'kube-proxy')):
            realkube._kubeconfig(os.path.join(tmp, name), server, pki, user)
            tar.add(os.path.join(tmp, name), name)
        tar.add(os.path.join(pki, 'ca.crt'), 'pki/ca.crt')
        tar.add(JOIN_SCRIPT, 'kubenode-join')
    return out.getvalue()


def _kubernetes_service(api, address, port):
    """Endpoints of default/kubernetes where the nodes reach the API server (its reconciler is off); the
    controller manager mirrors them into the EndpointSlice kube-proxy reads."""
    body = {'apiVersion': 'v1', 'kind': 'Endpoints', 'metadata': {'name': 'kubernetes', 'namespace': 'default'},
            'subsets': [{'addresses': [{'ip': address}], 'ports': [{'name': 'https', 'port': port, 'protocol': 'TCP'}]}]}
    code, answer = api.request('PUT', '/api/v1/namespaces/default/endpoints/kubernetes', body)
    if code == 404:
        code, answer = api.request('POST', '/api/v1/namespaces/default/endpoints', body)
    if code >= 300:
        raise KubeNodeError('cannot point the kubernetes Service at %s:%d: %s' % (address, port, answer))


def _cluster_routes(cluster_dir, state):
    routes = [['%s/32' % vm['nics'][0]['ip'], state['fabrics'][vm['nics'][0]['vpc']]['router']] for vm in state['vms']]
    with open(os.path.join(cluster_dir, 'cluster-routes.json'), 'w', encoding='utf-8') as handle:
        json.dump(routes, handle)


def _join_vm(lab_dir, pki, server, vm, results):
    node = vm['hostname']
    started = time.monotonic()
    command = ('mkdir -p %(m)s /etc/kubernetes && (mountpoint -q %(m)s || mount /dev/vdb %(m)s) && '
               'tar -x -C /etc/kubernetes && KUBENODE_DISK=%(m)s NODE_NAME=%(node)s NODE_IP=%(ip)s '
               'POD_CIDR=%(pods)s sh /etc/kubernetes/kubenode-join'
               % {'m': MOUNT, 'node': node, 'ip': vm['nics'][0]['ip'], 'pods': realkube.POD_CIDR})
    try:
        proc = _ssh(lab_dir, vm, command, stdin=_node_files(pki, server, node))
    except subprocess.TimeoutExpired:
        results[node] = 'join script did not finish in %d s' % JOIN_TIMEOUT
        return
    if proc.returncode != 0:
        lines = (proc.stderr or proc.stdout).decode(errors='replace').strip().splitlines()
        results[node] = 'join script exited %d: %s' % (proc.returncode, ' | '.join(lines[-3:]))
        return
    results[node] = round(time.monotonic() - started, 1)


def _kubelet_log(lab_dir, vm):
    try:
        proc = _ssh(lab_dir, vm, 'journalctl -u kubelet -n 5 --no-pager -o cat', timeout=30)
    except subprocess.TimeoutExpired:
        return 'no kubelet log (ssh timed out)'
    return ' | '.join(proc.stdout.decode(errors='replace').strip().splitlines()[-5:]) or 'kubelet log empty'


def join(lab_dir, cluster_dir, timeout=JOIN_TIMEOUT, control_plane=()):
    """Join every VM of LAB_DIR to the cluster in CLUSTER_DIR; returns {node: seconds to registered}.
    Nodes named in CONTROL_PLANE get kubeadm's control-plane role label once registered."""
    lab_dir, cluster_dir = os.path.abspath(lab_dir), os.path.abspath(cluster_dir)
    state = vmnodes._load_state(lab_dir)
    if not state.get('disk'):
        raise KubeNodeError('lab %s was started without the node disk: vmnodes up --disk %s' % (lab_dir, DISK))
    pki = os.path.join(cluster_dir, 'pki')
    port = _server_port(cluster_dir)
    server = 'https://%s:%d' % (state['host'], port)
    api = realkube.Api('https://127.0.0.1:%d' % port, pki, 'admin')
    _kubernetes_service(api, state['host'], port)
    _cluster_routes(cluster_dir, state)
    started = time.monotonic()
    results = {}
    workers = [threading.Thread(target=_join_vm, args=(lab_dir, pki, server, vm, results)) for vm in state['vms']]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    failed = {node: why for node, why in results.items() if isinstance(why, str)}
    if failed:
        node = sorted(failed)[0]
        raise KubeNodeError('node %s: %s' % (node, failed[node]))
    deadline = time.time() + timeout
    pending = {vm['hostname']: vm for vm in state['vms']}
    timings = {}
    while pending and time.time() < deadline:
        for node in list(pending):
            if api.get('/api/v1/nodes/' + node) is not None:
                timings[node] = round(time.monotonic() - started, 1)
                del pending[node]
                if node in control_plane:
                    api.merge_patch('/api/v1/nodes/' + node,
                                    {'metadata': {'labels': {'node-role.kubernetes.io/control-plane': ''}}})
        time.sleep(1)
    if pending:
        node = sorted(pending)[0]
        raise KubeNodeError('node %s never registered in %d s; kubelet: %s' % (
            node, timeout, _kubelet_log(lab_dir, pending[node])))
    return {'join_script_s': results, 'registered_s': timings}


def main(argv=None):
    parser = argparse.ArgumentParser(prog='kubenode', description=__doc__.split('\n\n', maxsplit=1)[0])
    sub = parser.add_subparsers(dest='command', required=True)
    sub.add_parser('disk', help='build the node disk image')
    join_parser = sub.add_parser('join', help='join the VMs of a lab to a cluster')
    join_parser.add_argument('--lab', required=True)
    join_parser.add_argument('--cluster', required=True)
    join_parser.add_argument('--timeout', type=int, default=JOIN_TIMEOUT)
    join_parser.add_argument('--control-plane', action='append', default=[], metavar='NODE',
                             help='label this node as kubeadm labels a control-plane node')
    args = parser.parse_args(argv)
    try:
        if args.command == 'disk':
            print('disk %s' % disk())
        else:
            print(json.dumps(join(args.lab, args.cluster, args.timeout, args.control_plane)))
    except (KubeNodeError, subprocess.CalledProcessError, vmnodes.VmNodesError, realkube.RealKubeError) as exc:
        print('kubenode: %s' % exc, file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
