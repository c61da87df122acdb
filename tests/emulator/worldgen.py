"""Deterministic generator of large emulator worlds (benchmarks, paging and scale tests).

    python3 tests/emulator/worldgen.py --instances 5000 --enis 3 --regions 2 --seed 1 -o /tmp/big.yml

The same arguments always give the same file.  Instances are spread evenly over the regions and
two zones per region; every ENI index (eth0, eth1, ...) has its own vSwitches (/22) per zone, opened
one after another as they fill, so all addresses are explicit, unique and valid.  A `.json`
output name writes JSON (also valid YAML, and much faster to load).
"""

import argparse
import hashlib
import ipaddress
import json
import random
import sys

import yaml

REGIONS = (  # (region id, id prefix as in real resource ids, zones)
    ('cn-hangzhou', 'bp1', ('cn-hangzhou-i', 'cn-hangzhou-j')),
    ('cn-beijing', '2ze', ('cn-beijing-h', 'cn-beijing-k')),
    ('cn-shanghai', 'uf6', ('cn-shanghai-l', 'cn-shanghai-m')),
    ('cn-shenzhen', 'wz9', ('cn-shenzhen-d', 'cn-shenzhen-e')),
    ('cn-zhangjiakou', '8vb', ('cn-zhangjiakou-a', 'cn-zhangjiakou-b')),
    ('ap-southeast-1', 't4n', ('ap-southeast-1a', 'ap-southeast-1b')),
    ('us-west-1', 'rj9', ('us-west-1a', 'us-west-1b')),
    ('eu-central-1', 'gw8', ('eu-central-1a', 'eu-central-1b')),
)
# (type, ENIs, IPv4 per ENI incl. primary, IPv6 per ENI): the smallest type that fits is used.
TYPES = (
    ('ecs.g7.large', 3, 6, 6), ('ecs.g7.xlarge', 4, 15, 15), ('ecs.g7.4xlarge', 8, 30, 30),
    ('ecs.g7.32xlarge', 15, 30, 30),
)
CLUSTER_SIZE = 50


def stable_id(kind, prefix, *parts):
    digest = hashlib.sha256(':'.join(str(p) for p in (kind,) + parts).encode()).digest()
    alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789'
    return '%s-%s%s' % (kind, prefix, ''.join(alphabet[b % 36] for b in digest[:17]))


def pick_type(enis, secondary, ipv6):
    for name, max_enis, ipv4, max_ipv6 in TYPES:
        if enis <= max_enis and secondary + 1 <= ipv4 and ipv6 <= max_ipv6:
            return name, max_enis, ipv4, max_ipv6
    raise ValueError('no instance type has %d ENIs with %d secondary IPv4 and %d IPv6 each' % (enis, secondary, ipv6))


class SubnetPool:
    """Consecutive vSwitches inside the VPC; hands out addresses lowest first."""

    def __init__(self, region, prefix, vpc_net, seed, vswitch_prefix):
        self.region = region
        self.prefix = prefix
        self.blocks = vpc_net.subnets(new_prefix=vswitch_prefix)
        self.seed = seed
        self.vswitches = []
        self.open = {}               # (zone, eni index) -> [vswitch dict, next address, last usable]
        self.ipv6_base = int(ipaddress.IPv6Address('2408:4005:3a1:a400::'))

    def take(self, zone, index, count, dual_stack):
        """`count` consecutive addresses (as text) from the open vSwitch of (zone, index)."""
        current = self.open.get((zone, index))
        if current is None or current[1] + count - 1 > current[2]:
            net = next(self.blocks)
            number = len(self.vswitches)
            vsw = {'id': stable_id('vsw', self.prefix, self.seed, self.region, number), 'name': 'gen-%s-eth%d-%d' % (zone, index, number),
                   'zone': zone, 'cidr': str(net), 'ipv6_cidr': None}
            if dual_stack:
                vsw['ipv6_cidr'] = str(ipaddress.IPv6Network((self.ipv6_base + (number << 64), 64)))
            self.vswitches.append(vsw)
            current = [vsw, int(net.network_address) + 1, int(net.broadcast_address) - 3]
            self.open[(zone, index)] = current
        first = current[1]
        current[1] += count
        return current[0], [str(ipaddress.IPv4Address(v)) for v in range(first, first + count)]


def generate(instances=1000, enis=3, regions=2, seed=1, secondary_ips=2, ipv6=0, stopped_rate=0.02, vswitch_prefix=22):
    """The world as a dict (see docs/emulator.md)."""
    if not 1 <= regions <= len(REGIONS):
        raise ValueError('--regions must be 1 to %d' % len(REGIONS))
    if instances < 0 or enis < 1:
        raise ValueError('--instances must be >= 0 and --enis >= 1')
    if not 16 <= vswitch_prefix <= 28:
        raise ValueError('--vswitch-prefix must be 16 to 28')
    type_name, max_enis, max_ipv4, max_ipv6 = pick_type(enis, secondary_ips, ipv6)
    rng = random.Random(seed)
    world = {'credentials': [{'id': 'LTAIlabkey', 'secret': 'labsecret'}], 'regions': {}}
    mac = 0
    for r_index, (region_id, prefix, zones) in enumerate(REGIONS[:regions]):
        count = instances // regions + (1 if r_index < instances % regions else 0)
        vpc_net = ipaddress.IPv4Network('10.0.0.0/8')
        pool = SubnetPool(region_id, prefix, vpc_net, seed, vswitch_prefix)
        vpc_id = stable_id('vpc', prefix, seed, region_id)
        items = []
        for n in range(count):
            zone = zones[n % len(zones)]
            cluster = 'c%03d' % (n // CLUSTER_SIZE)
            inst_id = stable_id('i', prefix, seed, region_id, n)
            name = '%s-node-%04d' % (cluster, n % CLUSTER_SIZE)
            eni_list = []
            for index in range(enis):
                want_ipv6 = ipv6 if index == enis - 1 else 0
                vsw, addrs = pool.take(zone, index, 1 + secondary_ips, want_ipv6 > 0)
                mac += 1
                entry = {'id': stable_id('eni', prefix, seed, region_id, n, index), 'vswitch': vsw['id'],
                         'mac': '00:16:3e:%02x:%02x:%02x' % (mac >> 16 & 255, mac >> 8 & 255, mac & 255),
                         'primary_ip': addrs[0], 'secondary_ips': addrs[1:]}
                if want_ipv6:
                    entry['ipv6_count'] = want_ipv6
                eni_list.append(entry)
            items.append({'id': inst_id, 'name': name, 'hostname': name, 'type': type_name, 'zone': zone,
                          'status': 'Stopped' if rng.random() < stopped_rate else 'Running',
                          'tags': {'cluster': cluster, 'role': 'master' if n % CLUSTER_SIZE == 0 else 'worker'},
                          'enis': eni_list})
        world['regions'][region_id] = {
            'instance_types': {type_name: {'eni_quantity': max_enis, 'eni_private_ip_quantity': max_ipv4,
                                           'eni_ipv6_quantity': max_ipv6}},
            'vpcs': [{'id': vpc_id, 'cidr': str(vpc_net), 'ipv6_cidr': '2408:4005:3a1:a400::/56' if ipv6 else None,
                      'vswitches': pool.vswitches}],
            'instances': items,
        }
    return world


def main(argv=None):
    parser = argparse.ArgumentParser(description='Generate a large, deterministic emulator world.')
    parser.add_argument('--instances', type=int, default=1000, help='instances in total (default %(default)s)')
    parser.add_argument('--enis', type=int, default=3, help='ENIs per instance, primary included (default %(default)s)')
    parser.add_argument('--regions', type=int, default=2, help='regions to spread the instances over (default %(default)s)')
    parser.add_argument('--seed', type=int, default=1, help='seed for ids and the stopped instances (default %(default)s)')
    parser.add_argument('--secondary-ips', type=int, default=2, help='secondary IPv4 per ENI (default %(default)s)')
    parser.add_argument('--ipv6', type=int, default=0, help='IPv6 addresses on the last ENI, which becomes dual-stack (default 0)')
    parser.add_argument('--stopped-rate', type=float, default=0.02, help='fraction of Stopped instances (default %(default)s)')
    parser.add_argument('--vswitch-prefix', type=int, default=22, help='prefix length of the vSwitches (default %(default)s)')
    parser.add_argument('-o', '--output', default='-', help='output file, .json for JSON (default stdout, YAML)')
    args = parser.parse_args(argv)
    try:
        world = generate(args.instances, args.enis, args.regions, args.seed, args.secondary_ips, args.ipv6, args.stopped_rate,
                         args.vswitch_prefix)
    except (ValueError, StopIteration) as exc:
        parser.error(str(exc) or 'the VPC ran out of /%d vSwitches' % args.vswitch_prefix)
    if args.output.endswith('.json'):
        text = json.dumps(world, separators=(',', ':'))
    else:
        dumper = getattr(yaml, 'CSafeDumper', yaml.SafeDumper)
        text = '---\n' + yaml.dump(world, Dumper=dumper, sort_keys=False, default_flow_style=None, width=200)
    if args.output == '-':
        sys.stdout.write(text)
    else:
        with open(args.output, 'w', encoding='utf-8') as handle:
            handle.write(text)
    return 0


if __name__ == '__main__':
    sys.exit(main())
