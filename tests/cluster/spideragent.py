"""The real spiderpool-agent on a node without a kubelet, as the installed chart's DaemonSet runs it.

    python3 tests/cluster/spideragent.py bundle --kubeconfig FILE --node NAME --server URL --out DIR
    python3 tests/cluster/spideragent.py relay --netns NAME --listen IP:PORT --to HOST:PORT

`bundle` reads the chart's spiderpool-agent DaemonSet and ConfigMap from the API and writes DIR:

    bin/          spiderpool-agent, and spiderpool, coordinator, ifacer (the container's postStart copies
                  these into the node's CNI bin dir)
    config-map/   the DaemonSet's ConfigMap volume (spiderpool-conf: conf.yml, clusterNetwork)
    agent.env     the container's environment, its fieldRefs resolved for NAME (pod name, namespace, node)
    kubeconfig    server URL, the cluster CA and a token of the DaemonSet's ServiceAccount (the chart's RBAC)
    run-agent.sh  [start|stop]: start the agent in the background (agent.log, agent.pid) and wait for the
                  DaemonSet's readiness probe; the node needs /var/run/spidernet (made if missing)

Copy DIR to the node and run `DIR/run-agent.sh` as root. URL is the API server as the node sees it (a VM
on QEMU's user network: https://10.0.2.2:PORT, which realkube's serving certificate names).

`relay` serves IP:PORT inside network namespace NAME by connecting to HOST:PORT from here: what QEMU's
user network does for a VM's 10.0.2.2 (it adds IP to the namespace's loopback), so a network namespace
can stand in for a VM node on this host.
"""
import argparse
import base64
import ctypes
import json
import os
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import realkube  # noqa: E402  pylint: disable=wrong-import-position

AGENT_SELECTOR = 'app.kubernetes.io/component=spiderpool-agent'
# what the agent container's postStart copies into the node's CNI bin dir (chart 1.2.2)
POST_START_PLUGINS = ('spiderpool', 'coordinator', 'ifacer')
TOKEN_SECONDS = 7 * 24 * 3600
CLONE_NEWNET = 0x40000000

RUN_AGENT = r'''#!/bin/sh
# spiderpool-agent for node %(node)s as DaemonSet %(daemonset)s runs it (bundle of tests/cluster/spideragent.py).
#   run-agent.sh [start]  install the plugins the container's postStart copies, start the agent in the
#                         background (agent.log, agent.pid), wait until its readiness probe answers
#   run-agent.sh stop
# Environment: CNI_BIN_DIR (default /opt/cni/bin), READY_TIMEOUT seconds (default 120).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
if [ "${1:-start}" = stop ]; then
  if [ -f "$here/agent.pid" ]; then kill "$(cat "$here/agent.pid")" 2>/dev/null || true; fi
  rm -f "$here/agent.pid"
  exit 0
fi
cni_bin=${CNI_BIN_DIR:-/opt/cni/bin}
# the DaemonSet's hostPath volumes (DirectoryOrCreate)
mkdir -p /var/run/spidernet /var/run/netns "$cni_bin"
for item in %(plugins)s; do
  cp "$here/bin/$item" "$cni_bin/.$item.new" && mv -f "$cni_bin/.$item.new" "$cni_bin/$item"
done
set -a
. "$here/agent.env"
set +a
export KUBECONFIG="$here/kubeconfig"
nohup "$here/bin/spiderpool-agent" %(args)s </dev/null >>"$here/agent.log" 2>&1 &
echo $! >"$here/agent.pid"
exec python3 - "$!" %(probe)s "${READY_TIMEOUT:-120}" "$here/agent.log" <<'EOF'
import os, sys, time, urllib.request
pid, url, deadline, log = int(sys.argv[1]), sys.argv[2], time.time() + float(sys.argv[3]), sys.argv[4]
while time.time() < deadline:
    try:
        os.kill(pid, 0)
    except OSError:
        sys.exit('spiderpool-agent exited: %%s' %% open(log).read()[-2000:])
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            if resp.status == 200:
                sys.exit(0)
    except OSError:
        pass
    time.sleep(1)
sys.exit('spiderpool-agent not ready at %%s (log: %%s)' %% (url, log))
EOF
'''


class SpiderAgentError(Exception):
    """One line for the user."""


def _api(kubeconfig):
    """A client from a realkube kubeconfig (inline client certificate); also returns the CA (PEM)."""
    with open(kubeconfig, encoding='utf-8') as handle:
        config = json.load(handle)
    cluster, user = config['clusters'][0]['cluster'], config['users'][0]['user']
    with tempfile.TemporaryDirectory() as pki:
        for name, key in (('ca.crt', cluster['certificate-authority-data']),
                          ('user.crt', user['client-certificate-data']), ('user.key', user['client-key-data'])):
            with open(os.path.join(pki, name), 'wb') as handle:
                handle.write(base64.b64decode(key))
        return realkube.Api(cluster['server'], pki, 'user'), cluster['certificate-authority-data']


def _query(**params):
    return urllib.parse.urlencode(params)


def _daemonset(api):
    found = api.items('/apis/apps/v1/daemonsets?' + _query(labelSelector=AGENT_SELECTOR))
    if not found:
        raise SpiderAgentError('no spiderpool-agent DaemonSet (%s): install the Spiderpool chart first' % AGENT_SELECTOR)
    return found[0]


def bundle(kubeconfig, node, server, out):
    """Write the bundle for NODE into OUT (see the module's docstring); returns OUT."""
    api, ca = _api(kubeconfig)
    if api.get('/api/v1/nodes/' + node) is None:
        raise SpiderAgentError('Node %s does not exist: the agent serves the Pods bound to it' % node)
    daemonset = _daemonset(api)
    namespace, spec = daemonset['metadata']['namespace'], daemonset['spec']['template']['spec']
    container = spec['containers'][0]
    # the DaemonSet controller's Pod for this node, when there is one, names the agent (SPIDERPOOL_POD_NAME)
    selector = ','.join('%s=%s' % item for item in daemonset['spec']['selector']['matchLabels'].items())
    query = _query(labelSelector=selector, fieldSelector='spec.nodeName=' + node)
    pods = api.items('/api/v1/namespaces/%s/pods?%s' % (namespace, query))
    pod_name = pods[0]['metadata']['name'] if pods else '%s-%s' % (daemonset['metadata']['name'], node)
    env = realkube._container_env(container, {'metadata': {'name': pod_name, 'namespace': namespace},  # pylint: disable=protected-access
                                              'spec': {'nodeName': node}})

    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(os.path.join(out, 'bin'))
    args = list(container.get('args', []))
    mounts = {mount['name']: mount['mountPath'] for mount in container.get('volumeMounts', [])}
    for volume in spec.get('volumes', []):
        if 'configMap' not in volume or volume['name'] not in mounts:
            continue
        name = volume['configMap']['name']
        data = (api.get('/api/v1/namespaces/%s/configmaps/%s' % (namespace, name)) or {}).get('data')
        if data is None:
            raise SpiderAgentError('ConfigMap %s/%s of the DaemonSet is missing' % (namespace, name))
        local = os.path.join(out, 'config-map')
        os.makedirs(local, exist_ok=True)
        for key, value in data.items():
            with open(os.path.join(local, key), 'w', encoding='utf-8') as handle:
                handle.write(value)
        # the container sees the volume at its mountPath; on the node it is the bundle's folder
        args = [arg.replace(mounts[volume['name']], '$here/config-map') for arg in args]

    for name in ('spiderpool-agent', *POST_START_PLUGINS):
        source = realkube._asset(name)  # pylint: disable=protected-access
        if source is None:
            raise SpiderAgentError('%s not built: run tests/cluster/realkube build' % name)
        shutil.copy2(source, os.path.join(out, 'bin', name))

    with open(os.path.join(out, 'agent.env'), 'w', encoding='utf-8') as handle:
        handle.writelines('%s=%s\n' % (key, shlex.quote(value)) for key, value in sorted(env.items()))
    account = spec.get('serviceAccountName', 'default')
    code, token = api.request('POST', '/api/v1/namespaces/%s/serviceaccounts/%s/token' % (namespace, account), {
        'apiVersion': 'authentication.k8s.io/v1', 'kind': 'TokenRequest', 'spec': {'expirationSeconds': TOKEN_SECONDS}})
    if code != 201:
        raise SpiderAgentError('token of ServiceAccount %s/%s: %s' % (namespace, account, token.get('message')))
    _write_private(os.path.join(out, 'kubeconfig'), json.dumps({
        'apiVersion': 'v1', 'kind': 'Config', 'current-context': 'agent',
        'clusters': [{'name': 'cluster', 'cluster': {'server': server, 'certificate-authority-data': ca}}],
        'users': [{'name': account, 'user': {'token': token['status']['token']}}],
        'contexts': [{'name': 'agent', 'context': {'cluster': 'cluster', 'user': account}}]}, indent=1))

    probe = container.get('readinessProbe', {}).get('httpGet', {})
    url = 'http://%s:%s%s' % (probe.get('host', '127.0.0.1'), probe.get('port', env.get('SPIDERPOOL_HEALTH_PORT')),
                              probe.get('path', '/v1/runtime/readiness'))
    command = ' '.join('"%s"' % arg.replace('"', '\\"') if '$here' in arg else shlex.quote(arg) for arg in args)
    script = os.path.join(out, 'run-agent.sh')
    with open(script, 'w', encoding='utf-8') as handle:
        handle.write(RUN_AGENT % {'node': node, 'daemonset': '%s/%s' % (namespace, daemonset['metadata']['name']),
                                  'plugins': ' '.join(POST_START_PLUGINS), 'args': command,
                                  'probe': shlex.quote(url)})
    os.chmod(script, 0o755)
    return out


def _write_private(path, text):
    with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), 'w', encoding='utf-8') as handle:
        handle.write(text)


def _address(text):
    host, port = text.rsplit(':', 1)
    return host, int(port)


def relay(netns, listen, target):
    """Accept on LISTEN inside NETNS, connect to TARGET from this process's own namespace; runs until killed."""
    host, port = _address(listen)
    subprocess.run(['ip', '-n', netns, 'link', 'set', 'lo', 'up'], check=True)
    subprocess.run(['ip', '-n', netns, 'addr', 'replace', host + '/32', 'dev', 'lo'], check=True)
    libc = ctypes.CDLL(None, use_errno=True)
    with open('/proc/self/ns/net', 'rb') as home, open('/run/netns/' + netns, 'rb') as inside:
        # the listening socket stays in the namespace it was made in; the thread goes back home
        if libc.setns(inside.fileno(), CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), 'setns %s' % netns)
        try:
            server = socket.create_server((host, port), reuse_port=False)
        finally:
            libc.setns(home.fileno(), CLONE_NEWNET)
    print('relay %s:%d in %s -> %s' % (host, port, netns, target), flush=True)
    while True:
        client = server.accept()[0]
        try:
            upstream = socket.create_connection(_address(target), timeout=5)
        except OSError:
            client.close()
            continue
        upstream.settimeout(None)
        for src, dst in ((client, upstream), (upstream, client)):
            threading.Thread(target=realkube._pipe, args=(src, dst), daemon=True).start()  # pylint: disable=protected-access


def main(argv=None):
    parser = argparse.ArgumentParser(prog='spideragent', description=__doc__.split('\n\n', maxsplit=1)[0])
    sub = parser.add_subparsers(dest='command', required=True)
    make = sub.add_parser('bundle', help='write the agent bundle for a node')
    make.add_argument('--kubeconfig', required=True, help="the realkube cluster's kubeconfig (reads the chart's objects)")
    make.add_argument('--node', required=True)
    make.add_argument('--server', required=True, help='API server URL as the node reaches it, e.g. https://10.0.2.2:PORT')
    make.add_argument('--out', required=True)
    serve = sub.add_parser('relay', help="serve IP:PORT inside a network namespace from HOST:PORT (QEMU's 10.0.2.2)")
    serve.add_argument('--netns', required=True)
    serve.add_argument('--listen', required=True, metavar='IP:PORT')
    serve.add_argument('--to', required=True, metavar='HOST:PORT')
    args = parser.parse_args(argv)
    try:
        if args.command == 'bundle':
            print('bundle %s' % bundle(args.kubeconfig, args.node, args.server, args.out))
        else:
            relay(args.netns, args.listen, args.to)
    except (SpiderAgentError, realkube.RealKubeError, OSError, subprocess.CalledProcessError) as exc:
        print('spideragent: %s' % exc, file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
