"""Benchmark (not a test) of the spiderpool_networks stage at scale.

N nodes x 2 NICs (5 secondary IPv4 addresses per ENI) in a static inventory carrying the host
facts contract; measures
  - the pure planner in-process,
  - plan + render (ansible-playbook, render mode),
  - plan + apply against the Kubernetes double with injected latency per request, and with --real
    against a real API server with the real Spiderpool 1.2.2 chart and controller (webhooks
    included, tests/cluster/realkube): first run (everything created), re-run (nothing to do), and
    a run after one address changed.
Prints wall time of the playbook, the API window of the apply (first request received to last
answer sent, as the server saw them), module invocations and API requests. With --real it also
prints what the webhooks cost: the API server's admission webhook metrics and the requests the
Spiderpool controller made while the pools were created (its audit log entries).

  .venv/bin/python tests/benchmarks/bench_pools.py [--nodes 500] [--latency-ms 5] [--workers 8] [--real]
"""
import argparse
import collections
import datetime
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VENV_BIN = os.path.join(ROOT, '.venv', 'bin')
for folder in (os.path.join(ROOT, 'tests', 'emulator'), os.path.join(ROOT, 'tests', 'cluster'),
               os.path.join(ROOT, 'tests', 'integration'), os.path.join(ROOT, '.collections')):
    sys.path.insert(0, folder)

import kube_emulator  # noqa: E402  pylint: disable=wrong-import-position,import-error
import realkube  # noqa: E402  pylint: disable=wrong-import-position,import-error
from ansible_collections.underlay.alicloud.plugins.module_utils import planner  # noqa: E402  pylint: disable=wrong-import-position

WEBHOOK_METRIC = 'apiserver_admission_webhook_admission_duration_seconds'


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
    changed = sum(int(n) for n in re.findall(r'changed=(\d+)', proc.stdout))     # summed over the recap's hosts
    return elapsed, invocations, changed


class TimedDouble:
    """The double, with the span of the requests it served (the apply's API window)."""

    def __init__(self, latency_ms, webhooks, crds):
        self.double = kube_emulator.KubeEmulator(latency_ms=latency_ms, spiderpool_webhooks=webhooks)
        self.double.load_crds(crds)
        handler = self.double.server.RequestHandlerClass
        self.lock = threading.Lock()
        self.spans = []
        self.cpu = 0.0
        dispatch = handler._dispatch   # pylint: disable=protected-access

        def timed(handler_self, method):
            start = time.monotonic()
            try:
                dispatch(handler_self, method)
            finally:
                with self.lock:
                    self.spans.append((start, time.monotonic()))
        handler._dispatch = timed      # pylint: disable=protected-access
        self.double.start()

    def reset(self):
        self.double.stats.reset()
        with self.lock:
            self.spans = []
        self.cpu = time.process_time()

    def measure(self):
        with self.lock:
            window = max(e for _s, e in self.spans) - min(s for s, _e in self.spans) if self.spans else 0.0
        # This process is the double: its CPU time is what serving (and emulating the webhooks) cost.
        return window, self.double.request_counts()['total'], 'double CPU %.1f s' % (time.process_time() - self.cpu)


def _time(stamp):
    return datetime.datetime.fromisoformat(stamp.replace('Z', '+00:00')).timestamp()


class TimedRealCluster:
    """A real API server with the real chart; the apply's API window and the webhooks' cost from its audit log
    and metrics."""

    def __init__(self, directory):
        import real_cluster  # pylint: disable=import-outside-toplevel,import-error
        self.dir = directory
        kubeconfig = realkube.up(directory, [('master', True)])
        self.cluster = real_cluster.RealCluster(directory, kubeconfig)
        self.cluster.install_spiderpool('ipvlan-eth0')
        self.admin = realkube.Api(self.cluster.server(), os.path.join(directory, 'pki'), 'admin')
        self.offset = 0
        self.metrics = {}

    def without_webhooks(self):
        for kind in ('mutatingwebhookconfigurations', 'validatingwebhookconfigurations'):
            self.admin.request('DELETE', '/apis/admissionregistration.k8s.io/v1/%s/spiderpool-controller' % kind)

    def webhook_metrics(self):
        """{(webhook, type, operation): [seconds, calls]} from the API server's /metrics."""
        text = self.admin.request('GET', '/metrics', timeout=30)[1]['message']
        out = collections.defaultdict(lambda: [0.0, 0])
        for line in text.splitlines():
            match = re.match(r'%s_(sum|count)\{(.*)\} (\S+)$' % WEBHOOK_METRIC, line)
            if match:
                labels = dict(re.findall(r'(\w+)="([^"]*)"', match.group(2)))
                key = (labels['name'], labels['type'], labels['operation'])
                out[key][0 if match.group(1) == 'sum' else 1] += float(match.group(3))
        return out

    def reset(self):
        self.cluster.reset_stats()
        self.offset = os.path.getsize(os.path.join(self.dir, 'audit.log'))
        self.metrics = self.webhook_metrics()

    def events(self):
        with open(os.path.join(self.dir, 'audit.log'), encoding='utf-8') as handle:
            handle.seek(self.offset)
            return [e for e in map(json.loads, handle) if e.get('stage') == 'ResponseComplete']

    def measure(self):
        ours, theirs = [], collections.defaultdict(list)
        for event in self.events():
            if 'objectRef' not in event:    # /metrics (this benchmark's own scrape), discovery
                continue
            span = (_time(event['requestReceivedTimestamp']), _time(event['stageTimestamp']))
            user = event.get('user', {}).get('username')
            if user == 'realkube-admin':
                ours.append(span)
            elif user == 'realkube-workloads':
                ref = event.get('objectRef', {})
                theirs['%s %s%s' % (event['verb'], ref.get('resource', '?'), '/' + ref['subresource']
                                    if ref.get('subresource') else '')].append(span[1] - span[0])
        if not ours:
            return 0.0, 0, ''
        window = max(e for _s, e in ours) - min(s for s, _e in ours)
        longest = sorted(e - s for s, e in ours)
        notes = ['our requests: median %.0f ms, p90 %.0f ms, max %.0f ms' % (
            1000 * longest[len(longest) // 2], 1000 * longest[int(len(longest) * 0.9)], 1000 * longest[-1])]
        after = self.webhook_metrics()
        for key, (seconds, calls) in sorted(after.items()):
            calls -= self.metrics.get(key, [0, 0])[1]
            seconds -= self.metrics.get(key, [0.0, 0])[0]
            if calls:
                notes.append('webhook %s (%s, %s): %d calls, %.1f s in all, %.0f ms each' % (
                    key[0], key[1], key[2], calls, seconds, 1000 * seconds / calls))
        for name, durations in sorted(theirs.items(), key=lambda i: -sum(i[1]))[:5]:
            notes.append('controller %s: %d requests, %.1f s in all, median %.0f ms' % (
                name, len(durations), sum(durations), 1000 * sorted(durations)[len(durations) // 2]))
        return window, len(ours), '; '.join(notes)

    def close(self):
        realkube.down(self.dir)


def apply_rows(target, inventory, hosts, kubeconfig, workers, prefix):
    rows, notes = [], []
    extra = ('-e', 'spiderpool_networks_workers=%d' % workers)
    for label in ('create all', 're-run'):
        target.reset()
        elapsed, invocations, changed = playbook(inventory, env(kubeconfig), *extra)
        window, requests, note = target.measure()
        rows.append(('%s: %s' % (prefix, label), elapsed, window, invocations, requests, 'changed=%d' % changed))
        notes.append((label, note))
    # One secondary address unassigned from one ENI: one pool shrinks.
    hosts['node-0000']['alicloud_enis'][0]['secondary_ips'].pop()
    write_inventory(inventory, hosts)
    target.reset()
    elapsed, invocations, changed = playbook(inventory, env(kubeconfig), *extra)
    window, requests, note = target.measure()
    rows.append(('%s: one IP removed' % prefix, elapsed, window, invocations, requests, 'changed=%d' % changed))
    notes.append(('one IP removed', note))
    hosts['node-0000'] = node_facts(0)
    write_inventory(inventory, hosts)
    return rows, notes


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--nodes', type=int, default=500)
    parser.add_argument('--latency-ms', type=float, default=5.0, help='latency the double adds to every API request')
    parser.add_argument('--workers', type=int, default=8, help='parallel API writes (spiderpool_networks_workers)')
    parser.add_argument('--no-webhooks', action='store_true', help='without the emulated Spiderpool webhooks (their overlap '
                        'check reads every pool of the subnet on each write, as the real one does); with --real, the '
                        'real webhook configurations are deleted before the runs')
    parser.add_argument('--real', action='store_true', help='also against the real API server and Spiderpool controller')
    parser.add_argument('--no-double', action='store_true', help='skip the double (with --real)')
    args = parser.parse_args()
    rows, notes = [], []
    with tempfile.TemporaryDirectory(prefix='bench-pools-') as tmp:
        inventory = os.path.join(tmp, 'inventory.yml')
        hosts = {'node-%04d' % i: node_facts(i) for i in range(args.nodes)}
        write_inventory(inventory, hosts)

        start = time.monotonic()
        result = planner.plan(hosts)
        rows.append(('planner only (in-process)', time.monotonic() - start, None, 0, '-', '%d objects' % len(result['objects'])))

        render_dir = os.path.join(tmp, 'render')
        render = ('-e', 'underlay_mode=render', '-e', 'underlay_render_dir=%s' % render_dir)
        elapsed, invocations, _changed = playbook(inventory, env(), *render)
        rows.append(('plan + render (first)', elapsed, None, invocations, '-',
                     '%d files' % sum(len(f) for _d, _s, f in os.walk(render_dir))))
        elapsed, invocations, changed = playbook(inventory, env(), *render)
        rows.append(('plan + render (again)', elapsed, None, invocations, '-', 'changed=%d' % changed))

        if not args.no_double:
            double = TimedDouble(args.latency_ms, not args.no_webhooks, realkube.crds_path())
            try:
                kubeconfig = double.double.write_kubeconfig(os.path.join(tmp, 'kubeconfig'))
                more, double_notes = apply_rows(double, inventory, hosts, kubeconfig, args.workers, 'double')
                rows += more
                notes += [('double, ' + label, note) for label, note in double_notes]
            finally:
                double.double.stop()
        if args.real:
            real = TimedRealCluster(os.path.join(tmp, 'realkube'))
            try:
                if args.no_webhooks:
                    real.without_webhooks()
                more, real_notes = apply_rows(real, inventory, hosts, real.cluster.kubeconfig, args.workers, 'real API server')
                rows += more
                notes += [('real API server, ' + label, note) for label, note in real_notes]
            finally:
                real.close()
    print('spiderpool_networks: %d nodes x 2 NICs (%d objects), double latency %.1f ms, %d workers, webhooks %s, '
          'load average %.1f' % (args.nodes, len(result['objects']), args.latency_ms, args.workers,
                                 'off' if args.no_webhooks else 'on', os.getloadavg()[0]))
    print('| %-36s | %9s | %14s | %11s | %12s | %-12s |' % ('scenario', 'wall (s)', 'API window (s)', 'invocations',
                                                            'API requests', 'result'))
    print('|%s|%s|%s|%s|%s|%s|' % ('-' * 38, '-' * 11, '-' * 16, '-' * 13, '-' * 14, '-' * 14))
    for label, elapsed, window, invocations, requests, note in rows:
        print('| %-36s | %9.2f | %14s | %11s | %12s | %-12s |' % (
            label, elapsed, '-' if window is None else '%.2f' % window, invocations or '-', requests, note))
    for label, note in notes:
        print('%s: %s' % (label, note))


if __name__ == '__main__':
    main()
