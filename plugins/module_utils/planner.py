# -*- coding: utf-8 -*-
# Copyright: underlay.alicloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure pool planner (no I/O): host facts in, Spiderpool objects out.

Input is the host facts contract (``alicloud_*`` variables, one dict per node) plus node facts
mapping ENI MACs to Linux interface names. Output is one ``SpiderMultusConfig`` per interface in
use and one ``SpiderIPPool`` per node x interface x IP family that has addresses, each pool
holding exactly that ENI's secondary addresses in the webhook's canonical range form.
Every inconsistency raises PlanError with one line naming the values involved.
"""

from __future__ import annotations

import fnmatch
import hashlib
import ipaddress
import re
from collections.abc import Mapping

from ansible_collections.underlay.alicloud.plugins.module_utils import iprange, node_names

API_VERSION = 'spiderpool.spidernet.io/v2beta1'
MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by'
MANAGED_BY = 'underlay.alicloud'
NODE_LABEL = 'underlay.alicloud/node'
INTERFACE_LABEL = 'underlay.alicloud/interface'
ENI_LABEL = 'underlay.alicloud/eni'
FAMILY_LABEL = 'underlay.alicloud/ip-family'

# Host variables read besides the alicloud_* contract.
NODE_NAME_VAR = 'spiderpool_networks_node_name'
INTERFACE_MAP_VAR = 'spiderpool_networks_interface_map'
DISCOVERED_INTERFACES_VAR = 'ipvlan_cni_interfaces'

DEFAULT_OPTIONS = {
    'namespace': 'kube-system',
    'multus_name_template': 'ipvlan-{interface}',
    'pool_name_template': '{node}-{interface}-v{family}',
    'default_pool': True,
    'enable_coordinator': True,
    'mtu': 0,
    'vlan_id': 0,
    'ipvlan_options': {},
    'interface_options': {},
    'interfaces': [],
    'exclude_interfaces': [],
    'families': [4, 6],
    'labels': {},
}
INTERFACE_OPTION_KEYS = ('default_pool', 'enable_coordinator', 'mtu', 'vlan_id', 'ipvlan_options')

# DNS-1123 label: names of pools/configs and label values both fit in 63 characters.
MAX_NAME = 63
_DNS_LABEL = re.compile(r'^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')
_LABEL_VALUE = re.compile(r'^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$')
_IFNAME = re.compile(r'^[^\s/:]{1,15}$')
_MAC = re.compile(r'^([0-9a-f]{2}:){5}[0-9a-f]{2}$')


class PlanError(ValueError):
    """The facts or options cannot give a safe, unambiguous set of objects."""


def _hash(text, length=8):
    return hashlib.sha256(text.encode('utf-8')).hexdigest()[:length]


def _truncate(text, limit, keep):
    """Cut ``text`` to ``limit`` characters, ending in a stable hash of the full text."""
    if len(text) <= limit:
        return text
    stem = text[:limit - 9]
    while stem and not keep(stem[-1]):
        stem = stem[:-1]
    return '%s-%s' % (stem, _hash(text))


def dns_name(text):
    """A DNS-1123 label derived from ``text``: lower case, other characters to '-', <= 63 chars."""
    name = re.sub(r'[^a-z0-9-]+', '-', str(text).lower()).strip('-')
    name = re.sub(r'-{2,}', '-', name)
    if not name:
        raise PlanError('cannot derive a DNS-1123 name from %r' % (text,))
    return _truncate(name, MAX_NAME, str.isalnum)


def label_value(text):
    """A valid Kubernetes label value for ``text`` (hash-suffixed when longer than 63)."""
    value = re.sub(r'[^A-Za-z0-9_.-]+', '-', str(text)).strip('-_.')
    return _truncate(value, MAX_NAME, str.isalnum)


def normalize_mac(mac):
    return str(mac).strip().lower().replace('-', ':')


def _host_items(hosts):
    """(host label, facts) pairs from a list of hostvars or a dict {inventory_hostname: hostvars}."""
    if isinstance(hosts, Mapping):
        items = list(hosts.items())
    elif isinstance(hosts, (list, tuple)):
        items = []
        for index, facts in enumerate(hosts):
            if not isinstance(facts, Mapping):
                raise PlanError('host entry %d is %s, expected a dict of host facts' % (index, type(facts).__name__))
            label = facts.get('inventory_hostname') or facts.get('alicloud_hostname') or facts.get('alicloud_instance_id')
            items.append((str(label or 'host #%d' % index), facts))
    else:
        raise PlanError('hosts must be a list of host facts or a dict of hostvars, got %s' % type(hosts).__name__)
    if not items:
        raise PlanError('no hosts given: the planner needs the host facts of the cluster nodes')
    return items


def merge_options(options):
    """Defaults + user options; unknown keys are an error (a typo must not be ignored)."""
    options = dict(options or {})
    unknown = sorted(set(options) - set(DEFAULT_OPTIONS))
    if unknown:
        raise PlanError('unknown planner option(s) %s; expected some of %s' % (', '.join(unknown), ', '.join(sorted(DEFAULT_OPTIONS))))
    merged = dict(DEFAULT_OPTIONS)
    merged.update({k: v for k, v in options.items() if v is not None})
    families = merged['families']
    if not isinstance(families, (list, tuple)) or not families or any(str(f) not in ('4', '6') for f in families):
        raise PlanError('families must be a non-empty list of 4 and/or 6, got %r' % (families,))
    merged['families'] = sorted({int(f) for f in families})
    for key in ('interfaces', 'exclude_interfaces'):
        if not isinstance(merged[key], (list, tuple)):
            raise PlanError('%s must be a list of interface names, got %r' % (key, merged[key]))
    for key in ('labels', 'ipvlan_options', 'interface_options'):
        if not isinstance(merged[key], Mapping):
            raise PlanError('%s must be a mapping, got %r' % (key, merged[key]))
    for iface, overrides in merged['interface_options'].items():
        bad = sorted(set(overrides or {}) - set(INTERFACE_OPTION_KEYS)) if isinstance(overrides, Mapping) else ['<not a mapping>']
        if bad:
            raise PlanError('interface_options.%s: unknown key(s) %s; expected some of %s' % (iface, ', '.join(bad), ', '.join(INTERFACE_OPTION_KEYS)))
    for key, value in merged['labels'].items():
        if not _LABEL_VALUE.match(str(value)) or len(str(value)) > MAX_NAME:
            raise PlanError('labels.%s: %r is not a valid label value' % (key, value))
    if not _DNS_LABEL.match(str(merged['namespace'])):
        raise PlanError('namespace %r is not a valid Kubernetes namespace name' % (merged['namespace'],))
    return merged


def _interface_option(options, iface, key):
    overrides = options['interface_options'].get(iface) or {}
    return overrides.get(key, options[key])


def _int_option(options, iface, key, low, high):
    value = _interface_option(options, iface, key)
    try:
        number = int(value or 0)
    except (TypeError, ValueError):
        number = None
    if number is None or not low <= number <= high:
        raise PlanError('%s for interface %s must be an integer %d-%d, got %r' % (key, iface, low, high, value))
    return number


def _render_name(template, what, **fields):
    try:
        raw = template.format(**fields)
    except (KeyError, IndexError, ValueError) as exc:
        raise PlanError('%s %r is not usable: %s (fields: %s)' % (what, template, exc, ', '.join(sorted(fields)))) from None
    return dns_name(raw)


def _network(value, what):
    try:
        return ipaddress.ip_network(str(value).strip(), strict=False)
    except ValueError:
        raise PlanError('%s %r is not a CIDR' % (what, value)) from None


def _interface_for(host, node, eni, index, discovered, explicit):
    """Linux interface name of an ENI: explicit map > discovered MAC map > eth<device_index>."""
    mac = normalize_mac(eni.get('mac') or '')
    for source, key in ((explicit, eni.get('id')), (explicit, mac), (discovered, mac)):
        if key and key in source:
            name = str(source[key])
            break
    else:
        device_index = eni.get('device_index')
        if device_index is None and eni.get('type') == 'Primary':
            device_index = 0
        if device_index is None:
            raise PlanError('cannot tell the interface of ENI %s (MAC %s) on node %s: no device_index and no entry in %s or %s; '
                            'set %s on host %s' % (eni.get('id'), mac or '?', node, DISCOVERED_INTERFACES_VAR, INTERFACE_MAP_VAR,
                                                   INTERFACE_MAP_VAR, host))
        name = 'eth%s' % device_index
    if not _IFNAME.match(name):
        raise PlanError('interface name %r for ENI %s on node %s is not a valid Linux interface name' % (name, eni.get('id', index), node))
    return name


def _mac_map(host, value, var):
    if value in (None, ''):
        return {}
    if not isinstance(value, Mapping):
        raise PlanError('%s on host %s must be a mapping {mac or eni id: interface}, got %r' % (var, host, value))
    return {(normalize_mac(k) if _MAC.match(normalize_mac(k)) else str(k)): v for k, v in value.items()}


def _pool_addresses(node, iface, eni, family):
    """(vSwitch network, merged intervals) of one ENI's validated secondary addresses in a family."""
    if family == 4:
        raw, cidr_key, what = eni.get('secondary_ips') or [], 'cidr', 'secondary IP'
    else:
        raw, cidr_key, what = eni.get('ipv6_ips') or [], 'ipv6_cidr', 'IPv6 address'
    if not raw:
        return None, []
    eni_id = eni.get('id', '?')
    if not eni.get(cidr_key):
        raise PlanError('ENI %s (%s) on node %s has %s(s) %s but no vSwitch %s' % (eni_id, iface, node, what, ', '.join(map(str, raw)), cidr_key))
    network = _network(eni[cidr_key], 'vSwitch %s of ENI %s on node %s' % (cidr_key, eni_id, node))
    if network.version != family:
        raise PlanError('vSwitch %s %s of ENI %s on node %s is not IPv%d' % (cidr_key, eni[cidr_key], eni_id, node, family))
    try:
        wanted = iprange.parse(raw, what)
    except iprange.IPRangeError as exc:
        raise PlanError('ENI %s on node %s: %s' % (eni_id, node, exc)) from None
    if any(version != family for version, _first, _last in wanted):
        raise PlanError('ENI %s on node %s: %s list %s holds an address that is not IPv%d' % (eni_id, node, what, raw, family))
    outside = iprange.subtract(wanted, [iprange.network_interval(network)])
    if outside:
        raise PlanError('address %s of ENI %s on node %s is outside its vSwitch %s' % (iprange.addresses(outside, 1)[0], eni_id, node, network))
    reserved = iprange.intersect(wanted, iprange.reserved_interval_set(network))
    if reserved:
        raise PlanError('address %s of ENI %s on node %s is reserved in vSwitch %s' % (iprange.addresses(reserved, 1)[0], eni_id, node, network))
    if family == 4 and eni.get('primary_ip'):
        # Metadata-derived lists include the primary address; it never goes to pods.
        wanted = iprange.subtract(wanted, iprange.parse([eni['primary_ip']], 'primary IP'))
    return network, wanted


def _gateway(node, eni, network):
    gateway = eni.get('gateway') or str(network.broadcast_address - 2)
    ip = iprange.parse_ip(gateway, 'gateway') if gateway else None
    if ip not in network:
        raise PlanError('gateway %s of ENI %s on node %s is outside its vSwitch %s' % (gateway, eni.get('id'), node, network))
    return str(ip)


def _ipv6_gateway(network):
    """The Subnet-Router anycast address of the vSwitch IPv6 CIDR (RFC 4291 2.6.1).

    Spiderpool installs the pod's ``::/0`` route only from a pool ``gateway``, which its webhook
    requires inside ``subnet``; the VPC router announces itself link-local only. Every router must
    answer the Subnet-Router anycast address of its links, and Alibaba reserves that first address
    of each vSwitch, so it is never handed to a pod (docs/spiderpool-networks.md).
    """
    return str(network.network_address)


def _node_plan(host, facts, options):
    """(node name, [(iface, eni)]) for one host, with interface names resolved."""
    var, raw = node_names.source(facts, NODE_NAME_VAR)
    if raw is None:
        raise PlanError('host %s has no Kubernetes node name: neither %s nor alicloud_hostname is set' % (host, NODE_NAME_VAR))
    node = node_names.normalise(raw)
    if not node_names.is_valid(node):
        raise PlanError(node_names.invalid_message(host, var, raw))
    enis = facts.get('alicloud_enis')
    if not enis or not isinstance(enis, list):
        raise PlanError('node %s (host %s) has no ENI facts (alicloud_enis is %s)' % (node, host, 'missing' if enis is None else repr(enis)))
    explicit = _mac_map(host, facts.get(INTERFACE_MAP_VAR), INTERFACE_MAP_VAR)
    discovered = _mac_map(host, facts.get(DISCOVERED_INTERFACES_VAR), DISCOVERED_INTERFACES_VAR)
    seen = {}
    chosen = []
    for index, eni in enumerate(enis):
        if not isinstance(eni, Mapping):
            raise PlanError('node %s: ENI entry %d is not a mapping' % (node, index))
        iface = _interface_for(host, node, eni, index, discovered, explicit)
        if iface in seen:
            raise PlanError('ENIs %s and %s of node %s both map to interface %s' % (seen[iface], eni.get('id'), node, iface))
        seen[iface] = eni.get('id')
        if options['interfaces'] and iface not in options['interfaces']:
            continue
        if iface in options['exclude_interfaces']:
            continue
        chosen.append((iface, eni))
    return node, chosen


def _labels(options, **extra):
    labels = {MANAGED_BY_LABEL: MANAGED_BY}
    labels.update({k: label_value(v) for k, v in extra.items()})
    labels.update({str(k): str(v) for k, v in options['labels'].items()})
    labels[MANAGED_BY_LABEL] = MANAGED_BY
    return labels


def multus_config(iface, name, options):
    """One SpiderMultusConfig (cniType ipvlan) for an interface."""
    ipvlan = {'master': [iface]}
    vlan_id = _int_option(options, iface, 'vlan_id', 0, 4094)
    mtu = _int_option(options, iface, 'mtu', 0, 65535)
    if vlan_id:
        ipvlan['vlanID'] = vlan_id
    if mtu:
        ipvlan['mtu'] = mtu
    extra = _interface_option(options, iface, 'ipvlan_options') or {}
    clash = sorted(set(extra) & {'master', 'vlanID', 'mtu'})
    if clash:
        raise PlanError('ipvlan_options for interface %s may not set %s (use the interface, vlan_id and mtu options)' % (iface, ', '.join(clash)))
    ipvlan.update(extra)
    return {
        'apiVersion': API_VERSION,
        'kind': 'SpiderMultusConfig',
        'metadata': {
            'name': name,
            'namespace': options['namespace'],
            'labels': _labels(options, **{INTERFACE_LABEL: iface}),
        },
        'spec': {
            'cniType': 'ipvlan',
            'enableCoordinator': bool(_interface_option(options, iface, 'enable_coordinator')),
            'ipvlan': ipvlan,
        },
    }


def _pool_pattern(options, iface, family):
    """``pool_name_template`` with '*' for the node, ENI and instance, normalised as dns_name does the
    names but keeping '*': only [a-z0-9*-] remain, where fnmatch and Go's filepath.Match agree."""
    try:
        raw = options['pool_name_template'].format(node='*', interface=iface, family=family, eni='*', instance='*')
    except (KeyError, IndexError, ValueError, TypeError):
        return None
    return re.sub(r'\*{2,}', '*', re.sub(r'-{2,}', '-', re.sub(r'[^a-z0-9*-]+', '-', str(raw).lower())).strip('-'))


def _multus_pools(options, iface, multus_ref, pools):
    """The interface's pools per family for its SpiderMultusConfig (``spec.ipvlan.ippools``).

    Without them Spiderpool's IPAM falls back to the cluster's default pools of every enabled family, so
    in a dual-stack cluster a pod on an IPv4-only interface fails with "all IPv6 IPPools filtered out".
    A family gets an entry only when the interface has pools of it. The entry is a wildcard of the name
    template (Spiderpool 1.2.2 expands it with filepath.Match over the pools of that family,
    ``ParseWildcardPoolNameList``), which keeps the config the same when nodes join or leave; the plain
    sorted names are used when some of the interface's pool names do not fit the wildcard (truncated
    long names), when it would also match a planned pool of another interface, or when the template
    does not put the interface into the name.
    """
    out = {}
    for family in (4, 6):
        same_family = [p for p in pools if p['spec']['ipVersion'] == family]
        names = sorted(p['metadata']['name'] for p in same_family if p['spec']['multusName'] == [multus_ref])
        if not names:
            continue
        others = [p['metadata']['name'] for p in same_family if p['spec']['multusName'] != [multus_ref]]
        pattern, any_interface = (_pool_pattern(options, interface, family) for interface in (iface, '*'))
        # The wildcard must name the interface (else a pool another interface gains later would match)
        # and select exactly this interface's pools of the family among the planned ones.
        fits = (pattern and '*' in pattern and pattern != any_interface and all(fnmatch.fnmatchcase(name, pattern) for name in names)
                and not any(fnmatch.fnmatchcase(name, pattern) for name in others))
        out['ipv%d' % family] = [pattern] if fits else names
    return out


def ip_pool(name, node, iface, eni, family, network, intervals, multus_name, options):
    """One SpiderIPPool for a node, an interface and an IP family."""
    spec = {
        'default': bool(_interface_option(options, iface, 'default_pool')),
        'ipVersion': family,
        'subnet': str(network),
    }
    spec['gateway'] = _gateway(node, eni, network) if family == 4 else _ipv6_gateway(network)
    spec['ips'] = iprange.format_ranges(intervals)
    spec['nodeName'] = [node]
    spec['multusName'] = ['%s/%s' % (options['namespace'], multus_name)]
    labels = _labels(options, **{NODE_LABEL: node, INTERFACE_LABEL: iface, FAMILY_LABEL: 'ipv%d' % family})
    if eni.get('id'):
        labels[ENI_LABEL] = label_value(eni['id'])
    return {
        'apiVersion': API_VERSION,
        'kind': 'SpiderIPPool',
        'metadata': {'name': name, 'labels': labels},
        'spec': spec,
    }


def _check_overlaps(pools):
    """Pools may not share an address, nor sit in different but overlapping subnets."""
    overlap = iprange.first_overlap((p['metadata']['name'], iprange.parse(p['spec']['ips'])) for p in pools)
    if overlap:
        raise PlanError('address %s is in both SpiderIPPool %s and %s (two ENIs report the same address)' % overlap)
    subnets = {}
    for pool in pools:
        subnets.setdefault(pool['spec']['subnet'], pool['metadata']['name'])
    nets = sorted((ipaddress.ip_network(s) for s in subnets), key=lambda n: (n.version, int(n.network_address), n.prefixlen))
    for left, right in zip(nets, nets[1:]):
        if left.version == right.version and left.overlaps(right):
            raise PlanError('vSwitch subnets %s (SpiderIPPool %s) and %s (SpiderIPPool %s) overlap'
                            % (left, subnets[str(left)], right, subnets[str(right)]))


def plan(hosts, options=None):
    """Plan SpiderMultusConfigs and SpiderIPPools for the given nodes.

    Returns ``{'multus_configs': [...], 'ippools': [...], 'objects': [...], 'summary': {...}}``;
    ``objects`` lists the multus configs first, then the pools, each sorted by name.
    """
    options = merge_options(options)
    pools = {}
    pool_keys = {}
    multus = {}
    multus_keys = {}
    nodes = {}
    coverage = {}       # interface -> family -> nodes with a pool of that family
    for host, facts in _host_items(hosts):
        if not isinstance(facts, Mapping):
            raise PlanError('host %s: facts are %s, expected a mapping' % (host, type(facts).__name__))
        node, chosen = _node_plan(host, facts, options)
        if node in nodes:
            raise PlanError('hosts %s and %s have the same Kubernetes node name %s' % (nodes[node], host, node))
        nodes[node] = host
        for iface, eni in chosen:
            for family in options['families']:
                network, intervals = _pool_addresses(node, iface, eni, family)
                if not intervals:
                    continue
                multus_name = _render_name(options['multus_name_template'], 'multus_name_template', interface=iface)
                if multus_keys.setdefault(multus_name, iface) != iface:
                    raise PlanError('interfaces %s and %s both give the SpiderMultusConfig name %s' % (multus_keys[multus_name], iface, multus_name))
                multus.setdefault(multus_name, multus_config(iface, multus_name, options))
                name = _render_name(options['pool_name_template'], 'pool_name_template', node=node, interface=iface, family=family,
                                    eni=eni.get('id', ''), instance=facts.get('alicloud_instance_id', ''))
                key = '%s/%s/IPv%d' % (node, iface, family)
                if name in pool_keys:
                    raise PlanError('SpiderIPPool name %s is given to both %s and %s; make pool_name_template unique' % (name, pool_keys[name], key))
                pool_keys[name] = key
                pools[name] = ip_pool(name, node, iface, eni, family, network, intervals, multus_name, options)
                coverage.setdefault(iface, {}).setdefault(family, set()).add(node)
    pool_list = [pools[name] for name in sorted(pools)]
    _check_overlaps(pool_list)
    chosen = set()      # (interface, family) whose pools the user names in ipvlan_options.ippools
    for multus_name, config in multus.items():
        ippools = _multus_pools(options, multus_keys[multus_name], '%s/%s' % (options['namespace'], multus_name), pool_list)
        given = config['spec']['ipvlan'].get('ippools') or {}
        if not isinstance(given, Mapping):
            raise PlanError('ipvlan_options.ippools for interface %s must be a mapping {ipv4: [...], ipv6: [...]}, got %r'
                            % (multus_keys[multus_name], given))
        ippools.update(given)      # keys set in ipvlan_options win
        chosen.update((multus_keys[multus_name], int(key[-1])) for key in given if key in ('ipv4', 'ipv6'))
        config['spec']['ipvlan']['ippools'] = ippools
    multus_list = [multus[name] for name in sorted(multus)]
    summary = {
        'nodes': len(nodes),
        'interfaces': sorted(multus_keys.values()),
        'multus_configs': len(multus_list),
        'ippools': len(pool_list),
        'ipv4_addresses': sum(iprange.size(iprange.parse(p['spec']['ips'])) for p in pool_list if p['spec']['ipVersion'] == 4),
        'ipv6_addresses': sum(iprange.size(iprange.parse(p['spec']['ips'])) for p in pool_list if p['spec']['ipVersion'] == 6),
    }
    warnings = family_gaps(coverage, {iface: '%s/%s' % (options['namespace'], name) for name, iface in multus_keys.items()}, chosen)
    return {'multus_configs': multus_list, 'ippools': pool_list, 'objects': multus_list + pool_list, 'summary': summary,
            'warnings': warnings}


def family_gaps(coverage, multus_refs, chosen=(), shown=5):
    """Interfaces with pools of a family on some of their nodes only, one line each (``chosen``:
    (interface, family) pairs whose pools the user names, not checked).

    The interface's multus config lists the pools of every family it has anywhere, and Spiderpool
    allocates each listed family ("all IPv6 IPPools ... filtered out" on a node without one).
    """
    lines = []
    for iface in sorted(coverage):
        carriers = set().union(*coverage[iface].values())
        for family in sorted(coverage[iface]):
            missing = sorted(carriers - coverage[iface][family])
            if not missing or (iface, family) in chosen:
                continue
            where = ', '.join(missing[:shown]) + (' and %d more' % (len(missing) - shown) if len(missing) > shown else '')
            lines.append('interface %s has IPv%d pools on %d of %d nodes: on %s a pod that attaches %s fails IPAM, because Spiderpool '
                         'allocates every family its multus config lists; give those ENIs IPv%d addresses%s or plan fewer families '
                         '(spiderpool_networks_families)'
                         % (iface, family, len(carriers) - len(missing), len(carriers), where, multus_refs[iface], family,
                            ' (alicloud_enis_ipv6_per_eni)' if family == 6 else ''))
    return lines
