# -*- coding: utf-8 -*-
# Copyright: underlay.alicloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure logic of the egress modules: records, ownership, SNAT and IPv6 bandwidth plans. No I/O.

Ownership: NAT gateways, EIPs and IPv6 addresses the collection opens are tagged
``managed-by: underlay.alicloud``; SNAT entries carry no tags in the API, so ours are the
entries whose SnatEntryName starts with the configured prefix (default ``underlay-``).
Nothing without that mark is ever modified or deleted.
"""

from __future__ import annotations

import ipaddress
import re

from ansible_collections.underlay.alicloud.plugins.module_utils.facts import tags_dict

MANAGED_TAG_KEY = 'managed-by'
MANAGED_TAG_VALUE = 'underlay.alicloud'
MANAGED_TAGS = {MANAGED_TAG_KEY: MANAGED_TAG_VALUE}
SNAT_NAME_PREFIX = 'underlay-'

# Charge types and Mbit/s ranges from the SDK request models' field documentation (intl site).
IPV6_BANDWIDTH_RANGES = {'PayByTraffic': (1, 1000), 'PayByBandwidth': (1, 2000)}
EIP_BANDWIDTH_RANGES = {'PayByTraffic': (1, 200), 'PayByBandwidth': (1, 500)}

_NAME_RE = re.compile(r'^[A-Za-z\u4e00-\u9fff][A-Za-z0-9\u4e00-\u9fff_.-]{1,127}$')


class EgressError(ValueError):
    """Bad input or an impossible request; the message names the value and the allowed form."""


def _items(raw, container, item):
    return ((raw or {}).get(container) or {}).get(item) or []


def is_managed(tags):
    """True when ``tags`` (a dict) carry the collection's ownership tag."""
    return (tags or {}).get(MANAGED_TAG_KEY) == MANAGED_TAG_VALUE


def with_managed_tag(tags):
    """``tags`` plus the ownership tag (which the user cannot override)."""
    merged = dict(tags or {})
    merged.update(MANAGED_TAGS)
    return merged


def check_bandwidth(option, value, charge_type, ranges):
    """Fail unless ``value`` Mbit/s is allowed for ``charge_type`` in ``ranges``."""
    if charge_type not in ranges:
        raise EgressError('%s: internet charge type %r is not one of %s' % (option, charge_type, ', '.join(sorted(ranges))))
    low, high = ranges[charge_type]
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise EgressError('%s: %r Mbit/s is outside the allowed range %d to %d for %s' % (option, value, low, high, charge_type))
    return value


def check_name(option, value):
    """Names of NAT gateways: 2 to 128 characters, starting with a letter (API rule)."""
    if value is not None and not _NAME_RE.match(str(value)):
        raise EgressError('%s: %r is not a valid name (2 to 128 letters, digits, ".", "_" or "-", starting with a letter)'
                          % (option, value))
    return value


def check_ipv6_addresses(option, values):
    """The canonical forms of ``values``, each of which must be an IPv6 address."""
    found = set()
    for text in values or []:
        try:
            address = ipaddress.ip_address(str(text).strip())
        except ValueError:
            address = None
        if address is None or address.version != 6:
            raise EgressError('%s: %r is not an IPv6 address (expected a form such as 2408:4005:3a1:a400::10)' % (option, text))
        found.add(str(address))
    return found


# -- records ----------------------------------------------------------------------------------

def nat_record(raw):
    """DescribeNatGateways item → plain record."""
    tags = tags_dict(raw.get('Tags'))
    private = raw.get('NatGatewayPrivateInfo') or {}
    return {
        'id': raw.get('NatGatewayId'),
        'name': raw.get('Name') or '',
        'description': raw.get('Description') or '',
        'vpc_id': raw.get('VpcId'),
        'vswitch_id': private.get('VswitchId') or None,
        'private_ip': private.get('PrivateIpAddress') or None,
        'status': raw.get('Status'),
        'nat_type': raw.get('NatType'),
        'network_type': raw.get('NetworkType'),
        'snat_table_ids': list(_items(raw, 'SnatTableIds', 'SnatTableId')),
        'eips': [{'allocation_id': e.get('AllocationId'), 'ip_address': e.get('IpAddress')}
                 for e in _items(raw, 'IpLists', 'IpList')],
        'tags': tags,
        'managed': is_managed(tags),
    }


def eip_record(raw):
    """DescribeEipAddresses item → plain record."""
    tags = tags_dict(raw.get('Tags'))
    bandwidth = raw.get('Bandwidth')
    return {
        'allocation_id': raw.get('AllocationId'),
        'ip_address': raw.get('IpAddress'),
        'name': raw.get('Name') or '',
        'status': raw.get('Status'),
        'region': raw.get('RegionId'),
        'bandwidth': int(bandwidth) if bandwidth not in (None, '') else None,
        'internet_charge_type': raw.get('InternetChargeType'),
        'instance_id': raw.get('InstanceId') or None,
        'instance_type': raw.get('InstanceType') or None,
        'tags': tags,
        'managed': is_managed(tags),
    }


def snat_record(raw, prefix=SNAT_NAME_PREFIX):
    """DescribeSnatTableEntries item → plain record (``managed`` from the name prefix)."""
    name = raw.get('SnatEntryName') or ''
    return {
        'id': raw.get('SnatEntryId'),
        'name': name,
        'snat_table_id': raw.get('SnatTableId'),
        'nat_gateway_id': raw.get('NatGatewayId'),
        'source_vswitch_id': raw.get('SourceVSwitchId') or None,
        'source_cidr': raw.get('SourceCIDR') or None,
        'snat_ips': sorted(ip.strip() for ip in (raw.get('SnatIp') or '').split(',') if ip.strip()),
        'status': raw.get('Status'),
        'managed': bool(prefix) and name.startswith(prefix),
    }


def ipv6_record(raw):
    """DescribeIpv6Addresses item → plain record; ``bandwidth`` is null without Internet bandwidth."""
    tags = tags_dict(raw.get('Tags'))
    band = raw.get('Ipv6InternetBandwidth') or {}
    bandwidth = None
    if band.get('Ipv6InternetBandwidthId'):
        bandwidth = {'id': band['Ipv6InternetBandwidthId'], 'bandwidth': int(band.get('Bandwidth') or 0),
                     'internet_charge_type': band.get('InternetChargeType')}
    return {
        'id': raw.get('Ipv6AddressId'),
        'address': str(ipaddress.ip_address(raw['Ipv6Address'])) if raw.get('Ipv6Address') else None,
        'vswitch_id': raw.get('VSwitchId'),
        'vpc_id': raw.get('VpcId'),
        'ipv6_gateway_id': raw.get('Ipv6GatewayId') or None,
        'instance_id': raw.get('AssociatedInstanceId') or None,
        'instance_type': raw.get('AssociatedInstanceType') or None,
        'bandwidth': bandwidth,
        'tags': tags,
        'managed': is_managed(tags),
    }


# -- SNAT -------------------------------------------------------------------------------------

def snat_entry_name(source, prefix=SNAT_NAME_PREFIX):
    """Name of our entry for a vSwitch id or CIDR: ``underlay-vsw-bp1a``, ``underlay-10-0-0-0-24``."""
    return prefix + re.sub(r'[^A-Za-z0-9_-]+', '-', str(source)).strip('-')


def normalise_source(source, vswitch_cidrs, vpc_cidrs):
    """A wanted SNAT source (vSwitch id or IPv4 CIDR) → ``{'source', 'vswitch_id', 'cidr'}``.

    ``vswitch_cidrs`` maps the VPC's vSwitch ids to their CIDRs; ``vpc_cidrs`` are the VPC's
    IPv4 CIDRs. Unknown vSwitches and CIDRs outside the VPC are refused.
    """
    text = str(source).strip()
    if text.startswith('vsw-'):
        if text not in vswitch_cidrs:
            raise EgressError('sources: vSwitch %s is not a vSwitch of the NAT gateway\'s VPC (known: %s)'
                              % (text, ', '.join(sorted(vswitch_cidrs)) or 'none'))
        return {'source': text, 'vswitch_id': text, 'cidr': str(ipaddress.ip_network(vswitch_cidrs[text]))}
    try:
        net = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise EgressError('sources: %r is neither a vSwitch id (vsw-...) nor an IPv4 CIDR such as 192.168.0.0/24' % (text,)) from None
    if net.version != 4:
        raise EgressError('sources: %s is IPv6; SNAT entries take IPv4 CIDRs (IPv6 egress uses Internet bandwidth)' % text)
    if vpc_cidrs and not any(net.subnet_of(ipaddress.ip_network(c)) for c in vpc_cidrs):
        raise EgressError('sources: CIDR %s is outside the VPC (%s); give a CIDR inside it or a vSwitch id'
                          % (net, ', '.join(str(c) for c in vpc_cidrs)))
    return {'source': str(net), 'vswitch_id': None, 'cidr': str(net)}


def _entry_net(entry):
    cidr = entry.get('source_cidr')
    try:
        return ipaddress.ip_network(cidr, strict=False) if cidr else None
    except ValueError:
        return None


def _same_source(entry, want):
    if want['vswitch_id']:
        return entry.get('source_vswitch_id') == want['vswitch_id']
    net = _entry_net(entry)
    return not entry.get('source_vswitch_id') and net is not None and str(net) == want['cidr']


def plan_snat(entries, wanted, snat_ips, state='present', purge=False, skip_covered=True, prefix=SNAT_NAME_PREFIX):
    """What to do with one SNAT table.

    ``entries``: snat_record()s of the table; ``wanted``: normalise_source() results;
    ``snat_ips``: the EIP addresses every wanted entry should use.
    Returns ``{'create': [{source, vswitch_id, cidr, name}], 'modify': [(entry, ips)], 'delete': [entry],
    'covered': [{source, by}], 'overlaps': [{source, cidr, entry, entry_cidr, managed}], 'foreign': [...]}``.
    Entries not named with ``prefix`` are never in ``modify`` or ``delete``.
    """
    ips = sorted(set(snat_ips or []))
    plan = {'create': [], 'modify': [], 'delete': [], 'covered': [], 'overlaps': [], 'foreign': []}
    matched_ids = set()
    for want in wanted:
        same = [e for e in entries if _same_source(e, want)]
        matched_ids.update(e['id'] for e in same)
        want_net = ipaddress.ip_network(want['cidr'])
        for entry in entries:
            net = _entry_net(entry)
            if entry in same or net is None or not net.overlaps(want_net):
                continue
            plan['overlaps'].append({'source': want['source'], 'cidr': want['cidr'], 'entry': entry['id'],
                                     'entry_name': entry['name'], 'entry_cidr': str(net), 'managed': entry['managed']})
        ours = [e for e in same if e['managed']]
        theirs = [e for e in same if not e['managed']]
        if state == 'absent':
            plan['delete'].extend(ours)
            plan['foreign'].extend({'source': want['source'], 'entry': e['id'], 'entry_name': e['name']} for e in theirs)
            continue
        if theirs:
            plan['foreign'].extend({'source': want['source'], 'entry': e['id'], 'entry_name': e['name']} for e in theirs)
            continue
        if ours:
            if ips and ours[0]['snat_ips'] != ips:
                plan['modify'].append((ours[0], ips))
            plan['delete'].extend(ours[1:])
            continue
        cover = [e for e in entries if not e['managed'] and _entry_net(e) is not None
                 and _entry_net(e).version == 4 and want_net.subnet_of(_entry_net(e))]
        if skip_covered and cover:
            plan['covered'].append({'source': want['source'], 'by': cover[0]['id'], 'by_name': cover[0]['name'],
                                    'by_cidr': str(_entry_net(cover[0]))})
            continue
        plan['create'].append(dict(want, name=snat_entry_name(want['source'], prefix)))
    if purge and state == 'present':
        plan['delete'].extend(e for e in entries if e['managed'] and e['id'] not in matched_ids and e not in plan['delete'])
    return plan


# -- IPv6 Internet bandwidth -----------------------------------------------------------------

def plan_ipv6_bandwidth(addresses, bandwidth, charge_type, state='present'):
    """What to do for the ipv6_record()s of the wanted addresses.

    Returns ``{'allocate': [rec], 'modify': [rec], 'delete': [rec], 'foreign': [rec], 'charge_drift': [rec]}``;
    bandwidth not opened by the collection (untagged address) is only reported (``foreign``).
    """
    plan = {'allocate': [], 'modify': [], 'delete': [], 'foreign': [], 'charge_drift': []}
    for rec in addresses:
        band = rec['bandwidth']
        if state == 'absent':
            if band and rec['managed']:
                plan['delete'].append(rec)
            elif band:
                plan['foreign'].append(rec)
            continue
        if band is None:
            plan['allocate'].append(rec)
        elif not rec['managed']:
            plan['foreign'].append(rec)
        else:
            if band['bandwidth'] != bandwidth:
                plan['modify'].append(rec)
            if charge_type and band['internet_charge_type'] != charge_type:
                plan['charge_drift'].append(rec)
    return plan


# -- diagnosis (read-only) -------------------------------------------------------------------

def _snat_covers(entry, address, vswitch):
    """The prefix length with which ``entry`` covers ``address`` (in ``vswitch``), or None."""
    if vswitch and entry.get('source_vswitch_id') == vswitch['id']:
        return ipaddress.ip_network(vswitch['cidr']).prefixlen
    net = _entry_net(entry)
    if net is not None and net.version == 4 and address in net:
        return net.prefixlen
    return None


def _diagnose_ipv4(address, vpc_id, vswitches, nat_gateways):
    ip = ipaddress.ip_address(address)
    vswitch = next((v for v in vswitches if v.get('cidr') and ip in ipaddress.ip_network(v['cidr'])), None)
    where = '%s (%s)' % (vswitch['id'], vswitch['cidr']) if vswitch else '%s (in no vSwitch of VPC %s)' % (address, vpc_id)
    result = {'address': address, 'vswitch_id': vswitch['id'] if vswitch else None, 'nat_gateway_id': None,
              'snat_entry': None, 'snat_entry_name': None, 'snat_source': None, 'snat_ips': [], 'managed': None}
    if not nat_gateways:
        return dict(result, state='missing', reason='no NAT gateway in VPC %s' % vpc_id)
    covering = []
    for gateway in nat_gateways:
        for entry in gateway.get('snat_entries') or []:
            prefix = _snat_covers(entry, ip, vswitch)
            if prefix is not None:
                # The most specific entry wins; for equal prefixes a vSwitch entry is the specific one.
                covering.append(((prefix, bool(entry.get('source_vswitch_id'))), gateway, entry))
    if not covering:
        return dict(result, state='missing', reason='no SNAT entry covers %s on NAT gateway(s) %s' % (
            where, ', '.join(g['id'] for g in nat_gateways)))
    _rank, gateway, entry = max(covering, key=lambda item: item[0])
    source = entry.get('source_vswitch_id') or entry.get('source_cidr')
    result.update(nat_gateway_id=gateway['id'], snat_entry=entry['id'], snat_entry_name=entry.get('name') or '',
                  snat_source=source, snat_ips=list(entry.get('snat_ips') or []), managed=bool(entry.get('managed')))
    text = 'SNAT entry %s (%s, source %s) on NAT gateway %s to %s' % (
        entry['id'], entry.get('name') or 'unnamed', source, gateway['id'], ', '.join(result['snat_ips']) or 'no SNAT IP')
    waiting = [s for s in (gateway.get('status'), entry.get('status')) if s and s != 'Available']
    if waiting:
        return dict(result, state='pending', reason='%s, not Available yet (%s)' % (text, '/'.join(waiting)))
    return dict(result, state='ok', reason=text)


def _diagnose_ipv6(address, vpc_id, ipv6_by_address):
    record = ipv6_by_address.get(str(ipaddress.ip_address(address)))
    result = {'address': address, 'ipv6_address_id': None, 'bandwidth': None, 'internet_charge_type': None, 'managed': None}
    if record is None:
        return dict(result, state='missing', reason='not an IPv6 address of VPC %s' % vpc_id)
    result.update(ipv6_address_id=record['id'], managed=record['managed'])
    band = record['bandwidth']
    if not band:
        return dict(result, state='missing', reason='no IPv6 Internet bandwidth: the address is private to the VPC')
    result.update(bandwidth=band['bandwidth'], internet_charge_type=band['internet_charge_type'])
    return dict(result, state='ok', reason='IPv6 Internet bandwidth %s Mbit/s (%s, %s)' % (
        band['bandwidth'], band['internet_charge_type'] or 'charge type unknown', band['id']))


def diagnose_egress(addresses, cloud):
    """The cloud side of one pod's egress: SNAT for its IPv4, Internet bandwidth for its IPv6 addresses.

    ``cloud``: ``vpc_id``, ``vswitches`` (vswitch_info records), ``nat_gateways`` (nat_record()s
    carrying ``snat_entries`` of snat_record()s) and ``ipv6_addresses`` (ipv6_record()s). Entries and
    bandwidth are judged whoever made them. Returns ``{'ipv4': [...], 'ipv6': [...], 'complete',
    'summary'}``; each address has ``state`` ok, pending or missing and a ``reason``.
    """
    vpc_id = cloud.get('vpc_id') or '?'
    ipv6_by_address = dict((r['address'], r) for r in cloud.get('ipv6_addresses') or [] if r.get('address'))
    ipv4, ipv6 = [], []
    for address in addresses:
        if ipaddress.ip_address(address).version == 4:
            ipv4.append(_diagnose_ipv4(address, vpc_id, cloud.get('vswitches') or [], cloud.get('nat_gateways') or []))
        else:
            ipv6.append(_diagnose_ipv6(address, vpc_id, ipv6_by_address))
    parts = ['IPv%d %s: %s' % (version, d['address'], d['reason']) for version, found in ((4, ipv4), (6, ipv6)) for d in found]
    return {'ipv4': ipv4, 'ipv6': ipv6, 'complete': all(d['state'] == 'ok' for d in ipv4 + ipv6),
            'summary': '; '.join(parts) or 'the pod has no address'}
