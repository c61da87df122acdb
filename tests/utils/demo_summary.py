"""Print a short summary of a demo run: nodes, ENIs, pools, pod capacity, output location."""
import argparse
import glob
import ipaddress
import json
import os
import subprocess
import sys

import yaml


def count_ips(entries):
    total = 0
    for entry in entries or []:
        if '-' in entry:
            start, end = (ipaddress.ip_address(part) for part in entry.split('-', 1))
            total += int(end) - int(start) + 1
        else:
            total += 1
    return total


def plain(value):
    """ansible-inventory marks cloud strings as {"__ansible_unsafe": s}; unwrap them."""
    if isinstance(value, dict):
        if set(value) == {'__ansible_unsafe'}:
            return value['__ansible_unsafe']
        return dict((k, plain(v)) for k, v in value.items())
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def rendered_objects(render_dir):
    for path in sorted(glob.glob(os.path.join(render_dir, '**', '*.yaml'), recursive=True)):
        with open(path, encoding='utf-8') as handle:
            for doc in yaml.safe_load_all(handle):
                if isinstance(doc, dict) and 'kind' in doc:
                    yield path, doc


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--inventory', required=True)
    parser.add_argument('--render-dir', required=True)
    args = parser.parse_args()

    listing = plain(json.loads(subprocess.run(
        ['ansible-inventory', '-i', args.inventory, '--list'],
        check=True, capture_output=True, text=True).stdout))
    hostvars = listing.get('_meta', {}).get('hostvars', {})
    cluster = sorted(listing.get('k8s_cluster', {}).get('hosts', []) or hostvars)

    print('\n== underlay summary')
    print('%-12s %-22s %-5s %-8s %s' % ('node', 'instance', 'ENIs', 'IPs', 'quota (ENIs x IPv4/ENI)'))
    for host in cluster:
        facts = hostvars[host]
        enis = facts.get('alicloud_enis', [])
        ips = sum(len(eni.get('secondary_ips', [])) + len(eni.get('ipv6_ips', [])) for eni in enis)
        quota = facts.get('alicloud_eni_quota', {})
        print('%-12s %-22s %-5d %-8d %s x %s' % (host, facts.get('alicloud_instance_id'), len(enis), ips,
                                                 quota.get('enis'), quota.get('ipv4_per_eni')))

    kinds = {}
    capacity = {4: 0, 6: 0}
    for _path, doc in rendered_objects(args.render_dir):
        kinds[doc['kind']] = kinds.get(doc['kind'], 0) + 1
        if doc['kind'] == 'SpiderIPPool':
            spec = doc.get('spec', {})
            size = count_ips(spec.get('ips'))
            capacity[6 if ':' in spec.get('subnet', '') else 4] += size
            print('pool %-28s %-24s gw %-16s %3d IPs  node %s' % (
                doc['metadata']['name'], spec.get('subnet'), spec.get('gateway', '-'), size,
                ','.join(spec.get('nodeName', []))))
    print('objects: %s' % ', '.join('%d %s' % (n, k) for k, n in sorted(kinds.items())))
    print('pod addresses in pools: %d IPv4, %d IPv6'
          % (capacity[4], capacity[6]))
    for values in sorted(glob.glob(os.path.join(args.render_dir, 'helm', '*values*.yaml'))):
        print('Spiderpool Helm values: %s' % values)
    print('rendered configuration: %s (kubectl apply -k %s)' % (args.render_dir, args.render_dir))
    return 0


if __name__ == '__main__':
    sys.exit(main())
