"""Fleet-scale benchmark of the underlay.alicloud.ecs inventory (a measurement, not a test).

    .venv/bin/python tests/benchmarks/bench_inventory.py            # 5,000 instances x 3 ENIs, 2 regions, 30 ms

Generates a world with tests/emulator/worldgen.py, serves it with the ECS/VPC emulator (injected
latency on every API request), then runs `ansible-inventory --list` on a config that lists both
regions and prints: wall time, API calls per action, the floor (the minimum number of sequential
pages times the latency), the ratio to the floor, peak memory of the ansible-inventory process and
the wall time of a re-run served from the inventory cache. Method and results: docs/benchmarks.md.
"""

import argparse
import json
import math
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VENV_BIN = os.path.join(ROOT, '.venv', 'bin')
sys.path.insert(0, os.path.join(ROOT, 'tests', 'emulator'))
sys.path.insert(0, os.path.join(ROOT, '.collections'))
import worldgen  # noqa: E402  pylint: disable=wrong-import-position
from ecs_emulator import EcsEmulator  # noqa: E402  pylint: disable=wrong-import-position

# Page sizes the API allows at most (FACTS.md section 2).
PAGE = {'DescribeInstances': 100, 'DescribeNetworkInterfaces': 500, 'DescribeVSwitches': 50, 'DescribeInstanceTypes': 10}
GROUPS = {
    'kube_control_plane': "alicloud_tags.role | default('') == 'master'",
    'kube_node': "alicloud_tags.role | default('') == 'worker'",
    'k8s_cluster': "alicloud_tags.role | default('') in ['master', 'worker']",
}


def floor_pages(world):
    """Per region the minimum sequential pages; regions run in parallel, so the slowest region counts.

    `strict` is the brief's floor: max(instance, ENI, vSwitch pages) + instance-type pages.
    `overlap` is tighter: types can be asked for as soon as the first instance page is in.
    """
    result = {}
    for region_id, region in world['regions'].items():
        instances = region.get('instances') or []
        enis = sum(len(i['enis']) for i in instances) + len(region.get('enis') or [])
        vswitches = sum(len(v.get('vswitches') or []) for v in region.get('vpcs') or [])
        types = len({i['type'] for i in instances})
        pages = {
            'DescribeInstances': max(1, math.ceil(len(instances) / PAGE['DescribeInstances'])),
            'DescribeNetworkInterfaces': max(1, math.ceil(enis / PAGE['DescribeNetworkInterfaces'])),
            'DescribeVSwitches': max(1, math.ceil(vswitches / PAGE['DescribeVSwitches'])),
            'DescribeInstanceTypes': math.ceil(types / PAGE['DescribeInstanceTypes']),
        }
        listing = max(pages['DescribeInstances'], pages['DescribeNetworkInterfaces'], pages['DescribeVSwitches'])
        result[region_id] = dict(pages, strict=listing + pages['DescribeInstanceTypes'],
                                 overlap=max(listing, 1 + pages['DescribeInstanceTypes']))
    return result


def run_inventory(config, env, out_path, *args):
    """One ansible-inventory run: (wall seconds, peak RSS in MiB, CPU seconds) of that process."""
    with open(out_path, 'wb') as out, open(out_path + '.err', 'wb') as err:
        started = time.monotonic()
        proc = subprocess.Popen([os.path.join(VENV_BIN, 'ansible-inventory'), '-i', config, '--list', *args],
                                env=env, cwd=ROOT, stdout=out, stderr=err)
        _pid, status, usage = os.wait4(proc.pid, 0)
        seconds = time.monotonic() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        with open(out_path + '.err', encoding='utf-8', errors='replace') as err:
            sys.exit('ansible-inventory failed (%d):\n%s' % (proc.returncode, err.read()[-3000:]))
    return seconds, usage.ru_maxrss / 1024.0, usage.ru_utime + usage.ru_stime


def api_window(requests):
    """Seconds from the first request's arrival to the last answer (emulator clock)."""
    if not requests:
        return 0.0
    return max(r['ts'] for r in requests) - min(r['ts'] - r['ms'] / 1000.0 for r in requests)


def chains(requests):
    """Per (action, region) listing: (wall span, seconds inside the emulator, requests), longest span first.
    The span minus the emulator's time is what the client spent between pages (parsing, signing, scheduling)."""
    grouped = {}
    for entry in requests:
        grouped.setdefault((entry['action'], entry['region']), []).append(entry)
    result = []
    for (action, region), entries in grouped.items():
        span = max(e['ts'] for e in entries) - min(e['ts'] - e['ms'] / 1000.0 for e in entries)
        result.append({'action': action, 'region': region or '-', 'span_s': round(span, 3),
                       'server_s': round(sum(e['ms'] for e in entries) / 1000.0, 3), 'requests': len(entries)})
    return sorted(result, key=lambda c: -c['span_s'])


def plugin_parse_seconds(config):
    """Time of the plugin's parse() alone, in this process: what the plugin costs without
    ansible-inventory's own start-up, per-host variable merge and JSON output."""
    # pylint: disable=import-outside-toplevel
    from ansible.inventory.data import InventoryData
    from ansible.parsing.dataloader import DataLoader
    from ansible.plugins.loader import init_plugin_loader, inventory_loader
    from ansible.utils.collection_loader import AnsibleCollectionConfig
    if AnsibleCollectionConfig.collection_finder is None:
        init_plugin_loader([os.path.join(ROOT, '.collections')])
    plugin = inventory_loader.get('underlay.alicloud.ecs')
    inventory = InventoryData()
    started = time.monotonic()
    plugin.parse(inventory, DataLoader(), config, cache=True)
    return time.monotonic() - started, len(inventory.hosts)


def write_config(path, regions, cache_dir=None):
    # worldgen reuses host names across regions, so instances are named by their (unique) id.
    lines = ['plugin: underlay.alicloud.ecs', 'regions: %s' % json.dumps(regions),
             'hostnames: [instance_id]', 'groups: %s' % json.dumps(GROUPS)]
    if cache_dir:
        lines += ['cache: true', 'cache_plugin: ansible.builtin.jsonfile', 'cache_connection: %s' % cache_dir,
                  'cache_timeout: 3600']
    with open(path, 'w', encoding='utf-8') as handle:
        handle.write('\n'.join(lines) + '\n')
    return path


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0])
    parser.add_argument('--instances', type=int, default=5000)
    parser.add_argument('--enis', type=int, default=3)
    parser.add_argument('--regions', type=int, default=2)
    parser.add_argument('--latency', type=float, default=30.0, help='ms added to every API request')
    parser.add_argument('--repeat', type=int, default=3, help='runs of each kind; the median is reported')
    parser.add_argument('--json', metavar='FILE', help='also write the results as JSON')
    args = parser.parse_args(argv)

    work = tempfile.mkdtemp(prefix='bench-inventory-')
    world_path = os.path.join(work, 'world.json')
    worldgen.main(['--instances', str(args.instances), '--enis', str(args.enis), '--regions', str(args.regions),
                   '--seed', '1', '-o', world_path])
    with open(world_path, encoding='utf-8') as handle:
        world = json.load(handle)
    regions = list(world['regions'])
    floors = floor_pages(world)
    latency = args.latency / 1000.0
    floor_strict = max(f['strict'] for f in floors.values()) * latency
    floor_overlap = max(f['overlap'] for f in floors.values()) * latency

    emulator = EcsEmulator(world_path, latency=args.latency).start()
    try:
        url = emulator.url
        env = {k: v for k, v in os.environ.items() if not k.startswith(('ALIBABA_CLOUD_', 'ANSIBLE_'))}
        env.update({'PATH': '%s:%s' % (VENV_BIN, env.get('PATH', '')), 'ANSIBLE_CONFIG': os.path.join(ROOT, 'ansible.cfg'),
                    'ANSIBLE_COLLECTIONS_PATH': os.path.join(ROOT, '.collections'), 'ANSIBLE_INVENTORY_UNPARSED_FAILED': 'true',
                    'ALIBABA_CLOUD_ECS_ENDPOINT': url, 'ALIBABA_CLOUD_VPC_ENDPOINT': url,
                    'ALIBABA_CLOUD_ACCESS_KEY_ID': 'LTAIlabkey', 'ALIBABA_CLOUD_ACCESS_KEY_SECRET': 'labsecret'})
        plain = write_config(os.path.join(work, 'bench.alicloud_ecs.yml'), regions)
        cached = write_config(os.path.join(work, 'cached.alicloud_ecs.yml'), regions, os.path.join(work, 'cache'))
        out = os.path.join(work, 'out.json')

        baseline_runs = [run_inventory('localhost,', env, out) for _run in range(args.repeat)]
        baseline = statistics.median(r[0] for r in baseline_runs)
        baseline_cpu = statistics.median(r[2] for r in baseline_runs)

        runs, peaks, windows, cpus = [], [], [], []
        for _run in range(args.repeat):
            emulator.reset_stats()
            seconds, peak, cpu = run_inventory(plain, env, out)
            runs.append(seconds)
            peaks.append(peak)
            cpus.append(cpu)
            requests = emulator.requests()
            windows.append(api_window(requests))
            calls = emulator.stats_snapshot()
        with open(out, encoding='utf-8') as handle:
            hostvars = json.load(handle)['_meta']['hostvars']
        complete = len(hostvars) == args.instances and all(len(h['alicloud_enis']) == args.enis for h in hostvars.values())

        run_inventory(cached, env, out, '--flush-cache')          # fills the cache
        cached_runs, cached_cpus, cached_calls = [], [], 0
        for _run in range(args.repeat):
            emulator.reset_stats()
            seconds, _peak, cpu = run_inventory(cached, env, out)
            cached_runs.append(seconds)
            cached_cpus.append(cpu)
            cached_calls += emulator.stats_snapshot()['total']

        # The plugin alone on a cache hit, in this process (same environment as the subprocesses).
        os.environ.update({k: v for k, v in env.items() if k.startswith(('ALIBABA_CLOUD_', 'ANSIBLE_'))})
        emulator.reset_stats()
        plugin_cached = statistics.median(plugin_parse_seconds(cached)[0] for _run in range(args.repeat))
        cached_calls += emulator.stats_snapshot()['total']
    finally:
        emulator.stop()
        shutil.rmtree(work, ignore_errors=True)

    wall = statistics.median(runs)
    minimum = {action: sum(f[action] for f in floors.values()) for action in PAGE}
    results = {
        'world': {'instances': args.instances, 'enis_per_instance': args.enis, 'regions': regions, 'latency_ms': args.latency},
        'wall_s': round(wall, 3), 'wall_runs_s': [round(r, 3) for r in runs],
        'api_window_s': round(statistics.median(windows), 3),
        'process_baseline_s': round(baseline, 3),
        'api_calls': calls['actions'], 'api_calls_minimum': minimum, 'api_errors': calls.get('errors', {}),
        'floor_s': round(floor_strict, 3), 'floor_overlap_s': round(floor_overlap, 3),
        'ratio_to_floor': round(wall / floor_strict, 2), 'api_window_ratio_to_floor': round(statistics.median(windows) / floor_strict, 2),
        'peak_rss_mib': round(max(peaks), 1),
        'cached_wall_s': round(statistics.median(cached_runs), 3), 'cached_api_calls': cached_calls,
        'cpu_s': round(statistics.median(cpus), 2), 'cached_cpu_s': round(statistics.median(cached_cpus), 2),
        'process_baseline_cpu_s': round(baseline_cpu, 2), 'chains_last_run': chains(requests),
        'plugin_parse_cached_s': round(plugin_cached, 3),
        'loadavg_1m': os.getloadavg()[0], 'cpus': os.cpu_count(),
        'complete': complete, 'hosts': len(hostvars),
        'benchmark_rss_mib': round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1),
    }
    print('underlay.alicloud.ecs inventory: %d instances x %d ENIs in %s, %.0f ms latency per request'
          % (args.instances, args.enis, ', '.join(regions), args.latency))
    print('  ansible-inventory --list        %6.2f s  (median of %s; CPU %.2f s)'
          % (wall, ', '.join('%.2f' % r for r in runs), results['cpu_s']))
    print('    of which API window           %6.2f s  (first request to last answer, emulator clock)' % results['api_window_s'])
    for chain in results['chains_last_run'][:3]:
        print('      %-26s %-12s %6.2f s span, %.2f s in the emulator, %d requests'
              % (chain['action'], chain['region'], chain['span_s'], chain['server_s'], chain['requests']))
    print('    process start, no hosts       %6.2f s  (ansible-inventory -i localhost, --list; CPU %.2f s)' % (baseline, baseline_cpu))
    print('  floor                           %6.2f s  (slowest region: max(instance, ENI, vSwitch pages) + type pages'
          ' = %d pages x %.0f ms)' % (floor_strict, max(f['strict'] for f in floors.values()), args.latency))
    print('  floor with overlapped types     %6.2f s' % floor_overlap)
    print('  ratio wall / floor              %6.2f    (API window / floor %.2f)' % (results['ratio_to_floor'], results['api_window_ratio_to_floor']))
    print('  peak RSS of ansible-inventory   %6.1f MiB' % results['peak_rss_mib'])
    print('  cached re-run                   %6.2f s  (%d API calls; CPU %.2f s)'
          % (results['cached_wall_s'], cached_calls, results['cached_cpu_s']))
    print('  plugin parse() alone, cached    %6.2f s  (in-process: no start-up, no per-host merge, no JSON output)' % plugin_cached)
    print('  machine                         %d CPUs, load average %.1f at the end' % (os.cpu_count(), os.getloadavg()[0]))
    print('  complete                        %s (%d hosts)' % (complete, len(hostvars)))
    print('  API calls per action (made / page minimum):')
    for action in sorted(set(calls['actions']) | set(minimum)):
        print('    %-28s %5d / %d' % (action, calls['actions'].get(action, 0), minimum.get(action, 0)))
    if args.json:
        with open(args.json, 'w', encoding='utf-8') as handle:
            json.dump(results, handle, indent=2, sort_keys=True)
    return 0 if complete and cached_calls == 0 else 1


if __name__ == '__main__':
    sys.exit(main())
