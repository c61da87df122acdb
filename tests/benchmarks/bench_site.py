"""Benchmark (not a test) of playbooks/site.yml in render mode: small fleet against a large one.

A static inventory of N nodes x 2 NICs carrying the host facts contract (the nodes of
bench_pools.py, unreachable addresses), site.yml in render mode, run --repeat times per size,
fastest run reported. Prints wall time, task results (loop items included, skips included) and
how many of them ran on a node rather than on localhost or once for the play.

  .venv/bin/python tests/benchmarks/bench_site.py [--small 2] [--large 200] [--repeat 3]
"""
import argparse
import collections
import os
import re
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_pools import ROOT, VENV_BIN, env, node_facts, write_inventory  # noqa: E402  pylint: disable=wrong-import-position,import-error

RESULT = re.compile(r'^(?:ok|changed|failed|skipping): \[([^\]\s]+)', re.M)


def render(inventory, out):
    """One render-mode run of site.yml: (seconds, task results per host)."""
    start = time.monotonic()
    proc = subprocess.run([os.path.join(VENV_BIN, 'ansible-playbook'), '-i', inventory, os.path.join(ROOT, 'playbooks', 'site.yml'),
                           '-e', 'underlay_mode=render', '-e', 'underlay_render_dir=%s' % out,
                           '-e', 'alicloud_ccm_cluster_cidr=10.233.64.0/18'],
                          env=env(), cwd=ROOT, capture_output=True, text=True, check=False)
    elapsed = time.monotonic() - start
    if proc.returncode:
        raise SystemExit('ansible-playbook failed:\n%s\n%s' % (proc.stdout[-3000:], proc.stderr[-2000:]))
    return elapsed, collections.Counter(RESULT.findall(proc.stdout))


def measure(tmp, nodes, repeat):
    inventory = os.path.join(tmp, 'inventory-%d.yml' % nodes)
    write_inventory(inventory, {'node-%04d' % i: node_facts(i) for i in range(nodes)})
    runs = [render(inventory, os.path.join(tmp, 'render-%d' % nodes)) for _run in range(repeat)]
    elapsed = min(seconds for seconds, _results in runs)
    results = runs[0][1]
    # run_once tasks report on the first node; every other node's results are per-host work.
    per_node = sum(count for host, count in results.items() if host not in ('localhost', 'node-0000'))
    return elapsed, sum(results.values()), per_node


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--small', type=int, default=2)
    parser.add_argument('--large', type=int, default=200)
    parser.add_argument('--repeat', type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix='bench-site-') as tmp:
        rows = [(nodes,) + measure(tmp, nodes, args.repeat) for nodes in (args.small, args.large)]
    print('site.yml render mode, 2 NICs per node, fastest of %d runs, load average %.1f' % (args.repeat, os.getloadavg()[0]))
    print('| %5s | %8s | %12s | %25s |' % ('nodes', 'time (s)', 'task results', 'results on nodes 2..N'))
    print('|%s|%s|%s|%s|' % ('-' * 7, '-' * 10, '-' * 14, '-' * 27))
    for nodes, elapsed, results, per_node in rows:
        print('| %5d | %8.2f | %12d | %25d |' % (nodes, elapsed, results, per_node))
    print('ratio %d / %d nodes: %.2f' % (args.large, args.small, rows[1][1] / rows[0][1]))


if __name__ == '__main__':
    main()
