"""Benchmark (not a test) of the spiderpool_networks stage at scale.

N nodes x 2 NICs (5 secondary IPv4 addresses per ENI) in a static inventory carrying the host
facts contract; measures
  - the pure planner in-process,
  - plan + render (ansible-playbook, render mode),
  - plan + apply against the Kubernetes double with injected latency per request: first run
    (everything created), re-run (nothing to do), and a run after one address changed.
Prints wall time, module invocations (task results reported by ansible-playbook) and API requests.

  .venv/bin/python tests/benchmarks/bench_pools.py [--nodes 500] [--latency-ms 5] [--workers 8]
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VENV_BIN = os.path.join(ROOT, '.venv', 'bin')
CRDS = os.path.join(ROOT, '.cache', 'realkube', 'spiderpool-chart', 'crds')
sys.path.insert(0, os.path.join(ROOT, 'tests', 'emulator'))
sys.path.insert(0, os.path.join(ROOT, '.collections'))

import kube_emulator  # noqa: E402  pylint: disable=wrong-import-position,import-error
from ansible_collections.underlay.alicloud.plugins.module_utils import planner  # noqa: E402  pylint: disable=wrong-import-position


def node_facts(index):
    """Host facts of node <index>: eth0 in 10.0.0.0/16, eth1 in 10.1.0.0/16, 5 secondaries each."""
    base = 10 + index * 8
    enis = []
    for nic, (net, gateway) in enumerate((('10.0', '10.0.255.253'), ('10.1', '10.1.255.253'))):
        addresses = ['%s.%d.%d' % (net, (base + k) // 256, (base + k) % 256) for k in range(6)]
        enis.append({'id': 'eni-n%04d%d' % (index, nic), 'type': 'Primary' if nic == 0 else 'Secondary',
                     'mac': '00:16:3e:%02x:%02x:%02x' % (index // 256, index % 256, nic), 'device_index': nic,
                     'vswitch_id': 'vsw-%d' % nic, 'cidr': '%s.0.0/16' % net, 'gateway': gateway,
                     'primary_ip': addresses[0], 'secondary_ips': addresses[1:], 'ipv6_cidr': None, 'ipv6_ips': []})
    return {'alicloud_instance_id': 'i-n%04d' % index, 'alicloud_region': 'cn-hangzhou',
            'alicloud_hostname': 'node-%04d' % index, 'alicloud_enis': enis}


def write_inventory(path, hosts):
    inventory = {'all': {'children': {'k8s_cluster': {'hosts': hosts,
                                                      'vars': {'ansible_host': '198.51.100.1', 'ansible_connection': 'ssh'}}}}}
    with open(path, 'w', encoding='utf-8') as handle:
        yaml.safe_dump(inventory, handle, sort_keys=False)


def env(kubeconfig=None):
    out = {k: v for k, v in os.environ.items() if not k.startswith(('ANSIBLE_', 'K8S_AUTH_'))}
    out.update({'PATH': '%s:%s' % (VENV_BIN, out.get('PATH', '')), 'ANSIBLE_CONFIG': os.path.join(ROOT, 'ansible.cfg'),
                'ANSIBLE_COLLECTIONS_PATH': os.path.join(ROOT, '.collections'), 'ANSIBLE_NOCOLOR': '1'})
    if kubeconfig:
        out['K8S_AUTH_KUBECONFIG'] = kubeconfig
    return out


def playbook(inventory, environment, *args):
    start = time.monotonic()
    proc = subprocess.run([os.path.join(VENV_BIN, 'ansible-playbook'), '-i', inventory,
                           os.path.join(ROOT, 'playbooks', 'spiderpool_networks.yml'), *args],
                          env=environment, cwd=ROOT, capture_output=True, text=True, check=False)
    elapsed = time.monotonic() - start
    if proc.returncode:
        raise SystemExit('ansible-playbook failed:\n%s\n%s' % (proc.stdout[-3000:], proc.stderr[-2000:]))
    # One result line per module/action invocation (loop items included, includes excluded).
    invocations = len(re.findall(r'^(?:ok|changed|failed): \[', proc.stdout, re.M))
    changed = int(re.search(r'changed=(\d+)', proc.stdout).group(1))
    return elapsed, invocations, changed


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--nodes', type=int, default=500)
    parser.add_argument('--latency-ms', type=float, default=5.0, help='latency the double adds to every API request')
    parser.add_argument('--workers', type=int, default=8, help='parallel API writes (spiderpool_networks_workers)')
    parser.add_argument('--no-webhooks', action='store_true', help='without the emulated Spiderpool webhooks (their overlap '
                        'check reads every pool of the subnet on each write, as the real one does)')
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix='bench-pools-') as tmp:
        inventory = os.path.join(tmp, 'inventory.yml')
        hosts = {'node-%04d' % i: node_facts(i) for i in range(args.nodes)}
        write_inventory(inventory, hosts)

        start = time.monotonic()
        result = planner.plan(hosts)
        rows.append(('planner only (in-process)', time.monotonic() - start, 0, '-', '%d objects' % len(result['objects'])))

        render_dir = os.path.join(tmp, 'render')
        render = ('-e', 'underlay_mode=render', '-e', 'underlay_render_dir=%s' % render_dir)
        elapsed, invocations, _changed = playbook(inventory, env(), *render)
        rows.append(('plan + render (first)', elapsed, invocations, '-', '%d files' % sum(len(f) for _d, _s, f in os.walk(render_dir))))
        elapsed, invocations, changed = playbook(inventory, env(), *render)
        rows.append(('plan + render (again)', elapsed, invocations, '-', 'changed=%d' % changed))

        double = kube_emulator.KubeEmulator(latency_ms=args.latency_ms, spiderpool_webhooks=not args.no_webhooks)
        double.load_crds(CRDS)
        double.start()
        kubeconfig = double.write_kubeconfig(os.path.join(tmp, 'kubeconfig'))
        workers = ('-e', 'spiderpool_networks_workers=%d' % args.workers)
        try:
            for label in ('plan + apply (create all)', 'plan + apply (re-run)'):
                double.stats.reset()
                elapsed, invocations, changed = playbook(inventory, env(kubeconfig), *workers)
                rows.append((label, elapsed, invocations, double.request_counts()['total'], 'changed=%d' % changed))
            # One secondary address unassigned from one ENI: one pool shrinks.
            hosts['node-0000']['alicloud_enis'][0]['secondary_ips'].pop()
            write_inventory(inventory, hosts)
            double.stats.reset()
            elapsed, invocations, changed = playbook(inventory, env(kubeconfig), *workers)
            rows.append(('plan + apply (one IP removed)', elapsed, invocations, double.request_counts()['total'], 'changed=%d' % changed))
        finally:
            double.stop()
    print('spiderpool_networks: %d nodes x 2 NICs (%d objects), API latency %.1f ms, %d workers, webhooks %s, '
          'load average %.1f' % (args.nodes, len(result['objects']), args.latency_ms, args.workers,
                                 'off' if args.no_webhooks else 'on', os.getloadavg()[0]))
    print('| %-30s | %9s | %18s | %12s | %-12s |' % ('scenario', 'time (s)', 'module invocations', 'API requests', 'result'))
    print('|%s|%s|%s|%s|%s|' % ('-' * 32, '-' * 11, '-' * 20, '-' * 14, '-' * 14))
    for label, elapsed, invocations, requests, note in rows:
        print('| %-30s | %9.2f | %18s | %12s | %-12s |' % (label, elapsed, invocations or '-', requests, note))


if __name__ == '__main__':
    main()
