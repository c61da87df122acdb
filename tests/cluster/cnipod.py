"""A pod's network without a kubelet: run a NetworkAttachmentDefinition's CNI chain as multus would.

    cnipod.py add --namespace NS --name POD --uid UID --netns NETNS --config NAD.json [options]
    cnipod.py del --namespace NS --name POD --uid UID --netns NETNS --config NAD.json [options]

NAD.json is the NAD's `spec.config` (a configuration list, or a single plugin's configuration). `add`
creates network namespace NETNS (/run/netns/NETNS) when it is missing and runs the plugins in order,
each with its configuration plus the list's `name` and `cniVersion` and the previous plugin's result as
`prevResult`, and the environment a container runtime gives multus and multus passes to its delegates:
CNI_COMMAND, CNI_CONTAINERID (the sandbox id), CNI_NETNS, CNI_IFNAME, CNI_PATH and CNI_ARGS with
K8S_POD_NAMESPACE, K8S_POD_NAME, K8S_POD_INFRA_CONTAINER_ID and K8S_POD_UID. It prints the final result
and caches it (--cache-dir, default /var/lib/cni/results as libcni's). `del` runs the chain in reverse, passing the cached
result as `prevResult` from CNI 0.4.0 on, then removes NETNS (unless --keep-netns).

A host standing in for a node: --node-netns runs the plugins in that network namespace (the node's
interfaces, routes and agent), --bind HOST_PATH=DIR mounts DIR over HOST_PATH in a private mount
namespace for each plugin (e.g. the agent's /var/run/spidernet, which coordinator does not let one change).

Standard library only; run as root. Exit status 1 with the plugin's error (CNI error JSON) on failure.
"""
import argparse
import hashlib
import json
import os
import subprocess
import sys

NETNS_DIR = '/run/netns'


class CniError(Exception):
    """A plugin failed: its CNI error message."""


def _version(text):
    return tuple(int(part) for part in text.split('.'))


def load_chain(path):
    """(name, cniVersion, [plugin configurations]) of a configuration list or of a single configuration."""
    with open(path, encoding='utf-8') as handle:
        text = handle.read()
    try:
        config = json.loads(text)
    except ValueError as exc:
        raise CniError('%s is no CNI configuration (%s): is the NAD a placeholder without config?' % (path, exc)) from None
    plugins = config['plugins'] if 'plugins' in config else [config]
    return config['name'], config.get('cniVersion', '0.3.1'), plugins


def container_id(uid):
    """A stable sandbox id for a pod: the same on `add` and `del` (a runtime's is random, 64 hex digits)."""
    return hashlib.sha256(uid.encode()).hexdigest()


def _prefix(args):
    """The command that puts a plugin into the node's namespaces (empty on a real node)."""
    prefix = []
    if args.bind:
        mounts = ' && '.join('mount --bind "${%d}" "${%d}"' % (2 * i + 1, 2 * i + 2) for i in range(len(args.bind)))
        prefix = ['unshare', '--mount', '--propagation', 'private', 'sh', '-c',
                  mounts + ' && shift %d && exec "$@"' % (2 * len(args.bind)), 'sh']
        for item in args.bind:
            host_path, local = item.split('=', 1)
            prefix += [local, host_path]
    if args.node_netns:
        prefix += ['nsenter', '--net=%s/%s' % (NETNS_DIR, args.node_netns)]
    return prefix


def invoke(args, command, plugin, stdin):
    binary = next((os.path.join(d, plugin['type']) for d in args.cni_path.split(':')
                   if os.access(os.path.join(d, plugin['type']), os.X_OK)), None)
    if binary is None:
        raise CniError('plugin %s not found in CNI_PATH %s' % (plugin['type'], args.cni_path))
    sandbox = args.container_id or container_id(args.uid)
    env = {'PATH': os.environ.get('PATH', '/usr/sbin:/usr/bin:/sbin:/bin'), 'CNI_COMMAND': command,
           'CNI_CONTAINERID': sandbox, 'CNI_NETNS': os.path.join(NETNS_DIR, args.netns), 'CNI_IFNAME': args.ifname,
           'CNI_PATH': args.cni_path,
           'CNI_ARGS': 'IgnoreUnknown=1;K8S_POD_NAMESPACE=%s;K8S_POD_NAME=%s;K8S_POD_INFRA_CONTAINER_ID=%s;'
                       'K8S_POD_UID=%s' % (args.namespace, args.name, sandbox, args.uid)}
    proc = subprocess.run(_prefix(args) + [binary], input=json.dumps(stdin), env=env, capture_output=True,
                          text=True, timeout=args.timeout, check=False)
    if proc.returncode != 0:
        try:
            error = json.loads(proc.stdout)
            message = '%s: %s' % (error.get('msg'), error.get('details', ''))
        except ValueError:
            message = (proc.stdout + proc.stderr).strip()[-1000:]
        raise CniError('%s %s failed (exit %d): %s' % (plugin['type'], command, proc.returncode, message))
    return json.loads(proc.stdout) if proc.stdout.strip() else None


def _cache_path(args, name):
    return os.path.join(args.cache_dir, '%s-%s-%s' % (name, args.container_id or container_id(args.uid), args.ifname))


def add(args):
    name, version, plugins = load_chain(args.config)
    if not os.path.exists(os.path.join(NETNS_DIR, args.netns)):
        subprocess.run(['ip', 'netns', 'add', args.netns], check=True)
    result = None
    for plugin in plugins:
        stdin = dict(plugin, name=name, cniVersion=version)
        if result is not None:
            stdin['prevResult'] = result
        result = invoke(args, 'ADD', plugin, stdin)
    os.makedirs(args.cache_dir, exist_ok=True)
    with open(_cache_path(args, name), 'w', encoding='utf-8') as handle:
        json.dump({'kind': 'cniCacheV1', 'containerId': args.container_id or container_id(args.uid),
                   'ifName': args.ifname, 'networkName': name, 'result': result}, handle)
    return result


def delete(args):
    name, version, plugins = load_chain(args.config)
    cache = _cache_path(args, name)
    cached = None
    if os.path.exists(cache):
        with open(cache, encoding='utf-8') as handle:
            cached = json.load(handle).get('result')
    if os.path.exists(os.path.join(NETNS_DIR, args.netns)):
        for plugin in reversed(plugins):
            stdin = dict(plugin, name=name, cniVersion=version)
            if cached is not None and _version(version) >= (0, 4, 0):
                stdin['prevResult'] = cached
            invoke(args, 'DEL', plugin, stdin)
        if not args.keep_netns:
            subprocess.run(['ip', 'netns', 'delete', args.netns], check=True)
    if os.path.exists(cache):
        os.remove(cache)


def main(argv=None):
    parser = argparse.ArgumentParser(prog='cnipod.py', description=__doc__.split('\n\n', maxsplit=1)[0])
    parser.add_argument('command', choices=('add', 'del'))
    parser.add_argument('--namespace', required=True, help="the Pod's namespace (K8S_POD_NAMESPACE)")
    parser.add_argument('--name', required=True, help="the Pod's name (K8S_POD_NAME)")
    parser.add_argument('--uid', required=True, help="the Pod's metadata.uid (K8S_POD_UID)")
    parser.add_argument('--netns', required=True, help='network namespace name under /run/netns')
    parser.add_argument('--config', required=True, help="file with the NetworkAttachmentDefinition's spec.config")
    parser.add_argument('--ifname', default='eth0', help='interface in the pod (multus: eth0 for the default network)')
    parser.add_argument('--cni-path', default='/opt/cni/bin')
    parser.add_argument('--container-id', help='sandbox id (default: derived from --uid)')
    parser.add_argument('--cache-dir', default='/var/lib/cni/results', help="where `add` keeps the result for `del`")
    parser.add_argument('--keep-netns', action='store_true', help='del: leave the network namespace')
    parser.add_argument('--node-netns', help="run the plugins in this network namespace (a node's stand-in)")
    parser.add_argument('--bind', action='append', default=[], metavar='HOST_PATH=DIR',
                        help='mount DIR over HOST_PATH for the plugins (private mount namespace)')
    parser.add_argument('--timeout', type=float, default=120)
    args = parser.parse_args(argv)
    try:
        if args.command == 'add':
            print(json.dumps(add(args), indent=1))
        else:
            delete(args)
    except (CniError, subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError, ValueError) as exc:
        print('cnipod: %s' % exc, file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
