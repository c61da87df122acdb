"""Benchmark (not a test): ways to list a region's instances, against the ECS/VPC emulator.

The inventory's critical path is the DescribeInstances listing of a region. This compares, on a
worldgen world with latency added to every request:
  - token chain: MaxResults 100 + NextToken, one page after the other;
  - zone chains: one token chain per zone (ZoneId filter), in parallel; the zones come from the
    region's vSwitch listing, which must answer first;
  - page numbers: PageNumber 1 (PageSize 100) for TotalCount, then every other page in parallel
    (ecs.describe_instances_fanned, what the inventory does).
Prints wall time, DescribeInstances calls and the page minimum (ceil(instances / 100)).

  .venv/bin/python tests/benchmarks/bench_instance_paging.py [--instances 2500] [--latency 30] [--repeat 3]
"""
import argparse
import json
import math
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path[:0] = [os.path.join(ROOT, 'tests', 'emulator'), os.path.join(ROOT, '.collections')]

import worldgen  # noqa: E402  pylint: disable=wrong-import-position,import-error
from ecs_emulator import EcsEmulator  # noqa: E402  pylint: disable=wrong-import-position,import-error
from ansible_collections.underlay.alicloud.plugins.module_utils import ecs  # noqa: E402  pylint: disable=wrong-import-position
from ansible_collections.underlay.alicloud.plugins.module_utils.client import AlicloudClients  # noqa: E402  pylint: disable=wrong-import-position

PAGE = 100
WORKERS = 8


def token_chain(clients, region):
    return ecs.describe_instances(clients, region, {})


def zone_chains(clients, region):
    zones = sorted({vswitch['ZoneId'] for vswitch in ecs.describe_vswitches(clients, region, {})})
    with ThreadPoolExecutor(WORKERS) as pool:
        return [raw for chain in pool.map(lambda zone: ecs.describe_instances(clients, region, {'ZoneId': zone}), zones)
                for raw in chain]


def page_numbers(clients, region):
    return ecs.describe_instances_fanned(clients, region, {})


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--instances', type=int, default=2500, help='instances in the one region listed')
    parser.add_argument('--latency', type=float, default=30.0, help='ms added to every API request')
    parser.add_argument('--repeat', type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix='bench-paging-') as tmp:
        world_path = os.path.join(tmp, 'world.json')
        worldgen.main(['--instances', str(args.instances), '--enis', '1', '--regions', '1', '--seed', '1', '-o', world_path])
        with open(world_path, encoding='utf-8') as handle:
            region = next(iter(json.load(handle)['regions']))
        emulator = EcsEmulator(world_path, latency=args.latency).start()
        os.environ.update({'ALIBABA_CLOUD_ECS_ENDPOINT': emulator.url, 'ALIBABA_CLOUD_VPC_ENDPOINT': emulator.url,
                           'ALIBABA_CLOUD_ACCESS_KEY_ID': 'LTAIlabkey', 'ALIBABA_CLOUD_ACCESS_KEY_SECRET': 'labsecret'})
        clients = AlicloudClients({})
        rows = []
        try:
            for label, strategy in (('token chain', token_chain), ('zone chains', zone_chains), ('page numbers', page_numbers)):
                times = []
                for _run in range(args.repeat):
                    emulator.reset_stats()
                    start = time.monotonic()
                    instances = strategy(clients, region)
                    times.append(time.monotonic() - start)
                    counts = emulator.request_counts()
                rows.append((label, min(times), len({raw['InstanceId'] for raw in instances}), counts.get('DescribeInstances', 0),
                             counts.get('DescribeVSwitches', 0)))
        finally:
            emulator.stop()
    minimum = math.ceil(args.instances / PAGE)
    floor = minimum * args.latency / 1000
    print('DescribeInstances of %d instances in %s, %.0f ms per request, fastest of %d, load average %.1f; page minimum %d, '
          'floor of one chain %.2f s' % (args.instances, region, args.latency, args.repeat, os.getloadavg()[0], minimum, floor))
    print('| %-13s | %8s | %9s | %17s | %17s |' % ('listing', 'time (s)', 'instances', 'DescribeInstances', 'DescribeVSwitches'))
    print('|%s|%s|%s|%s|%s|' % ('-' * 15, '-' * 10, '-' * 11, '-' * 19, '-' * 19))
    for label, elapsed, count, calls, vswitch_calls in rows:
        print('| %-13s | %8.2f | %9d | %17d | %17d |' % (label, elapsed, count, calls, vswitch_calls))


if __name__ == '__main__':
    main()
