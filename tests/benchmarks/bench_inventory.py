"""Fleet-scale benchmark of the underlay.alicloud.ecs inventory (a measurement, not a test).

    .venv/bin/python tests/benchmarks/bench_inventory.py            # 5,000 instances x 3 ENIs, 2 regions, 30 ms
    .venv/bin/python tests/benchmarks/bench_inventory.py --shapes   # also: what in host variables costs ansible-core
    .venv/bin/python tests/benchmarks/bench_inventory.py --legacy DIR   # also: the alibaba.alicloud inventory

Generates a world with tests/emulator/worldgen.py, serves it with the ECS/VPC emulator (injected
latency on every API request), then runs `ansible-inventory --list`, in paired rounds, on:
  - a script inventory that prints our own `--list` output (same hosts, groups and host variables:
    ansible-core's own cost for them, the baseline);
  - our config listing every region (API calls), then the same config served from the inventory cache;
  - with --legacy DIR, alibaba.alicloud's alicloud_ecs inventory on the same world, hosts named by
    instance ID and the same three groups (DIR holds collections/ansible_collections/alibaba/alicloud
    and site-packages/ with footmark and its SDK; setup in docs/benchmarks.md).
Prints wall and CPU time of each, the API window against the page floor, API calls against the page
minimum and peak memory. Method and results: docs/benchmarks.md.
"""

import argparse
import json
import math
import os
import resource
import shutil
import statistics
import stat
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


LEGACY_GROUPS = {name: expression.replace('alicloud_tags', 'tags') for name, expression in GROUPS.items()}
# Variants of the baseline's host variables (--shapes): each keeps the hosts and groups and changes one property.
SHAPES = (
    ('contract', 'the host variables as the plugin sets them'),
    ('no variables', 'hosts and groups only'),
    ('one string', 'all variables of a host as one JSON string: same bytes, one value'),
    ('flat', 'every leaf as its own top-level variable: same strings, no nesting'),
    ('short strings', 'same structure, every string cut to one character'),
)


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


def unmarked(mapping):
    """json object_hook: drops ansible-core's marks of untrusted strings ({"__ansible_unsafe": s}) from `--list` output."""
    return mapping['__ansible_unsafe'] if set(mapping) == {'__ansible_unsafe'} else mapping


def leaves(prefix, value):
    if isinstance(value, dict):
        return [item for key, inner in value.items() for item in leaves('%s_%s' % (prefix, key), inner)]
    if isinstance(value, list):
        return [item for index, inner in enumerate(value) for item in leaves('%s_%d' % (prefix, index), inner)]
    return [(prefix, value)]


def shorten(value):
    if isinstance(value, dict):
        return {k: shorten(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shorten(v) for v in value]
    return value[:1] if isinstance(value, str) else value


def reshape(listing, shape):
    """The `--list` document with every host's variables in ``shape`` (see SHAPES)."""
    hostvars = listing['_meta']['hostvars']
    if shape == 'no variables':
        hostvars = {host: {} for host in hostvars}
    elif shape == 'one string':
        hostvars = {host: {'alicloud_facts': json.dumps(facts)} for host, facts in hostvars.items()}
    elif shape == 'flat':
        hostvars = {host: dict(item for key, value in facts.items() for item in leaves(key, value))
                    for host, facts in hostvars.items()}
    elif shape == 'short strings':
        hostvars = {host: shorten(facts) for host, facts in hostvars.items()}
    return dict(listing, _meta={'hostvars': hostvars})


def script_inventory(path, listing):
    """An executable inventory script that prints ``listing`` (read from a file next to it)."""
    data = path + '.json'
    with open(data, 'w', encoding='utf-8') as handle:
        json.dump(listing, handle, separators=(',', ':'))
    with open(path, 'w', encoding='utf-8') as handle:
        handle.write('#!%s\nimport sys\nwith open(%r, encoding="utf-8") as data:\n    sys.stdout.write(data.read())\n'
                     % (sys.executable, data))
    os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR)
    return path


def shape_counts(listing):
    """Top-level variables, containers, strings and JSON bytes of all host variables."""
    counts = {'variables': 0, 'containers': 0, 'strings': 0}

    def walk(value):
        if isinstance(value, (dict, list)):
            counts['containers'] += 1
            for inner in (value.values() if isinstance(value, dict) else value):
                walk(inner)
        elif isinstance(value, str):
            counts['strings'] += 1
    for facts in listing['_meta']['hostvars'].values():
        counts['variables'] += len(facts)
        for value in facts.values():
            walk(value)
    counts['bytes'] = len(json.dumps(listing['_meta']['hostvars'], separators=(',', ':')))
    return counts


def write_legacy_config(path, regions):
    lines = ['plugin: alibaba.alicloud.alicloud_ecs', 'regions: %s' % json.dumps(regions),
             'hostnames: [instance_id]', 'groups: %s' % json.dumps(LEGACY_GROUPS)]
    with open(path, 'w', encoding='utf-8') as handle:
        handle.write('\n'.join(lines) + '\n')
    return path


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


# footmark sets an instance's attributes in the order of the answer's keys and fails (endless recursion) when
# PublicIpAddress comes before EipAddress, as the emulator sends them; the keys are handed to it sorted.
LEGACY_SHIM = '''"""Points aliyunsdkcore, the SDK under alibaba.alicloud, at the emulator (plain HTTP), keys sorted."""
import json
import os

from aliyunsdkcore import client

HOST, PORT = os.environ['UNDERLAY_LEGACY_ENDPOINT'].split('//', 1)[1].rsplit(':', 1)
make_response = client.AcsClient._make_http_response
do_action = client.AcsClient.do_action_with_exception


def emulated(self, endpoint, request, *args, **kwargs):
    request.set_protocol_type('http')
    self._port = int(PORT)
    return make_response(self, HOST, request, *args, **kwargs)


def sorted_keys(self, request):
    return json.dumps(json.loads(do_action(self, request)), sort_keys=True)


client.AcsClient._make_http_response = emulated
client.AcsClient.do_action_with_exception = sorted_keys
'''


def legacy_env(env, legacy, url, work):
    """The environment of alibaba.alicloud's inventory: its collection from DIR/collections, footmark and its
    SDK from DIR/site-packages, pointed at the emulator by a sitecustomize module, keys in its variables."""
    shim = os.path.join(work, 'legacy-shim')
    os.makedirs(shim, exist_ok=True)
    with open(os.path.join(shim, 'sitecustomize.py'), 'w', encoding='utf-8') as handle:
        handle.write(LEGACY_SHIM)
    return dict(env, PYTHONPATH='%s:%s' % (shim, os.path.join(legacy, 'site-packages')),
                ANSIBLE_COLLECTIONS_PATH='%s:%s' % (os.path.join(legacy, 'collections'), env['ANSIBLE_COLLECTIONS_PATH']),
                ALICLOUD_ACCESS_KEY=env['ALIBABA_CLOUD_ACCESS_KEY_ID'], ALICLOUD_SECRET_KEY=env['ALIBABA_CLOUD_ACCESS_KEY_SECRET'],
                UNDERLAY_LEGACY_ENDPOINT=url)


def summary(runs):
    """Median wall and CPU seconds of (wall, peak, cpu) runs."""
    return {'wall_s': round(statistics.median(r[0] for r in runs), 3), 'cpu_s': round(statistics.median(r[2] for r in runs), 3),
            'walls_s': [round(r[0], 2) for r in runs], 'peak_rss_mib': round(max(r[1] for r in runs), 1)}


def paired(runs, base, index):
    """Median over rounds of run minus baseline of the same round (index 0: wall, 2: CPU)."""
    return round(statistics.median(r[index] - b[index] for r, b in zip(runs, base)), 3)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0])
    parser.add_argument('--instances', type=int, default=5000)
    parser.add_argument('--enis', type=int, default=3)
    parser.add_argument('--regions', type=int, default=2)
    parser.add_argument('--latency', type=float, default=30.0, help='ms added to every API request')
    parser.add_argument('--repeat', type=int, default=3, help='paired rounds; medians are reported')
    parser.add_argument('--shapes', action='store_true', help='also time the baseline with reshaped host variables')
    parser.add_argument('--legacy', metavar='DIR', help='also time alibaba.alicloud.alicloud_ecs installed in DIR')
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

    emulator = EcsEmulator(world_path, latency=args.latency).start()
    try:
        url = emulator.url
        env = {k: v for k, v in os.environ.items() if not k.startswith(('ALIBABA_CLOUD_', 'ANSIBLE_'))}
        env.update({'PATH': '%s:%s' % (VENV_BIN, env.get('PATH', '')), 'ANSIBLE_CONFIG': os.path.join(ROOT, 'ansible.cfg'),
                    'ANSIBLE_COLLECTIONS_PATH': os.path.join(ROOT, '.collections'), 'ANSIBLE_INVENTORY_UNPARSED_FAILED': 'true',
                    'ANSIBLE_INVENTORY_ENABLED': 'underlay.alicloud.ecs,alibaba.alicloud.alicloud_ecs,ansible.builtin.script',
                    'ALIBABA_CLOUD_ECS_ENDPOINT': url, 'ALIBABA_CLOUD_VPC_ENDPOINT': url,
                    'ALIBABA_CLOUD_ACCESS_KEY_ID': 'LTAIlabkey', 'ALIBABA_CLOUD_ACCESS_KEY_SECRET': 'labsecret'})
        plain_config = write_config(os.path.join(work, 'bench.alicloud_ecs.yml'), regions)
        cached_config = write_config(os.path.join(work, 'cached.alicloud_ecs.yml'), regions, os.path.join(work, 'cache'))
        out = os.path.join(work, 'out.json')

        # Our listing, printed by a script: the baseline sees exactly our hosts, groups and variables.
        run_inventory(cached_config, env, out, '--flush-cache')
        with open(out, encoding='utf-8') as handle:
            listing = json.load(handle, object_hook=unmarked)
        hostvars = listing['_meta']['hostvars']
        complete = len(hostvars) == args.instances and all(len(h['alicloud_enis']) == args.enis for h in hostvars.values())
        baseline_script = script_inventory(os.path.join(work, 'baseline.py'), listing)

        runs = {'baseline': [], 'ours': [], 'cached': [], 'legacy': []}
        windows, emulator_cpu, cached_calls, legacy_hosts, legacy_calls = [], [], 0, None, None
        for _round in range(args.repeat):
            runs['baseline'].append(run_inventory(baseline_script, env, out))
            emulator.reset_stats()
            # This process only waits meanwhile: its CPU time is the emulator's serving the calls.
            serving = time.process_time()
            runs['ours'].append(run_inventory(plain_config, env, out))
            emulator_cpu.append(time.process_time() - serving)
            requests = emulator.requests()
            windows.append(api_window(requests))
            calls = emulator.stats_snapshot()
            emulator.reset_stats()
            runs['cached'].append(run_inventory(cached_config, env, out))
            cached_calls += emulator.stats_snapshot()['total']
            if args.legacy:
                legacy_config = write_legacy_config(os.path.join(work, 'bench.alicloud.yml'), regions)
                emulator.reset_stats()
                runs['legacy'].append(run_inventory(legacy_config, legacy_env(env, args.legacy, url, work), out))
                legacy_calls = emulator.stats_snapshot()
                with open(out, encoding='utf-8') as handle:
                    legacy_hosts = len(json.load(handle)['_meta']['hostvars'])

        shapes = []
        if args.shapes:
            for index, (name, what) in enumerate(SHAPES):
                reshaped = reshape(listing, name)
                script = script_inventory(os.path.join(work, 'shape%d.py' % index), reshaped)
                shapes.append(dict(summary([run_inventory(script, env, out) for _run in range(args.repeat)]),
                                   shape=name, what=what, **shape_counts(reshaped)))

        # The plugin alone on a cache hit, in this process (same environment as the subprocesses).
        os.environ.update({k: v for k, v in env.items() if k.startswith(('ALIBABA_CLOUD_', 'ANSIBLE_'))})
        emulator.reset_stats()
        plugin_cached = statistics.median(plugin_parse_seconds(cached_config)[0] for _run in range(args.repeat))
        cached_calls += emulator.stats_snapshot()['total']
    finally:
        emulator.stop()
        shutil.rmtree(work, ignore_errors=True)

    minimum = {action: sum(f[action] for f in floors.values()) for action in PAGE}
    window = statistics.median(windows)
    results = {
        'world': {'instances': args.instances, 'enis_per_instance': args.enis, 'regions': regions, 'latency_ms': args.latency},
        'baseline': summary(runs['baseline']), 'ours': summary(runs['ours']), 'cached': summary(runs['cached']),
        'ours_minus_baseline_s': paired(runs['ours'], runs['baseline'], 0),
        'ours_minus_baseline_cpu_s': paired(runs['ours'], runs['baseline'], 2),
        'cached_minus_baseline_s': paired(runs['cached'], runs['baseline'], 0),
        'cached_minus_baseline_cpu_s': paired(runs['cached'], runs['baseline'], 2),
        'api_window_s': round(window, 3), 'floor_s': round(floor_strict, 3),
        'api_window_ratio_to_floor': round(window / floor_strict, 2),
        'emulator_cpu_s': round(statistics.median(emulator_cpu), 3),
        'api_calls': calls['actions'], 'api_calls_minimum': minimum, 'api_errors': calls.get('errors', {}),
        'chains_last_run': chains(requests), 'cached_api_calls': cached_calls,
        'plugin_parse_cached_s': round(plugin_cached, 3), 'shapes': shapes,
        'loadavg_1m': os.getloadavg()[0], 'cpus': os.cpu_count(), 'complete': complete, 'hosts': len(hostvars),
        'benchmark_rss_mib': round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1),
    }
    if runs['legacy']:
        results.update(legacy=summary(runs['legacy']), legacy_hosts=legacy_hosts, legacy_api_calls=legacy_calls['actions'],
                       legacy_over_ours=[round(old[0] / new[0], 1) for old, new in zip(runs['legacy'], runs['ours'])])
    report(args, results, floors)
    if args.json:
        with open(args.json, 'w', encoding='utf-8') as handle:
            json.dump(results, handle, indent=2, sort_keys=True)
    return 0 if complete and cached_calls == 0 else 1


def report(args, results, floors):
    print('underlay.alicloud.ecs inventory: %d instances x %d ENIs in %s, %.0f ms latency per request, %d paired rounds'
          % (args.instances, args.enis, ', '.join(results['world']['regions']), args.latency, args.repeat))
    rows = [('baseline (script printing our --list)', results['baseline']), ('ours, API calls', results['ours']),
            ('ours, cache hit', results['cached'])]
    if 'legacy' in results:
        rows.append(('alibaba.alicloud (%d hosts)' % results['legacy_hosts'], results['legacy']))
    for label, row in rows:
        print('  %-40s %6.2f s wall (%s), %6.2f s CPU, peak RSS %.0f MiB'
              % (label, row['wall_s'], ', '.join('%.2f' % w for w in row['walls_s']), row['cpu_s'], row['peak_rss_mib']))
    print('  ours - baseline, same round            %6.2f s wall, %6.2f s CPU  (goal: <= floor + 0.3 = %.2f s)'
          % (results['ours_minus_baseline_s'], results['ours_minus_baseline_cpu_s'], results['floor_s'] + 0.3))
    print('  cache hit - baseline, same round       %6.2f s wall, %6.2f s CPU  (goal: <= 0.2 s)'
          % (results['cached_minus_baseline_s'], results['cached_minus_baseline_cpu_s']))
    if 'legacy' in results:
        print('  alibaba.alicloud / ours, per round     %s; its API calls: %s' % (
            ', '.join('%.1fx' % r for r in results['legacy_over_ours']),
            ', '.join('%s %d' % item for item in sorted(results['legacy_api_calls'].items()))))
    print('  API window                             %6.2f s  (first request to last answer; page floor %.2f s = %d pages'
          ' x %.0f ms; ratio %.2f)' % (results['api_window_s'], results['floor_s'], max(f['strict'] for f in floors.values()),
                                       args.latency, results['api_window_ratio_to_floor']))
    print('    the emulator serving the calls: %.2f s of CPU (one Python process; its GIL serialises concurrent pages)'
          % results['emulator_cpu_s'])
    for chain in results['chains_last_run'][:3]:
        print('    %-26s %-12s %6.2f s span, %.2f s in the emulator, %d requests'
              % (chain['action'], chain['region'], chain['span_s'], chain['server_s'], chain['requests']))
    print('  cache hits made %d API calls; plugin parse() alone on a cache hit %.2f s'
          % (results['cached_api_calls'], results['plugin_parse_cached_s']))
    print('  complete %s (%d hosts); %d CPUs, load average %.1f at the end'
          % (results['complete'], results['hosts'], results['cpus'], results['loadavg_1m']))
    print('  API calls per action (made / page minimum):')
    for action in sorted(set(results['api_calls']) | set(results['api_calls_minimum'])):
        print('    %-28s %5d / %d' % (action, results['api_calls'].get(action, 0), results['api_calls_minimum'].get(action, 0)))
    if results['shapes']:
        print('  baseline by shape of the host variables (ansible-inventory --list of a script):')
        print('    %-14s %8s %8s %10s %10s %9s %9s' % ('shape', 'wall s', 'CPU s', 'variables', 'containers', 'strings', 'MB'))
        for row in results['shapes']:
            print('    %-14s %8.2f %8.2f %10d %10d %9d %9.1f' % (
                row['shape'], row['wall_s'], row['cpu_s'], row['variables'], row['containers'], row['strings'], row['bytes'] / 1e6))


if __name__ == '__main__':
    sys.exit(main())
