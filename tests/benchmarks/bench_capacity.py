"""Benchmark (not a test) of the scheduled day-2 run, playbooks/underlay_capacity.yml, at fleet scale.

A generated world (tests/emulator/worldgen.py: N instances x 2 ENIs x 3 secondary IPv4, one region, /20
vSwitches so that they have room left)
served by the ECS/VPC emulator, the real dynamic inventory, and the Kubernetes double with the real
Spiderpool CRDs and a Node per instance; latency is added to every request of both. The pools are made first by
playbooks/spiderpool_networks.yml (day 1, not measured). Then, each with
underlay_capacity_topup=true unless said otherwise:
  - report only (topup false),
  - the scheduled run with nothing to do,
  - the run after pods took addresses in 10 % of the pools (2 of 3 allocated: under the threshold),
  - the run after that (nothing to do again).
Prints wall time, module invocations (task results ansible-playbook reports), ECS/VPC API calls per
action and Kubernetes API requests.

  .venv/bin/python tests/benchmarks/bench_capacity.py [--nodes 500] [--latency-ms 5]
"""
import argparse
import json
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
sys.path.insert(0, os.path.join(ROOT, 'tests', 'integration'))

import kube_emulator  # noqa: E402  pylint: disable=wrong-import-position,import-error
import worldgen  # noqa: E402  pylint: disable=wrong-import-position,import-error
from cloud_helpers import EcsEmulator, cloud_env  # noqa: E402  pylint: disable=wrong-import-position,import-error

INVENTORY = {'plugin': 'underlay.alicloud.ecs', 'regions': ['cn-hangzhou'], 'filters': {'Status': 'Running'},
             'hostnames': ['hostname'], 'groups': {'k8s_cluster': 'true'}, 'strict': True}


def playbook(name, inventory, env, *args):
    start = time.monotonic()
    proc = subprocess.run([os.path.join(VENV_BIN, 'ansible-playbook'), '-i', inventory, os.path.join(ROOT, 'playbooks', name), *args],
                          env=env, cwd=ROOT, capture_output=True, text=True, check=False)
    elapsed = time.monotonic() - start
    if proc.returncode:
        raise SystemExit('%s failed:\n%s\n%s' % (name, proc.stdout[-4000:], proc.stderr[-2000:]))
    invocations = len(re.findall(r'^(?:ok|changed|failed): \[', proc.stdout, re.M))
    changed = sum(int(n) for n in re.findall(r'changed=(\d+)', proc.stdout))
    return elapsed, invocations, changed


def allocate_tenth(double):
    """Pods hold 2 of the 3 addresses of every 10th pool: those pools are under the threshold of 2."""
    pools = sorted(double.objects('SpiderIPPool'), key=lambda p: p['metadata']['name'])
    chosen = pools[::10]
    for index, pool in enumerate(chosen):
        first = pool['spec']['ips'][0].split('-')[0]
        head, last = first.rsplit('.', 1)
        held = ['%s.%d' % (head, int(last) + k) for k in range(2)]
        pool['status'] = {'allocatedIPs': json.dumps(dict((ip, {'pod': 'default/app-%d-%d' % (index, k), 'podUid': 'uid-%d-%d' % (index, k)})
                                                          for k, ip in enumerate(held))), 'allocatedIPCount': 2}
        double.apply_object(pool)
    return len(chosen), len(pools)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--nodes', type=int, default=500)
    parser.add_argument('--latency-ms', type=float, default=5.0, help='latency added to every ECS and Kubernetes request')
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix='bench-capacity-') as tmp:
        world = os.path.join(tmp, 'world.json')
        worldgen.main(['--instances', str(args.nodes), '--enis', '2', '--regions', '1', '--secondary-ips', '3',
                       '--stopped-rate', '0', '--vswitch-prefix', '20', '-o', world])
        inventory = os.path.join(tmp, 'fleet.alicloud_ecs.yml')
        with open(inventory, 'w', encoding='utf-8') as handle:
            yaml.safe_dump(INVENTORY, handle)
        double = kube_emulator.KubeEmulator(latency_ms=args.latency_ms, spiderpool_webhooks=True)
        double.load_crds(CRDS)
        with open(world, encoding='utf-8') as handle:
            for region in json.load(handle)['regions'].values():
                for instance in region['instances']:
                    double.add_node(instance['hostname'].lower())
        double.start()
        try:
            with EcsEmulator(world, latency=args.latency_ms) as emu:
                env = cloud_env(emu)
                env['K8S_AUTH_KUBECONFIG'] = double.write_kubeconfig(os.path.join(tmp, 'kubeconfig'))
                playbook('spiderpool_networks.yml', inventory, env)
                scenarios = [('report only', ()), ('scheduled, nothing to do', ('-e', 'underlay_capacity_topup=true')),
                             ('scheduled, 10 % of pools low', ('-e', 'underlay_capacity_topup=true')),
                             ('scheduled, nothing to do again', ('-e', 'underlay_capacity_topup=true'))]
                low = None
                for label, extra in scenarios:
                    if label.endswith('low'):
                        low = allocate_tenth(double)
                    emu.reset_stats()
                    double.stats.reset()
                    elapsed, invocations, changed = playbook('underlay_capacity.yml', inventory, env, '-e', 'underlay_capacity_target=3',
                                                             '-e', 'underlay_capacity_max_per_run=1000', *extra)
                    calls = emu.request_counts()
                    rows.append((label, elapsed, invocations, sum(calls.values()), calls, double.request_counts()['total'], changed))
        finally:
            double.stop()
    print('underlay_capacity: %d nodes x 2 ENIs x 3 secondary IPv4 (%d pools, %d of them low in the third run), '
          'latency %.1f ms, load average %.1f' % (args.nodes, low[1], low[0], args.latency_ms, os.getloadavg()[0]))
    print('| scenario | time (s) | module invocations | ECS/VPC API calls | Kubernetes API requests | changed |')
    print('|---|---:|---:|---:|---:|---:|')
    for label, elapsed, invocations, total, _calls, kube, changed in rows:
        print('| %s | %.1f | %d | %d | %d | %d |' % (label, elapsed, invocations, total, kube, changed))
    for label, _elapsed, _invocations, _total, calls, _kube, _changed in rows:
        print('%s: %s' % (label, ', '.join('%s %d' % item for item in sorted(calls.items()))))


if __name__ == '__main__':
    main()
