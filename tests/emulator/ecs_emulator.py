"""Offline emulator of the Alibaba Cloud ECS (2014-05-26) and VPC (2016-04-28) RPC APIs.

The real Alibaba SDK talks to it: requests are verified with ACS3-HMAC-SHA256 or the legacy
HMAC-SHA1 query signature, responses have the wire shapes the SDK models parse, and the rules
the real API enforces (quotas, reserved addresses, ENI states, idempotency) answer with the real
error codes.  State comes from a world file (docs/emulator.md).  This module is a test double of
the outside world: it must never import the collection's own code.

CLI:  python3 tests/emulator/ecs_emulator.py --world FILE --listen 127.0.0.1:0
Library:  with EcsEmulator('inventories/lab/world.yml') as emu: ... emu.endpoint ...
"""

import argparse
import base64
import bisect
import copy
import datetime
import hashlib
import hmac
import ipaddress
import json
import random
import re
import sys
import threading
import time
import uuid
from collections import Counter, deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, quote, urlsplit

import yaml

try:  # NAT gateways, EIPs, SNAT and IPv6 bandwidth live in vpc_egress.py
    from . import vpc_egress
except ImportError:
    import vpc_egress  # run as a script, or with tests/emulator on sys.path

ECS_VERSION = '2014-05-26'
VPC_VERSION = '2016-04-28'
OWNER_ID = '1406926474060000'
CREATION_TIME = '2024-04-14T22:32Z'
MAX_SKEW_SECONDS = 900
AVAILABLE_ENI_MAX_IPV4 = 50      # an unattached ENI holds its primary + up to 49 secondaries
AVAILABLE_ENI_MAX_IPV6 = 10
ADMIN_PREFIX = '/_emulator/'
PAGING = frozenset(('MaxResults', 'NextToken', 'PageNumber', 'PageSize'))

# Parameters the legacy signature mode adds to every request; never part of an API's input.
LEGACY_COMMON = frozenset((
    'Action', 'Version', 'Format', 'Timestamp', 'SignatureNonce', 'SignatureMethod',
    'SignatureVersion', 'SignatureType', 'AccessKeyId', 'SecurityToken', 'Signature', 'on',
))

REGION_NAMES = {
    'cn-hangzhou': 'China (Hangzhou)', 'cn-shanghai': 'China (Shanghai)',
    'cn-beijing': 'China (Beijing)', 'cn-shenzhen': 'China (Shenzhen)',
    'cn-zhangjiakou': 'China (Zhangjiakou)', 'cn-hongkong': 'China (Hong Kong)',
    'ap-southeast-1': 'Singapore', 'us-west-1': 'US (Silicon Valley)',
    'eu-central-1': 'Germany (Frankfurt)',
}

# ENI quotas from Alibaba's instance-family tables: (vCPU, GiB, ENIs, IPv4 per ENI incl. primary).
# IPv6 per ENI is not in those tables; worlds should state it, the default equals IPv4.
KNOWN_TYPES = {
    'ecs.g7.large': (2, 8, 3, 6), 'ecs.g7.xlarge': (4, 16, 4, 15), 'ecs.g7.2xlarge': (8, 32, 4, 15),
    'ecs.g7.3xlarge': (12, 48, 8, 15), 'ecs.g7.4xlarge': (16, 64, 8, 30),
    'ecs.g7.8xlarge': (32, 128, 8, 30), 'ecs.g7.32xlarge': (128, 512, 15, 30),
    'ecs.c7.large': (2, 4, 3, 6), 'ecs.c7.xlarge': (4, 8, 4, 15), 'ecs.c7.4xlarge': (16, 32, 8, 30),
    'ecs.g6.large': (2, 8, 2, 6), 'ecs.g6.xlarge': (4, 16, 3, 10), 'ecs.g6.2xlarge': (8, 32, 4, 10),
    'ecs.g6.4xlarge': (16, 64, 8, 20), 'ecs.g7ne.large': (2, 8, 3, 10),
    'ecs.g7ne.24xlarge': (96, 384, 15, 50), 'ecs.t6-c1m1.large': (2, 2, 2, 2),
    'ecs.t6-c1m4.xlarge': (4, 16, 2, 6),
}
INSTANCE_STATES = ('Pending', 'Running', 'Starting', 'Stopping', 'Stopped')


class WorldError(ValueError):
    """The world file is inconsistent (message names the bad value)."""


class ApiError(Exception):
    """An API error answered as a JSON body with the real HTTP status."""

    def __init__(self, status, code, message, headers=None, injected=False):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}
        self.injected = injected          # answered by fault injection, not by a rule


def bad_param(name, value, expected):
    return ApiError(400, 'InvalidParameter', 'The specified parameter "%s" is not valid: %r, expected %s.' % (name, value, expected))


def missing(name):
    return ApiError(400, 'MissingParameter', 'The input parameter "%s" that is mandatory for processing this request is not supplied.' % name)


def not_found(code, what, value):
    return ApiError(404, code, 'The specified %s "%s" does not exist.' % (what, value))


# ----------------------------------------------------------------------------------------------
# World model

class InstanceType:
    __slots__ = ('id', 'cpu', 'memory', 'enis', 'ipv4', 'ipv6')

    def __init__(self, type_id, spec):
        known = KNOWN_TYPES.get(type_id, (None, None, None, None))
        spec = spec or {}
        self.id = type_id
        self.cpu = int(spec.get('cpu', known[0] or 2))
        self.memory = float(spec.get('memory', known[1] or 8))
        self.enis = spec.get('eni_quantity', known[2])
        self.ipv4 = spec.get('eni_private_ip_quantity', known[3])
        if self.enis is None or self.ipv4 is None:
            raise WorldError('instance type %s: eni_quantity and eni_private_ip_quantity are required for types the emulator does not know' % type_id)
        self.enis = int(self.enis)
        self.ipv4 = int(self.ipv4)
        self.ipv6 = int(spec.get('eni_ipv6_quantity', self.ipv4))

    def dump(self):
        return {'eni_quantity': self.enis, 'eni_private_ip_quantity': self.ipv4, 'eni_ipv6_quantity': self.ipv6,
                'cpu': self.cpu, 'memory': self.memory}


class VSwitch:
    """A vSwitch and the addresses in use inside it (as integers, for O(1) membership)."""

    __slots__ = ('id', 'name', 'region', 'vpc', 'zone', 'net', 'net6', 'used4', 'used6', 'seq', 'tags', 'description')

    def __init__(self, region, vpc, spec, seq):
        self.id = spec['id']
        self.name = spec.get('name', '')
        self.region = region
        self.vpc = vpc
        self.zone = spec.get('zone')
        if not self.zone:
            raise WorldError('vSwitch %s: zone is required' % self.id)
        try:
            self.net = ipaddress.IPv4Network(spec['cidr'])
        except (KeyError, ValueError) as exc:
            raise WorldError('vSwitch %s: cidr %r is not a canonical IPv4 CIDR (%s)' % (self.id, spec.get('cidr'), exc)) from None
        if not 16 <= self.net.prefixlen <= 29:
            raise WorldError('vSwitch %s: cidr %s must be /16 to /29' % (self.id, self.net))
        self.net6 = None
        if spec.get('ipv6_cidr'):
            try:
                self.net6 = ipaddress.IPv6Network(spec['ipv6_cidr'])
            except ValueError as exc:
                raise WorldError('vSwitch %s: ipv6_cidr %r is not a canonical IPv6 CIDR (%s)' % (self.id, spec['ipv6_cidr'], exc)) from None
            if self.net6.prefixlen != 64:
                raise WorldError('vSwitch %s: ipv6_cidr %s must be a /64' % (self.id, self.net6))
        self.used4 = set()
        self.used6 = set()
        self.seq = seq
        self.tags = dict(spec.get('tags') or {})
        self.description = spec.get('description', '')

    # First address and the last three (IPv4) / last nine (IPv6) are reserved.
    def usable4(self):
        first = int(self.net.network_address) + 1
        return first, int(self.net.broadcast_address) - 3

    def usable6(self):
        first = int(self.net6.network_address) + 1
        return first, int(self.net6.broadcast_address) - 9

    def available_count(self):
        low, high = self.usable4()
        return high - low + 1 - len(self.used4)

    def check_ip(self, text, family):
        """Parse and validate an address for this vSwitch; returns its integer value."""
        try:
            addr = ipaddress.ip_address(text)
        except ValueError:
            raise ApiError(403, 'InvalidIp.Address', 'The specified IP address "%s" is not a valid IPv%d address.' % (text, family)) from None
        if addr.version != family:
            raise ApiError(403, 'InvalidIp.Address', 'The specified IP address "%s" is not a valid IPv%d address.' % (text, family))
        value = int(addr)
        low, high = self.usable4() if family == 4 else self.usable6()
        if not low <= value <= high:
            cidr = self.net if family == 4 else self.net6
            raise ApiError(403, 'InvalidVSwitchId.IpInvalid',
                           'The specified IP address "%s" is not in the CIDR block %s of vSwitch %s or is reserved.' % (text, cidr, self.id))
        used = self.used4 if family == 4 else self.used6
        if value in used:
            raise ApiError(403, 'InvalidIp.IpAssigned', 'The specified IP address "%s" is already in use in vSwitch %s.' % (text, self.id))
        return value

    def lowest_free(self, count, family):
        """The `count` lowest free usable addresses, or IpNotEnough."""
        low, high = self.usable4() if family == 4 else self.usable6()
        used = self.used4 if family == 4 else self.used6
        found = []
        value = low
        while len(found) < count and value <= high:
            if value not in used:
                found.append(value)
            value += 1
        if len(found) < count:
            raise ApiError(403, 'InvalidVSwitchId.IpNotEnough', 'The specified VSwitch "%s" has not enough IpAddress.' % self.id)
        return [str(ipaddress.ip_address(v)) for v in found]

    def take(self, ips, family):
        used = self.used4 if family == 4 else self.used6
        used.update(int(ipaddress.ip_address(ip)) for ip in ips)

    def release(self, ips, family):
        used = self.used4 if family == 4 else self.used6
        used.difference_update(int(ipaddress.ip_address(ip)) for ip in ips)

    def dump(self):
        out = {'id': self.id, 'zone': self.zone, 'cidr': str(self.net), 'ipv6_cidr': str(self.net6) if self.net6 else None}
        if self.name:
            out['name'] = self.name
        if self.tags:
            out['tags'] = dict(self.tags)
        return out


class Eni:
    __slots__ = ('id', 'region', 'vswitch', 'mac', 'primary_ip', 'secondary_ips', 'ipv6_ips', 'instance',
                 'device_index', 'type', 'status', 'pending', 'name', 'description', 'tags',
                 'security_groups', 'seq')

    def ipv4_count(self):
        return 1 + len(self.secondary_ips)

    def dump(self):
        out = {'id': self.id, 'vswitch': self.vswitch.id, 'mac': self.mac, 'primary_ip': self.primary_ip,
               'secondary_ips': list(self.secondary_ips), 'ipv6_ips': list(self.ipv6_ips)}
        for key in ('name', 'description'):
            if getattr(self, key):
                out[key] = getattr(self, key)
        if self.tags:
            out['tags'] = dict(self.tags)
        out['security_groups'] = list(self.security_groups)
        if self.status not in ('InUse', 'Available'):
            out['status'] = self.status
        return out


class Instance:
    __slots__ = ('id', 'region', 'name', 'hostname', 'type', 'zone', 'status', 'tags', 'enis', 'vpc', 'seq',
                 'security_groups')

    def primary(self):
        return self.enis[0]

    def dump(self):
        return {'id': self.id, 'name': self.name, 'hostname': self.hostname, 'type': self.type.id,
                'zone': self.zone, 'status': self.status, 'tags': dict(self.tags),
                'security_groups': list(self.security_groups),
                'enis': [eni.dump() for eni in sorted(self.enis, key=lambda e: e.device_index)]}


class Region:
    def __init__(self, region_id, spec):
        self.id = region_id
        self.local_name = spec.get('local_name') or REGION_NAMES.get(region_id, region_id)
        self.types = {}
        self.vpcs = {}
        self.vswitches = {}          # id -> VSwitch, ordered by seq
        self.instances = []          # ordered by seq (instances are never created or deleted)
        self.instances_by_vpc = {}
        self.enis = []               # ordered by seq; creation appends, deletion removes


def _seq_key(obj):
    return obj.seq


def _stable_hex(*parts, length=17):
    digest = hashlib.sha256(':'.join(str(p) for p in parts).encode()).hexdigest()
    return ''.join('abcdefghijklmnopqrstuvwxyz0123456789'[int(digest[i:i + 2], 16) % 36] for i in range(0, length * 2, 2))


def region_prefix(region_id):
    """Resource-id prefix per region, as real ids look (bp1 for cn-hangzhou, 2ze for cn-beijing...)."""
    known = {'cn-hangzhou': 'bp1', 'cn-beijing': '2ze', 'cn-shanghai': 'uf6', 'cn-shenzhen': 'wz9',
             'cn-zhangjiakou': '8vb', 'cn-hongkong': 'j6c', 'ap-southeast-1': 't4n', 'us-west-1': 'rj9',
             'eu-central-1': 'gw8'}
    return known.get(region_id) or _stable_hex(region_id, length=3)


class World:
    """All emulated resources, with the indexes that keep each request O(page)."""

    def __init__(self, spec):
        if not isinstance(spec, dict):
            raise WorldError('world must be a mapping with credentials and regions')
        self.credentials = {}
        for cred in spec.get('credentials') or []:
            if not cred.get('id') or not cred.get('secret'):
                raise WorldError('every credentials entry needs id and secret')
            self.credentials[str(cred['id'])] = (str(cred['secret']), cred.get('security_token'))
        if not self.credentials:
            raise WorldError('world has no credentials')
        self.regions = {}
        self.vswitches = {}
        self.instances = {}
        self.enis = {}
        self.security_groups = {}    # id -> {'id', 'region', 'vpc', 'name', 'declared', 'seq'}
        self.macs = set()
        self.seq = 0
        self.mac_counter = 0
        self.id_counter = 0
        self.version = 0             # bumped by every mutation; keys cached counts
        regions = spec.get('regions') or {}
        if not isinstance(regions, dict) or not regions:
            raise WorldError('world needs at least one region under "regions"')
        pending = []
        for region_id, rspec in regions.items():
            pending.extend(self._load_region(str(region_id), rspec or {}))
        # Generated addresses are picked only after every explicit one is known.
        for eni, want_secondary, want_ipv6 in pending:
            if eni.primary_ip is None:
                eni.primary_ip = eni.vswitch.lowest_free(1, 4)[0]
                eni.vswitch.take([eni.primary_ip], 4)
            if want_secondary:
                eni.secondary_ips = eni.vswitch.lowest_free(want_secondary, 4)
                eni.vswitch.take(eni.secondary_ips, 4)
            if want_ipv6:
                if eni.vswitch.net6 is None:
                    raise WorldError('ENI %s: ipv6_count given but vSwitch %s has no ipv6_cidr' % (eni.id, eni.vswitch.id))
                eni.ipv6_ips = eni.vswitch.lowest_free(want_ipv6, 6)
                eni.vswitch.take(eni.ipv6_ips, 6)
            if eni.mac is None:
                eni.mac = self.new_mac()
        vpc_egress.load(self, regions)

    def next_seq(self):
        self.seq += 1
        return self.seq

    def new_mac(self):
        while True:
            self.mac_counter += 1
            value = self.mac_counter
            mac = '00:16:3e:%02x:%02x:%02x' % ((value >> 16) & 255, (value >> 8) & 255, value & 255)
            if mac not in self.macs:
                self.macs.add(mac)
                return mac

    def register_group(self, group_id, region_id, vpc_id, name='', declared=False):
        """Record a security group of ``vpc_id`` (declared in the world, or implied by a user of it)."""
        group_id = str(group_id)
        known = self.security_groups.get(group_id)
        if known is not None:
            if (known['region'], known['vpc']) != (region_id, vpc_id):
                raise WorldError('security group %s is used in %s/%s but belongs to %s/%s'
                                 % (group_id, region_id, vpc_id, known['region'], known['vpc']))
            known['declared'] = known['declared'] or declared
            known['name'] = known['name'] or name
            return
        self.security_groups[group_id] = {'id': group_id, 'region': region_id, 'vpc': vpc_id, 'name': name,
                                          'declared': declared, 'seq': self.next_seq()}

    def new_id(self, kind, region_id):
        self.id_counter += 1
        return '%s-%s%s' % (kind, region_prefix(region_id), _stable_hex(kind, region_id, self.id_counter))

    def _load_region(self, region_id, rspec):
        region = Region(region_id, rspec)
        self.regions[region_id] = region
        for type_id, tspec in (rspec.get('instance_types') or {}).items():
            region.types[type_id] = InstanceType(type_id, tspec)
        for vspec in rspec.get('vpcs') or []:
            vpc_id = vspec.get('id') or self.new_id('vpc', region_id)
            cidrs = [vspec.get('cidr', '172.16.0.0/12')] + list(vspec.get('secondary_cidrs') or [])
            try:
                nets = [ipaddress.IPv4Network(c) for c in cidrs]
            except ValueError as exc:
                raise WorldError('VPC %s: bad cidr (%s)' % (vpc_id, exc)) from None
            region.vpcs[vpc_id] = {'id': vpc_id, 'cidrs': nets, 'name': vspec.get('name', ''),
                                   'ipv6_cidr': vspec.get('ipv6_cidr')}
            region.instances_by_vpc[vpc_id] = []
            for group in vspec.get('security_groups') or []:
                group = group if isinstance(group, dict) else {'id': group}
                self.register_group(group.get('id'), region_id, vpc_id, group.get('name', ''), declared=True)
            for swspec in vspec.get('vswitches') or []:
                swspec = dict(swspec)
                swspec.setdefault('id', self.new_id('vsw', region_id))
                if swspec['id'] in self.vswitches:
                    raise WorldError('vSwitch id %s is used twice' % swspec['id'])
                vsw = VSwitch(region_id, vpc_id, swspec, self.next_seq())
                if not any(vsw.net.subnet_of(n) for n in nets):
                    raise WorldError('vSwitch %s: cidr %s is outside VPC %s (%s)' % (vsw.id, vsw.net, vpc_id, ', '.join(map(str, nets))))
                region.vswitches[vsw.id] = vsw
                self.vswitches[vsw.id] = vsw
        pending = []
        for ispec in rspec.get('instances') or []:
            pending.extend(self._load_instance(region, ispec))
        for espec in rspec.get('enis') or []:
            eni, wants = self._load_eni(region, espec, None, 0)
            pending.append((eni, *wants))
        return pending

    def _load_instance(self, region, ispec):
        inst = Instance()
        inst.id = ispec.get('id') or self.new_id('i', region.id)
        if inst.id in self.instances:
            raise WorldError('instance id %s is used twice' % inst.id)
        inst.region = region.id
        inst.name = ispec.get('name') or inst.id
        inst.hostname = ispec.get('hostname') or inst.name
        type_id = ispec.get('type')
        if type_id not in region.types:
            if type_id in KNOWN_TYPES:
                region.types[type_id] = InstanceType(type_id, {})
            else:
                raise WorldError('instance %s: type %r is not listed in instance_types of %s' % (inst.id, type_id, region.id))
        inst.type = region.types[type_id]
        inst.status = ispec.get('status', 'Running')
        if inst.status not in INSTANCE_STATES:
            raise WorldError('instance %s: status %r is not one of %s' % (inst.id, inst.status, ', '.join(INSTANCE_STATES)))
        inst.tags = {str(k): str(v) for k, v in (ispec.get('tags') or {}).items()}
        inst.security_groups = list(ispec.get('security_groups') or ['sg-%s%s' % (region_prefix(region.id), 'default')])
        inst.seq = self.next_seq()
        inst.enis = []
        especs = ispec.get('enis') or []
        if not especs:
            raise WorldError('instance %s: needs at least one ENI (the first is the primary ENI)' % inst.id)
        if len(especs) > inst.type.enis:
            raise WorldError('instance %s: %d ENIs exceed %s quota of %d' % (inst.id, len(especs), type_id, inst.type.enis))
        pending = []
        for index, espec in enumerate(especs):
            eni, wants = self._load_eni(region, espec, inst, index)
            inst.enis.append(eni)
            pending.append((eni, *wants))
        primary_vsw = inst.enis[0].vswitch
        inst.zone = ispec.get('zone') or primary_vsw.zone
        inst.vpc = primary_vsw.vpc
        for group in inst.security_groups:
            self.register_group(group, region.id, inst.vpc)
        for eni in inst.enis:
            if eni.vswitch.zone != inst.zone or eni.vswitch.vpc != inst.vpc:
                raise WorldError('instance %s: ENI %s is in vSwitch %s (%s, %s), not in the instance zone %s / VPC %s'
                                 % (inst.id, eni.id, eni.vswitch.id, eni.vswitch.zone, eni.vswitch.vpc, inst.zone, inst.vpc))
        region.instances.append(inst)
        region.instances_by_vpc[inst.vpc].append(inst)
        self.instances[inst.id] = inst
        return pending

    def _load_eni(self, region, espec, inst, index):
        eni = Eni()
        eni.id = espec.get('id') or self.new_id('eni', region.id)
        if eni.id in self.enis:
            raise WorldError('ENI id %s is used twice' % eni.id)
        vsw = self.vswitches.get(espec.get('vswitch'))
        if vsw is None or vsw.region != region.id:
            raise WorldError('ENI %s: vswitch %r is not a vSwitch of region %s' % (eni.id, espec.get('vswitch'), region.id))
        eni.region = region.id
        eni.vswitch = vsw
        eni.instance = inst
        eni.device_index = index if inst else None
        eni.type = 'Primary' if inst and index == 0 else 'Secondary'
        eni.status = espec.get('status') or ('InUse' if inst else 'Available')
        if eni.status not in ('InUse', 'Available') + tuple(IN_BETWEEN):
            raise WorldError('ENI %s: status %r is not one of InUse, Available, Attaching, Detaching' % (eni.id, eni.status))
        if eni.status in IN_BETWEEN and (inst is None or index == 0):
            raise WorldError('ENI %s: status %s needs a secondary ENI of an instance' % (eni.id, eni.status))
        eni.pending = None
        eni.name = espec.get('name', '')
        eni.description = espec.get('description', '')
        eni.tags = {str(k): str(v) for k, v in (espec.get('tags') or {}).items()}
        eni.security_groups = list(espec.get('security_groups') or (inst.security_groups if inst else ['sg-%sdefault' % region_prefix(region.id)]))
        eni.seq = self.next_seq()
        for group in eni.security_groups:
            self.register_group(group, region.id, vsw.vpc)
        eni.mac = espec.get('mac')
        if eni.mac is not None:
            eni.mac = str(eni.mac).lower()
            if not re.match(r'^([0-9a-f]{2}:){5}[0-9a-f]{2}$', eni.mac) or eni.mac in self.macs:
                raise WorldError('ENI %s: mac %r is malformed or used twice' % (eni.id, espec.get('mac')))
            self.macs.add(eni.mac)

        def explicit(value, family):
            try:
                vsw.check_ip(str(value), family)
            except ApiError as exc:
                raise WorldError('ENI %s: %s' % (eni.id, exc.message)) from None
            vsw.take([str(value)], family)
            return str(ipaddress.ip_address(str(value)))

        eni.primary_ip = explicit(espec['primary_ip'], 4) if espec.get('primary_ip') else None
        eni.secondary_ips = sorted((explicit(ip, 4) for ip in espec.get('secondary_ips') or []), key=ipaddress.ip_address)
        if espec.get('ipv6_ips') and vsw.net6 is None:
            raise WorldError('ENI %s: ipv6_ips given but vSwitch %s has no ipv6_cidr' % (eni.id, vsw.id))
        eni.ipv6_ips = sorted((explicit(ip, 6) for ip in espec.get('ipv6_ips') or []), key=ipaddress.ip_address)
        self.enis[eni.id] = eni
        region.enis.append(eni)
        limit4 = inst.type.ipv4 if inst else AVAILABLE_ENI_MAX_IPV4
        want_secondary = int(espec.get('secondary_ip_count') or 0)
        if 1 + len(eni.secondary_ips) + want_secondary > limit4:
            raise WorldError('ENI %s: %d IPv4 addresses exceed the per-ENI quota of %d' % (eni.id, 1 + len(eni.secondary_ips) + want_secondary, limit4))
        return eni, (want_secondary, int(espec.get('ipv6_count') or 0))

    def dump(self):
        out = {'credentials': [dict({'id': k, 'secret': v[0]}, **({'security_token': v[1]} if v[1] else {}))
                               for k, v in self.credentials.items()],
               'regions': {}}
        for region in self.regions.values():
            vpcs = []
            for vpc in region.vpcs.values():
                entry = {'id': vpc['id'], 'cidr': str(vpc['cidrs'][0])}
                if len(vpc['cidrs']) > 1:
                    entry['secondary_cidrs'] = [str(n) for n in vpc['cidrs'][1:]]
                if vpc['ipv6_cidr']:
                    entry['ipv6_cidr'] = vpc['ipv6_cidr']
                entry['vswitches'] = [v.dump() for v in region.vswitches.values() if v.vpc == vpc['id']]
                declared = [g['id'] for g in self.security_groups.values() if g['vpc'] == vpc['id'] and g['declared']]
                if declared:
                    entry['security_groups'] = declared
                vpcs.append(entry)
            out['regions'][region.id] = {
                'local_name': region.local_name,
                'instance_types': {t.id: t.dump() for t in region.types.values()},
                'vpcs': vpcs,
                'instances': [i.dump() for i in region.instances],
                'enis': [e.dump() for e in region.enis if e.instance is None],
            }
        vpc_egress.dump(self, out)
        return out


def load_world(source):
    """A World from a dict, a YAML/JSON file path, or an existing World."""
    if isinstance(source, World):
        return source
    if isinstance(source, dict):
        return World(copy.deepcopy(source))
    with open(source, encoding='utf-8') as handle:
        if str(source).endswith('.json'):
            return World(json.load(handle))
        # libyaml's loader when present: big generated worlds load several times faster.
        return World(yaml.load(handle, Loader=getattr(yaml, 'CSafeLoader', yaml.SafeLoader)))


# ----------------------------------------------------------------------------------------------
# Request parameters

class Params:
    """The flat RPC parameters of one request, with the typed readers the actions need."""

    def __init__(self, raw):
        self.raw = raw

    def get(self, name, default=None):
        value = self.raw.get(name)
        return default if value in (None, '') else value

    def require(self, name):
        value = self.get(name)
        if value is None:
            raise missing(name)
        return value

    def integer(self, name, default, low, high, clamp_low=None, clamp_high=None):
        """Integer in [low, high]; values below clamp_low become clamp_low (the API's "<10 means 10")."""
        value = self.get(name)
        if value is None:
            return default
        try:
            number = int(value)
        except ValueError:
            raise bad_param(name, value, 'an integer from %d to %d' % (low, high)) from None
        if clamp_low is not None and low <= number < clamp_low:
            return clamp_low
        if clamp_high is not None and number > clamp_high:
            return clamp_high
        if not low <= number <= high:
            raise bad_param(name, value, 'an integer from %d to %d' % (low, high))
        return number

    def boolean(self, name):
        value = self.get(name)
        if value is None:
            return None
        if value.lower() not in ('true', 'false'):
            raise bad_param(name, value, 'true or false')
        return value.lower() == 'true'

    def listed(self, prefix, limit=None):
        """Values of prefix.1 .. prefix.N, ordered by N."""
        found = []
        pattern = re.compile(re.escape(prefix) + r'\.(\d+)$')
        for key, value in self.raw.items():
            match = pattern.match(key)
            if match and value != '':
                found.append((int(match.group(1)), value))
        found.sort()
        if limit is not None and len(found) > limit:
            raise bad_param(prefix + '.N', len(found), 'at most %d values' % limit)
        return [pair[1] for pair in found]

    def tags(self):
        """[(key, value or None)] from Tag.N.Key / Tag.N.Value."""
        tags = {}
        for key, value in self.raw.items():
            match = re.match(r'^Tag\.(\d+)\.(Key|Value)$', key)
            if match:
                tags.setdefault(int(match.group(1)), {})[match.group(2)] = value
        if len(tags) > 20:
            raise bad_param('Tag.N', len(tags), 'at most 20 tags')
        out = []
        for index in sorted(tags):
            entry = tags[index]
            if not entry.get('Key'):
                raise missing('Tag.%d.Key' % index)
            out.append((entry['Key'], entry.get('Value')))
        return out

    def json_list(self, name, limit):
        value = self.get(name)
        if value is None:
            return None
        try:
            items = json.loads(value)
        except ValueError:
            items = None
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            raise bad_param(name, value, 'a JSON array of strings')
        if len(items) > limit:
            raise bad_param(name, '%d values' % len(items), 'at most %d values' % limit)
        return items

    def fingerprint(self, paging=True):
        """Every API parameter except the ClientToken (and, with paging=False, the paging ones):
        what must match for a ClientToken replay, or a key for the filters of a listing."""
        skip = LEGACY_COMMON | {'ClientToken'} | (set() if paging else PAGING)
        return json.dumps(sorted((k, v) for k, v in self.raw.items() if k not in skip))


def tags_match(tags, wanted):
    for key, value in wanted:
        if key not in tags or (value is not None and tags[key] != value):
            return False
    return True


def wildcard(pattern):
    return re.compile('^' + '.*'.join(re.escape(part) for part in pattern.split('*')) + '$')


def encode_token(kind, seq):
    return base64.urlsafe_b64encode(('%s:%d' % (kind, seq)).encode()).decode().rstrip('=')


def decode_token(kind, token):
    try:
        text = base64.urlsafe_b64decode(token + '=' * (-len(token) % 4)).decode()
        got_kind, seq = text.split(':')
        if got_kind == kind:
            return int(seq)
    except (ValueError, UnicodeDecodeError):
        pass
    raise bad_param('NextToken', token, 'a NextToken returned by a previous %s call' % kind)


def scan(items, pred, start_seq=0, limit=10, skip=0):
    """Up to `limit` items matching pred, starting at seq `start_seq` after skipping `skip`
    matches; returns (page, seq of the next match or None).  `items` is sorted by seq."""
    index = bisect.bisect_left(items, start_seq, key=_seq_key) if start_seq else 0
    page = []
    for pos in range(index, len(items)):
        obj = items[pos]
        if pred is not None and not pred(obj):
            continue
        if skip:
            skip -= 1
            continue
        if len(page) == limit:
            return page, obj.seq
        page.append(obj)
    return page, None


def ip_key(text):
    return ipaddress.ip_address(text)


def norm_ip(text):
    """Canonical text of an address (compressed IPv6), or the input when it is not one."""
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return text


def tag_list(tags, vpc_style=False):
    if vpc_style:
        return {'Tag': [{'Key': k, 'Value': v} for k, v in tags.items()]}
    return {'Tag': [{'TagKey': k, 'TagValue': v} for k, v in tags.items()]}


# ----------------------------------------------------------------------------------------------
# Actions

# Timing knobs of the API model (EcsEmulator.configure passes them to Api.configure).
API_SETTINGS = ('attach_steps', 'attach_seconds', 'token_window')
# An ENI in one of these states settles into the other after attach_steps/attach_seconds.
IN_BETWEEN = {'Attaching': 'InUse', 'Detaching': 'Available'}


class Api:
    """The ECS and VPC actions over one World.  Callers hold `lock` around `call`.

    attach_steps / attach_seconds: an ENI stays Attaching/Detaching for at least that many
    DescribeNetworkInterfaces answers showing it AND that many seconds. token_window: seconds a
    ClientToken is remembered (None = forever; Alibaba documents no window, see docs/emulator.md).
    """

    def __init__(self, world, attach_steps=1, attach_seconds=0.0, token_window=None):
        self.world = world
        self.attach_steps = attach_steps
        self.attach_seconds = attach_seconds
        self.token_window = token_window
        self.lock = threading.RLock()
        self.tokens = {}             # (action, ClientToken) -> (fingerprint, response, monotonic time)
        self.counts = {}             # (filter key) -> (world version, count)
        types = {}
        for region in world.regions.values():
            for type_id, itype in region.types.items():
                types.setdefault(type_id, itype)
        self.type_list = [types[k] for k in sorted(types)]
        self.actions = {
            (ECS_VERSION, 'DescribeRegions'): self.describe_regions,
            (VPC_VERSION, 'DescribeRegions'): self.describe_regions_vpc,
            (ECS_VERSION, 'DescribeInstances'): self.describe_instances,
            (ECS_VERSION, 'DescribeNetworkInterfaces'): self.describe_network_interfaces,
            (ECS_VERSION, 'DescribeInstanceTypes'): self.describe_instance_types,
            (ECS_VERSION, 'DescribeVSwitches'): self.describe_vswitches_ecs,
            (ECS_VERSION, 'DescribeSecurityGroups'): self.describe_security_groups,
            (VPC_VERSION, 'DescribeVSwitches'): self.describe_vswitches,
            (VPC_VERSION, 'DescribeVSwitchAttributes'): self.describe_vswitch_attributes,
            (ECS_VERSION, 'AssignPrivateIpAddresses'): self.assign_private_ips,
            (ECS_VERSION, 'UnassignPrivateIpAddresses'): self.unassign_private_ips,
            (ECS_VERSION, 'AssignIpv6Addresses'): self.assign_ipv6,
            (ECS_VERSION, 'UnassignIpv6Addresses'): self.unassign_ipv6,
            (ECS_VERSION, 'CreateNetworkInterface'): self.create_eni,
            (ECS_VERSION, 'AttachNetworkInterface'): self.attach_eni,
            (ECS_VERSION, 'DetachNetworkInterface'): self.detach_eni,
            (ECS_VERSION, 'DeleteNetworkInterface'): self.delete_eni,
        }
        self.idempotent = {'AssignPrivateIpAddresses', 'AssignIpv6Addresses', 'CreateNetworkInterface'}
        vpc_egress.install(self)
        for eni in world.enis.values():
            if eni.status in IN_BETWEEN:
                self.start_transition(eni, eni.status)

    def configure(self, settings):
        """Set any of API_SETTINGS; ENIs already in transition keep their schedule."""
        if 'attach_steps' in settings:
            self.attach_steps = max(0, int(settings['attach_steps']))
        if 'attach_seconds' in settings:
            self.attach_seconds = max(0.0, float(settings['attach_seconds'] or 0))
        if 'token_window' in settings:
            window = settings['token_window']
            self.token_window = None if window is None else float(window)

    def lookup(self, version, action):
        handler = self.actions.get((version, action))
        if handler is None:
            if version not in (ECS_VERSION, VPC_VERSION):
                raise ApiError(400, 'InvalidVersion', 'Specified parameter Version "%s" is not valid.' % version)
            raise ApiError(404, 'InvalidAction.NotFound', 'Specified api "%s" is not found for version %s.' % (action, version))
        return handler

    def call(self, action, handler, params):
        token = params.get('ClientToken') if action in self.idempotent else None
        if token is not None:
            if len(token) > 64 or not token.isascii():
                raise bad_param('ClientToken', token, 'at most 64 ASCII characters')
            stored = self.tokens.get((action, token))
            if stored is not None and self.token_window is not None and time.monotonic() - stored[2] > self.token_window:
                stored = None         # outside the replay window: a new request
            if stored is not None:
                if stored[0] != params.fingerprint():
                    raise ApiError(400, 'IdempotentParameterMismatch',
                                   'The request uses the same ClientToken "%s" as a previous, but non-identical request.' % token)
                return copy.deepcopy(stored[1])
        result = handler(params)
        if token is not None:
            self.tokens[(action, token)] = (params.fingerprint(), copy.deepcopy(result), time.monotonic())
        return result

    # -- lookups ---------------------------------------------------------------------------

    def region(self, params):
        region_id = params.require('RegionId')
        region = self.world.regions.get(region_id)
        if region is None:
            raise not_found('InvalidRegionId.NotFound', 'RegionId', region_id)
        return region

    def eni(self, region, params):
        eni_id = params.require('NetworkInterfaceId')
        eni = self.world.enis.get(eni_id)
        if eni is None or eni.region != region.id:
            raise not_found('InvalidEniId.NotFound', 'NetworkInterfaceId', eni_id)
        return eni

    def instance(self, region, params):
        instance_id = params.require('InstanceId')
        inst = self.world.instances.get(instance_id)
        if inst is None or inst.region != region.id:
            raise not_found('InvalidInstanceId.NotFound', 'InstanceId', instance_id)
        return inst

    def count(self, key, items, pred):
        if pred is None:
            return len(items)
        cached = self.counts.get(key)
        if cached and cached[0] == self.world.version:
            return cached[1]
        total = sum(1 for obj in items if pred(obj))
        self.counts[key] = (self.world.version, total)
        return total

    def mutated(self):
        self.world.version += 1

    # -- describe --------------------------------------------------------------------------

    def describe_regions(self, params, product='ecs'):
        del params
        return {'Regions': {'Region': [
            {'RegionId': r.id, 'LocalName': r.local_name, 'Status': 'available',
             'RegionEndpoint': '%s.%s.aliyuncs.com' % (product, r.id)}
            for r in self.world.regions.values()]}}

    def describe_regions_vpc(self, params):
        return self.describe_regions(params, product='vpc')

    @staticmethod
    def instance_filter(params):
        checks = []
        for name, attr in (('ZoneId', 'zone'), ('Status', 'status'), ('InstanceType', 'type')):
            value = params.get(name)
            if value is not None:
                checks.append(lambda i, a=attr, v=value: (getattr(i, a).id if a == 'type' else getattr(i, a)) == v)
        vswitch = params.get('VSwitchId')
        if vswitch is not None:
            checks.append(lambda i: i.enis[0].vswitch.id == vswitch)
        name = params.get('InstanceName')
        if name is not None:
            regex = wildcard(name)
            checks.append(lambda i: regex.match(i.name) is not None)
        tags = params.tags()
        if tags:
            checks.append(lambda i: tags_match(i.tags, tags))
        ips = params.json_list('PrivateIpAddresses', 100)
        if ips is not None:
            wanted = set(ips)
            checks.append(lambda i: i.enis[0].primary_ip in wanted)
        family = params.get('InstanceTypeFamily')
        if family is not None:
            checks.append(lambda i: i.type.id.rsplit('.', 1)[0] == family)
        if not checks:
            return None
        return lambda i: all(check(i) for check in checks)

    def describe_instances(self, params):
        region = self.region(params)
        ids = params.json_list('InstanceIds', 100)
        vpc = params.get('VpcId')
        if ids is not None:
            found = {self.world.instances.get(i) for i in ids}
            items = sorted((i for i in found if i is not None and i.region == region.id), key=_seq_key)
        elif vpc is not None:
            items = region.instances_by_vpc.get(vpc, [])
        else:
            items = region.instances
        pred = self.instance_filter(params)
        if vpc is not None and ids is not None:
            base = pred
            pred = (lambda i: i.vpc == vpc and base(i)) if base else (lambda i: i.vpc == vpc)
        page_size, start, skip, page_number = self.paging(params, 'DescribeInstances', 100, 100, clamp_low=10)
        page, next_seq = scan(items, pred, start, page_size, skip)
        full = 'NETWORK_PRIMARY_ENI_IP' in params.listed('AdditionalAttributes')
        key = ('DescribeInstances', region.id, params.fingerprint(paging=False))
        return {'TotalCount': self.count(key, items, pred), 'PageNumber': page_number or 1, 'PageSize': page_size,
                'NextToken': encode_token('DescribeInstances', next_seq) if next_seq and page_number is None else '',
                'Instances': {'Instance': [self.instance_json(i, full) for i in page]}}

    @staticmethod
    def paging(params, kind, max_results, max_page_size, clamp_low=None, clamp_high=None):
        """(page size, start seq, matches to skip, PageNumber or None for token paging)."""
        if params.get('MaxResults') is not None or params.get('NextToken') is not None or \
                (params.get('PageNumber') is None and params.get('PageSize') is None):
            size = params.integer('MaxResults', 10, 1, max_results, clamp_low=clamp_low, clamp_high=clamp_high)
            token = params.get('NextToken')
            return size, decode_token(kind, token) if token else 0, 0, None
        size = params.integer('PageSize', 10, 1, max_page_size)
        number = params.integer('PageNumber', 1, 1, 10 ** 9)
        return size, 0, (number - 1) * size, number

    @staticmethod
    def instance_json(inst, full):
        itype = inst.type
        primary = inst.enis[0]
        enis = []
        for eni in sorted(inst.enis, key=lambda e: e.device_index):
            ips = [{'PrivateIpAddress': eni.primary_ip, 'Primary': True}]
            if full or eni.type == 'Secondary':
                ips += [{'PrivateIpAddress': ip, 'Primary': False} for ip in eni.secondary_ips]
            entry = {'NetworkInterfaceId': eni.id, 'Type': eni.type, 'MacAddress': eni.mac,
                     'PrimaryIpAddress': eni.primary_ip, 'PrivateIpSets': {'PrivateIpSet': ips}}
            if full:
                entry['Ipv6Sets'] = {'Ipv6Set': [{'Ipv6Address': ip} for ip in eni.ipv6_ips]}
                entry['Ipv4PrefixSets'] = {'Ipv4PrefixSet': []}
                entry['Ipv6PrefixSets'] = {'Ipv6PrefixSet': []}
            enis.append(entry)
        return {
            'InstanceId': inst.id, 'InstanceName': inst.name, 'HostName': inst.hostname, 'Description': '',
            'RegionId': inst.region, 'ZoneId': inst.zone, 'Status': inst.status, 'InstanceType': itype.id,
            'InstanceTypeFamily': itype.id.rsplit('.', 1)[0], 'Cpu': itype.cpu, 'Memory': int(itype.memory * 1024),
            'OSType': 'linux', 'OSName': 'Alibaba Cloud Linux 3.2104 LTS 64 bit', 'ImageId': 'aliyun_3_x64_20G_alibase_20240819.vhd',
            'InstanceNetworkType': 'vpc', 'CreationTime': CREATION_TIME, 'StartTime': CREATION_TIME,
            'ExpiredTime': '2099-12-31T15:59Z', 'InstanceChargeType': 'PostPaid', 'InternetChargeType': 'PayByTraffic',
            'InternetMaxBandwidthOut': 0, 'InternetMaxBandwidthIn': -1, 'DeletionProtection': False,
            'SerialNumber': str(uuid.UUID(hashlib.md5(inst.id.encode()).hexdigest())), 'ResourceGroupId': '', 'KeyPairName': '',
            'VpcAttributes': {'VpcId': inst.vpc, 'VSwitchId': primary.vswitch.id, 'NatIpAddress': '',
                              'PrivateIpAddress': {'IpAddress': [primary.primary_ip]}},
            'PublicIpAddress': {'IpAddress': []}, 'InnerIpAddress': {'IpAddress': []},
            'EipAddress': {'AllocationId': '', 'IpAddress': '', 'Bandwidth': 0, 'InternetChargeType': ''},
            'SecurityGroupIds': {'SecurityGroupId': list(inst.security_groups)},
            'NetworkInterfaces': {'NetworkInterface': enis},
            'Tags': tag_list(inst.tags),
        }

    @staticmethod
    def eni_filter(params, region):
        checks = [lambda e: e.region == region.id]
        for name, getter in (('VpcId', lambda e: e.vswitch.vpc), ('VSwitchId', lambda e: e.vswitch.id),
                             ('Type', lambda e: e.type), ('Status', lambda e: e.status),
                             ('PrimaryIpAddress', lambda e: e.primary_ip), ('NetworkInterfaceName', lambda e: e.name),
                             ('InstanceId', lambda e: e.instance.id if e.instance else '')):
            value = params.get(name)
            if value is not None:
                checks.append(lambda e, g=getter, v=value: g(e) == v)
        private = set(params.listed('PrivateIpAddress', 100))
        if private:
            checks.append(lambda e: e.primary_ip in private or not private.isdisjoint(e.secondary_ips))
        ipv6 = {norm_ip(ip) for ip in params.listed('Ipv6Address', 100)}
        if ipv6:
            checks.append(lambda e: not ipv6.isdisjoint(e.ipv6_ips))
        group = params.get('SecurityGroupId')
        if group is not None:
            checks.append(lambda e: group in e.security_groups)
        tags = params.tags()
        if tags:
            checks.append(lambda e: tags_match(e.tags, tags))
        return lambda e: all(check(e) for check in checks)

    def describe_network_interfaces(self, params):
        region = self.region(params)
        ids = params.listed('NetworkInterfaceId', 100)
        instance_id = params.get('InstanceId')
        if ids:
            items = sorted({self.world.enis[i] for i in ids if i in self.world.enis}, key=_seq_key)
        elif instance_id is not None:
            inst = self.world.instances.get(instance_id)
            items = sorted(inst.enis, key=_seq_key) if inst else []
        else:
            items = region.enis
        pred = self.eni_filter(params, region)
        page_size, start, skip, page_number = self.paging(params, 'DescribeNetworkInterfaces', 500, 1000,
                                                          clamp_low=10, clamp_high=500)
        page, next_seq = scan(items, pred, start, page_size, skip)
        self.advance(page, shown=False)
        body = {'TotalCount': self.count(('DescribeNetworkInterfaces', region.id, params.fingerprint(paging=False)), items, pred),
                'PageNumber': page_number or 1, 'PageSize': page_size,
                'NextToken': encode_token('DescribeNetworkInterfaces', next_seq) if next_seq and page_number is None else '',
                'NetworkInterfaceSets': {'NetworkInterfaceSet': [self.eni_json(e) for e in page]}}
        self.advance(page)
        return body

    def start_transition(self, eni, status):
        """Put ``eni`` into Attaching/Detaching; it settles per attach_steps and attach_seconds."""
        eni.status = status
        eni.pending = (IN_BETWEEN[status], self.attach_steps, time.monotonic() + self.attach_seconds)
        if not self.attach_steps and not self.attach_seconds:
            self.settle(eni, IN_BETWEEN[status])

    def advance(self, enis, shown=True):
        """Asynchronous attach/detach: each describe that shows the ENI moves it one step on; it
        settles once no step is left and attach_seconds have passed. With ``shown=False`` (before
        answering) only ENIs already due settle."""
        now = time.monotonic()
        for eni in enis:
            if eni.pending is None:
                continue
            final, remaining, not_before = eni.pending
            remaining = max(remaining - 1, 0) if shown else remaining
            if remaining == 0 and now >= not_before:
                self.settle(eni, final)
            else:
                eni.pending = (final, remaining, not_before)

    def settle(self, eni, final):
        eni.pending = None
        eni.status = final
        if final == 'Available' and eni.instance is not None:
            eni.instance.enis.remove(eni)
            eni.instance = None
            eni.device_index = None
        self.mutated()

    @staticmethod
    def eni_json(eni, with_attachment=True):
        ips = [{'PrivateIpAddress': eni.primary_ip, 'Primary': True, 'AssociatedPublicIp': {}}]
        ips += [{'PrivateIpAddress': ip, 'Primary': False, 'AssociatedPublicIp': {}} for ip in eni.secondary_ips]
        out = {
            'NetworkInterfaceId': eni.id, 'NetworkInterfaceName': eni.name, 'Description': eni.description,
            'Type': eni.type, 'Status': eni.status, 'InstanceId': eni.instance.id if eni.instance else '',
            'VpcId': eni.vswitch.vpc, 'VSwitchId': eni.vswitch.id, 'ZoneId': eni.vswitch.zone,
            'MacAddress': eni.mac, 'PrivateIpAddress': eni.primary_ip,
            'PrivateIpSets': {'PrivateIpSet': ips},
            'Ipv6Sets': {'Ipv6Set': [{'Ipv6Address': ip} for ip in eni.ipv6_ips]},
            'Ipv4PrefixSets': {'Ipv4PrefixSet': []}, 'Ipv6PrefixSets': {'Ipv6PrefixSet': []},
            'SecurityGroupIds': {'SecurityGroupId': list(eni.security_groups)},
            'Tags': tag_list(eni.tags), 'CreationTime': '2024-04-14T22:32:00Z', 'OwnerId': OWNER_ID,
            'ResourceGroupId': '', 'ServiceManaged': False, 'DeleteOnRelease': eni.type == 'Primary',
            'SourceDestCheck': False, 'QueueNumber': 2, 'NetworkInterfaceTrafficMode': 'Standard',
        }
        if with_attachment and eni.instance is not None:
            out['Attachment'] = {'InstanceId': eni.instance.id, 'DeviceIndex': eni.device_index, 'NetworkCardIndex': 0}
        return out

    def describe_instance_types(self, params):
        wanted = params.listed('InstanceTypes', 10)
        family = params.get('InstanceTypeFamily')
        size = params.integer('MaxResults', 100, 1, 1600, clamp_high=100)
        token = params.get('NextToken')
        start = decode_token('DescribeInstanceTypes', token) if token else 0
        families = set(params.listed('InstanceTypeFamilies', 10)) | ({family} if family else set())
        minimum = [(params.integer(name, 0, 0, 10 ** 6), attr) for name, attr in
                   (('MinimumEniQuantity', 'enis'), ('MinimumEniPrivateIpAddressQuantity', 'ipv4'),
                    ('MinimumEniIpv6AddressQuantity', 'ipv6'), ('MinimumCpuCoreCount', 'cpu'))]
        matches = [t for t in self.type_list
                   if (not wanted or t.id in wanted) and (not families or t.id.rsplit('.', 1)[0] in families)
                   and all(getattr(t, attr) >= low for low, attr in minimum)]
        page = matches[start:start + size]
        more = start + size < len(matches)
        return {'NextToken': encode_token('DescribeInstanceTypes', start + size) if more else '',
                'InstanceTypes': {'InstanceType': [self.type_json(t) for t in page]}}

    @staticmethod
    def type_json(itype):
        return {'InstanceTypeId': itype.id, 'InstanceTypeFamily': itype.id.rsplit('.', 1)[0],
                'InstanceCategory': 'General-purpose', 'CpuCoreCount': itype.cpu, 'MemorySize': itype.memory,
                'EniQuantity': itype.enis, 'EniPrivateIpAddressQuantity': itype.ipv4,
                'EniIpv6AddressQuantity': itype.ipv6, 'EniTotalQuantity': itype.enis, 'EniTrunkSupported': True,
                'NetworkCardQuantity': 1, 'NetworkCards': {'NetworkCardInfo': [{'NetworkCardIndex': 0}]},
                'PrimaryEniQueueNumber': 2, 'SecondaryEniQueueNumber': 2, 'MaximumQueueNumberPerEni': 2,
                'CpuArchitecture': 'X86', 'InstanceBandwidthRx': 1024000, 'InstanceBandwidthTx': 1024000}

    def vswitch_page(self, params, max_page_size):
        region = self.region(params)
        filters = []
        for name, getter in (('VpcId', lambda v: v.vpc), ('VSwitchId', lambda v: v.id),
                             ('ZoneId', lambda v: v.zone), ('VSwitchName', lambda v: v.name)):
            value = params.get(name)
            if value is not None:
                filters.append(lambda v, g=getter, x=value: g(v) == x)
        ipv6 = params.boolean('EnableIpv6')
        if ipv6 is not None:
            filters.append(lambda v: (v.net6 is not None) == ipv6)
        tags = params.tags()
        if tags:
            filters.append(lambda v: tags_match(v.tags, tags))
        size = params.integer('PageSize', 10, 1, max_page_size)
        number = params.integer('PageNumber', 1, 1, 10 ** 9)
        matches = [v for v in region.vswitches.values() if all(f(v) for f in filters)]
        page = matches[(number - 1) * size:number * size]
        return {'TotalCount': len(matches), 'PageNumber': number, 'PageSize': size}, page

    def describe_vswitches(self, params):
        body, page = self.vswitch_page(params, 50)
        body['VSwitches'] = {'VSwitch': [self.vswitch_json(v) for v in page]}
        return body

    def describe_vswitches_ecs(self, params):
        body, page = self.vswitch_page(params, 50)
        keys = ('VSwitchId', 'VSwitchName', 'VpcId', 'ZoneId', 'CidrBlock', 'AvailableIpAddressCount', 'Status',
                'IsDefault', 'CreationTime', 'Description', 'ResourceGroupId')
        body['VSwitches'] = {'VSwitch': [{k: self.vswitch_json(v)[k] for k in keys} for v in page]}
        return body

    def describe_vswitch_attributes(self, params):
        region = self.region(params)
        vsw_id = params.require('VSwitchId')
        vsw = region.vswitches.get(vsw_id)
        if vsw is None:
            raise not_found('InvalidVSwitchId.NotFound', 'VSwitchId', vsw_id)
        return self.vswitch_json(vsw)

    def describe_security_groups(self, params):
        region = self.region(params)
        ids = params.json_list('SecurityGroupIds', 100)
        vpc = params.get('VpcId')
        single = params.get('SecurityGroupId')
        matches = [g for g in sorted(self.world.security_groups.values(), key=lambda g: g['seq'])
                   if g['region'] == region.id and (ids is None or g['id'] in ids)
                   and (vpc is None or g['vpc'] == vpc) and (single is None or g['id'] == single)]
        size = params.integer('PageSize', 10, 1, 50)
        number = params.integer('PageNumber', 1, 1, 10 ** 9)
        page = matches[(number - 1) * size:number * size]
        return {'TotalCount': len(matches), 'PageNumber': number, 'PageSize': size, 'RegionId': region.id,
                'SecurityGroups': {'SecurityGroup': [
                    {'SecurityGroupId': g['id'], 'SecurityGroupName': g['name'], 'VpcId': g['vpc'], 'Description': '',
                     'SecurityGroupType': 'normal', 'ServiceManaged': False, 'ResourceGroupId': '',
                     'CreationTime': CREATION_TIME, 'Tags': {'Tag': []}} for g in page]}}

    def vswitch_json(self, vsw):
        out = {'VSwitchId': vsw.id, 'VSwitchName': vsw.name, 'VpcId': vsw.vpc, 'ZoneId': vsw.zone,
               'CidrBlock': str(vsw.net), 'EnabledIpv6': vsw.net6 is not None,
               'AvailableIpAddressCount': vsw.available_count(), 'Status': 'Available', 'IsDefault': False,
               'CreationTime': '2024-01-01T00:00:00Z', 'Description': vsw.description, 'ResourceGroupId': '',
               'NetworkAclId': '', 'OwnerId': int(OWNER_ID), 'ShareType': '', 'RegionId': vsw.region,
               'RouteTable': {'RouteTableId': 'vtb-%s' % vsw.vpc[4:], 'RouteTableType': 'System'},
               'Tags': tag_list(vsw.tags, vpc_style=True)}
        if vsw.net6 is not None:
            out['Ipv6CidrBlock'] = str(vsw.net6)
        return out

    # -- mutations -------------------------------------------------------------------------

    @staticmethod
    def ip_quota(eni, family):
        attached = eni.instance is not None
        if family == 4:
            return eni.instance.type.ipv4 if attached else AVAILABLE_ENI_MAX_IPV4
        return eni.instance.type.ipv6 if attached else AVAILABLE_ENI_MAX_IPV6

    @staticmethod
    def check_mutable(eni):
        if eni.status not in ('Available', 'InUse'):
            raise ApiError(400, 'InvalidOperation.InvalidEniState',
                           'The operation is not allowed in the current state "%s" of ENI %s.' % (eni.status, eni.id))
        if eni.type == 'Primary' and eni.instance.status not in ('Running', 'Stopped'):
            raise ApiError(400, 'InvalidOperation.InvalidEcsState',
                           'The operation is not allowed in the current state "%s" of instance %s.' % (eni.instance.status, eni.instance.id))

    @staticmethod
    def pick_ips(vsw, family, explicit, count):
        """Validate explicit addresses or pick `count` lowest free ones; nothing is taken yet."""
        if explicit:
            seen = set()
            for ip in explicit:
                value = vsw.check_ip(ip, family)
                if value in seen:
                    raise ApiError(403, 'InvalidIp.IpRepeated', 'The specified IP address "%s" is repeated in the request.' % ip)
                seen.add(value)
            return [norm_ip(ip) for ip in explicit]
        return vsw.lowest_free(count, family) if count else []

    @staticmethod
    def one_of(params, list_name, count_name, low, high):
        """Exactly one of list_name.N / count_name, each holding low..high addresses."""
        explicit = params.listed(list_name)
        if explicit and params.get(count_name) is not None:
            raise bad_param(count_name, params.get(count_name), 'not combined with %s.N' % list_name)
        if explicit:
            if not low <= len(explicit) <= high:
                raise bad_param(list_name + '.N', len(explicit), 'from %d to %d values' % (low, high))
            return explicit, len(explicit)
        if params.get(count_name) is None:
            return [], 0
        return [], params.integer(count_name, 0, low, high)

    def check_quota(self, eni, family, adding):
        current = eni.ipv4_count() if family == 4 else len(eni.ipv6_ips)
        limit = self.ip_quota(eni, family)
        if current + adding > limit:
            code = 'InvalidOperation.Ipv4CountExceeded' if family == 4 else 'InvalidOperation.Ipv6CountExceeded'
            raise ApiError(403, code, 'ENI %s would hold %d IPv%d addresses; the quota is %d per ENI.'
                           % (eni.id, current + adding, family, limit))

    def assign_private_ips(self, params):
        region = self.region(params)
        eni = self.eni(region, params)
        explicit, count = self.one_of(params, 'PrivateIpAddress', 'SecondaryPrivateIpAddressCount', 1, 49)
        if not count:
            raise missing('SecondaryPrivateIpAddressCount')
        self.check_mutable(eni)
        self.check_quota(eni, 4, count)
        ips = self.pick_ips(eni.vswitch, 4, explicit, count)
        eni.vswitch.take(ips, 4)
        eni.secondary_ips = sorted(eni.secondary_ips + ips, key=ip_key)
        self.mutated()
        return {'AssignedPrivateIpAddressesSet': {'NetworkInterfaceId': eni.id, 'PrivateIpSet': {'PrivateIpAddress': ips},
                                                  'Ipv4PrefixSet': {'Ipv4Prefixes': []}}}

    def unassign_private_ips(self, params):
        region = self.region(params)
        eni = self.eni(region, params)
        ips = [norm_ip(ip) for ip in params.listed('PrivateIpAddress')]
        if not ips:
            raise missing('PrivateIpAddress.1')
        if len(ips) > 49:
            raise bad_param('PrivateIpAddress.N', len(ips), 'from 1 to 49 values')
        self.check_mutable(eni)
        for ip in ips:
            if ip not in eni.secondary_ips:
                raise ApiError(403, 'InvalidIp.IpUnassigned', 'The IP address "%s" is not a secondary private IP of ENI %s.' % (ip, eni.id))
        eni.vswitch.release(ips, 4)
        eni.secondary_ips = [ip for ip in eni.secondary_ips if ip not in set(ips)]
        self.mutated()
        return {}

    def assign_ipv6(self, params):
        region = self.region(params)
        eni = self.eni(region, params)
        explicit, count = self.one_of(params, 'Ipv6Address', 'Ipv6AddressCount', 1, 10)
        if not count:
            raise missing('Ipv6AddressCount')
        self.check_mutable(eni)
        if eni.vswitch.net6 is None:
            raise ApiError(403, 'InvalidVSwitch.Ipv6NotTurnOn', 'The vSwitch %s of ENI %s has no IPv6 CIDR block.' % (eni.vswitch.id, eni.id))
        self.check_quota(eni, 6, count)
        ips = self.pick_ips(eni.vswitch, 6, explicit, count)
        eni.vswitch.take(ips, 6)
        eni.ipv6_ips = sorted(eni.ipv6_ips + ips, key=ip_key)
        self.mutated()
        return {'NetworkInterfaceId': eni.id, 'Ipv6Sets': {'Ipv6Address': ips}, 'Ipv6PrefixSets': {'Ipv6Prefix': []}}

    def unassign_ipv6(self, params):
        region = self.region(params)
        eni = self.eni(region, params)
        ips = [norm_ip(ip) for ip in params.listed('Ipv6Address')]
        if not ips:
            raise missing('Ipv6Address.1')
        if len(ips) > 10:
            raise bad_param('Ipv6Address.N', len(ips), 'from 1 to 10 values')
        self.check_mutable(eni)
        for ip in ips:
            if ip not in eni.ipv6_ips:
                raise ApiError(403, 'InvalidIp.IpUnassigned', 'The IPv6 address "%s" is not assigned to ENI %s.' % (ip, eni.id))
        eni.vswitch.release(ips, 6)
        eni.ipv6_ips = [ip for ip in eni.ipv6_ips if ip not in set(ips)]
        self.mutated()
        return {}

    def create_eni(self, params):
        region = self.region(params)
        vsw_id = params.require('VSwitchId')
        vsw = region.vswitches.get(vsw_id)
        if vsw is None:
            raise not_found('InvalidVSwitchId.NotFound', 'VSwitchId', vsw_id)
        groups = params.listed('SecurityGroupIds', 10) or ([params.get('SecurityGroupId')] if params.get('SecurityGroupId') else [])
        if not groups:
            raise missing('SecurityGroupId')
        for group_id in groups:
            group = self.world.security_groups.get(group_id)
            if group is None or group['region'] != region.id:
                raise not_found('InvalidSecurityGroupId.NotFound', 'SecurityGroupId', group_id)
            if group['vpc'] != vsw.vpc:
                raise ApiError(403, 'InvalidSecurityGroupId.VpcMismatch', 'Security group %s is in VPC %s, vSwitch %s in VPC %s.'
                               % (group_id, group['vpc'], vsw.id, vsw.vpc))
        name = params.get('NetworkInterfaceName', '')
        if name and (not 2 <= len(name) <= 128 or name.startswith(('http://', 'https://'))):
            raise ApiError(400, 'InvalidNetworkInterfaceName.Malformed', 'The NetworkInterfaceName "%s" must be 2 to 128 characters.' % name)
        description = params.get('Description', '')
        if description and not 2 <= len(description) <= 256:
            raise ApiError(400, 'InvalidDescription.Malformed', 'The Description must be 2 to 256 characters.')
        explicit4, count4 = self.one_of(params, 'PrivateIpAddress', 'SecondaryPrivateIpAddressCount', 1, 49)
        if explicit4 and len(explicit4) > 10:
            raise bad_param('PrivateIpAddress.N', len(explicit4), 'from 0 to 10 values')
        explicit6, count6 = self.one_of(params, 'Ipv6Address', 'Ipv6AddressCount', 1, 10)
        if count6 and vsw.net6 is None:
            raise ApiError(403, 'InvalidVSwitch.Ipv6NotTurnOn', 'The vSwitch %s has no IPv6 CIDR block.' % vsw.id)
        primary = params.get('PrimaryIpAddress')
        if primary is not None:
            vsw.check_ip(primary, 4)
            primary = norm_ip(primary)
            if primary in explicit4:
                raise ApiError(403, 'InvalidIp.IpRepeated', 'The specified IP address "%s" is repeated in the request.' % primary)
        # Pick everything before taking anything, so a failure leaves no trace.
        vsw.take([primary] if primary else [], 4)
        try:
            if primary is None:
                primary = vsw.lowest_free(1, 4)[0]
                vsw.take([primary], 4)
            secondary = self.pick_ips(vsw, 4, explicit4, count4)
            vsw.take(secondary, 4)
            try:
                ipv6 = self.pick_ips(vsw, 6, explicit6, count6)
            except ApiError:
                vsw.release(secondary, 4)
                raise
        except ApiError:
            vsw.release([primary] if primary else [], 4)
            raise
        vsw.take(ipv6, 6)
        eni = Eni()
        eni.id = self.world.new_id('eni', region.id)
        eni.region = region.id
        eni.vswitch = vsw
        eni.mac = self.world.new_mac()
        eni.primary_ip = primary
        eni.secondary_ips = sorted(secondary, key=ip_key)
        eni.ipv6_ips = sorted(ipv6, key=ip_key)
        eni.instance = None
        eni.device_index = None
        eni.type = 'Secondary'
        eni.status = 'Available'
        eni.pending = None
        eni.name = name
        eni.description = description
        eni.tags = dict((k, v or '') for k, v in params.tags())
        eni.security_groups = groups
        eni.seq = self.world.next_seq()
        self.world.enis[eni.id] = eni
        region.enis.append(eni)
        self.mutated()
        out = self.eni_json(eni, with_attachment=False)
        keep = ('NetworkInterfaceId', 'Status', 'Type', 'VpcId', 'VSwitchId', 'ZoneId', 'PrivateIpAddress', 'MacAddress',
                'PrivateIpSets', 'SecurityGroupIds', 'Tags', 'NetworkInterfaceName', 'Description', 'OwnerId',
                'ResourceGroupId', 'ServiceManaged', 'SourceDestCheck', 'Ipv4PrefixSets', 'Ipv6PrefixSets')
        body = {k: out[k] for k in keep}
        body['PrivateIpSets'] = {'PrivateIpSet': [{'PrivateIpAddress': s['PrivateIpAddress'], 'Primary': s['Primary']}
                                                  for s in out['PrivateIpSets']['PrivateIpSet']]}
        body['Ipv6Sets'] = {'Ipv6Set': [{'Ipv6Address': ip, 'Primary': False} for ip in eni.ipv6_ips]}
        body['ServiceID'] = 0
        return body

    def attach_eni(self, params):
        region = self.region(params)
        eni = self.eni(region, params)
        inst = self.instance(region, params)
        if eni.status != 'Available':
            raise ApiError(400, 'InvalidOperation.InvalidEniState',
                           'ENI %s is %s; only an Available ENI can be attached.' % (eni.id, eni.status))
        if inst.status not in ('Running', 'Stopped'):
            raise ApiError(400, 'InvalidOperation.InvalidEcsState',
                           'Instance %s is %s; ENIs attach to Running or Stopped instances.' % (inst.id, inst.status))
        if eni.vswitch.vpc != inst.vpc:
            raise ApiError(403, 'InvalidOperation.VpcMismatch', 'ENI %s is in VPC %s, instance %s in VPC %s.' % (eni.id, eni.vswitch.vpc, inst.id, inst.vpc))
        if eni.vswitch.zone != inst.zone:
            raise ApiError(403, 'InvalidOperation.AvailabilityZoneMismatch',
                           'ENI %s is in zone %s, instance %s in zone %s.' % (eni.id, eni.vswitch.zone, inst.id, inst.zone))
        if len(inst.enis) >= inst.type.enis:
            raise ApiError(403, 'EniPerInstanceLimitExceeded',
                           'Instance %s already has %d ENIs, the limit of %s.' % (inst.id, len(inst.enis), inst.type.id))
        if eni.ipv4_count() > inst.type.ipv4 or len(eni.ipv6_ips) > inst.type.ipv6:
            raise ApiError(403, 'InvalidOperation.Ipv4CountExceeded',
                           'ENI %s holds more addresses than %s allows per ENI.' % (eni.id, inst.type.id))
        used = {e.device_index for e in inst.enis}
        eni.device_index = min(i for i in range(1, inst.type.enis + 1) if i not in used)
        eni.instance = inst
        inst.enis.append(eni)
        self.start_transition(eni, 'Attaching')
        self.mutated()
        return {}

    def detach_eni(self, params):
        region = self.region(params)
        eni = self.eni(region, params)
        inst = self.instance(region, params)
        if eni.type == 'Primary':
            raise ApiError(400, 'InvalidOperation.DetachPrimaryEniNotAllowed', 'ENI %s is the primary ENI of %s.' % (eni.id, inst.id))
        if eni.instance is not inst or eni.status != 'InUse':
            raise ApiError(400, 'InvalidOperation.InvalidEniState',
                           'ENI %s is %s and not attached to instance %s.' % (eni.id, eni.status, inst.id))
        self.start_transition(eni, 'Detaching')
        self.mutated()
        return {}

    def delete_eni(self, params):
        region = self.region(params)
        eni = self.eni(region, params)
        if eni.status != 'Available':
            raise ApiError(400, 'InvalidOperation.InvalidEniState',
                           'ENI %s is %s; only an Available ENI can be deleted.' % (eni.id, eni.status))
        eni.vswitch.release([eni.primary_ip] + eni.secondary_ips, 4)
        eni.vswitch.release(eni.ipv6_ips, 6)
        del self.world.enis[eni.id]
        region.enis.remove(eni)
        self.mutated()
        return {}


# ----------------------------------------------------------------------------------------------
# Signatures

def rfc3986(text):
    return quote(text, safe='~', encoding='utf-8')


def parse_timestamp(text, name):
    try:
        stamp = datetime.datetime.strptime(text, '%Y-%m-%dT%H:%M:%SZ').replace(tzinfo=datetime.timezone.utc)
    except (TypeError, ValueError):
        raise ApiError(400, 'InvalidTimeStamp.Format', 'The specified %s "%s" is not in the format YYYY-MM-DDThh:mm:ssZ.' % (name, text)) from None
    return stamp.timestamp()


ACS3_RE = re.compile(r'^ACS3-HMAC-SHA256 Credential=([^,]+),SignedHeaders=([^,]*),Signature=([0-9a-fA-F]+)$')
ACS3_REQUIRED = ('host', 'x-acs-action', 'x-acs-version', 'x-acs-date', 'x-acs-signature-nonce', 'x-acs-content-sha256')


class Verifier:
    """Checks ACS3-HMAC-SHA256 and legacy HMAC-SHA1 signatures against the world's credentials."""

    def __init__(self, credentials, max_skew=MAX_SKEW_SECONDS, check_nonce=True):
        self.credentials = credentials
        self.max_skew = max_skew
        self.check_nonce = check_nonce
        self.nonces = set()
        self.nonce_order = deque()
        self.lock = threading.Lock()

    def secret(self, access_key_id, token):
        entry = self.credentials.get(access_key_id)
        if entry is None:
            raise ApiError(404, 'InvalidAccessKeyId.NotFound', 'Specified access key "%s" is not found.' % access_key_id)
        secret, expected_token = entry
        if (token or None) != (expected_token or None):
            raise ApiError(400, 'InvalidSecurityToken.MismatchWithAccessKey',
                           'The security token does not match the access key "%s".' % access_key_id)
        return secret

    def fresh(self, stamp_text, stamp_name, access_key_id, nonce):
        if self.max_skew:
            stamp = parse_timestamp(stamp_text, stamp_name)
            if abs(time.time() - stamp) > self.max_skew:
                raise ApiError(400, 'InvalidTimeStamp.Expired', 'Specified time stamp or date value "%s" is expired.' % stamp_text)
        if not self.check_nonce:
            return
        key = (access_key_id, nonce)
        now = time.monotonic()
        with self.lock:
            while self.nonce_order and now - self.nonce_order[0][0] > max(self.max_skew, 60):
                self.nonces.discard(self.nonce_order.popleft()[1])
            if key in self.nonces:
                raise ApiError(400, 'SignatureNonceUsed', 'Specified signature nonce "%s" was used already.' % nonce)
            self.nonces.add(key)
            self.nonce_order.append((now, key))

    def acs3(self, method, path, pairs, headers, body):
        """Returns (action, version) of a valid ACS3 request."""
        match = ACS3_RE.match(headers.get('authorization', ''))
        if not match:
            raise ApiError(400, 'IncompleteSignature', 'The Authorization header is not a valid ACS3-HMAC-SHA256 signature.')
        access_key_id, signed, signature = match.groups()
        signed_list = signed.split(';')
        absent = [h for h in ACS3_REQUIRED if h not in signed_list or h not in headers]
        if 'x-acs-security-token' in headers and 'x-acs-security-token' not in signed_list:
            absent.append('x-acs-security-token')
        if absent:
            raise ApiError(400, 'IncompleteSignature', 'The request signature does not cover: %s.' % ', '.join(absent))
        secret = self.secret(access_key_id, headers.get('x-acs-security-token'))
        payload = headers['x-acs-content-sha256']
        if hashlib.sha256(body).hexdigest() != payload.lower():
            raise ApiError(400, 'SignatureDoesNotMatch', 'The x-acs-content-sha256 header does not match the request body.')
        query = '&'.join('%s=%s' % (rfc3986(k), rfc3986(v)) for k, v in sorted(pairs))
        canon_headers = ''.join('%s:%s\n' % (h, headers.get(h, '').strip()) for h in signed_list)
        canonical = '\n'.join((method, path or '/', query, canon_headers, signed, payload))
        to_sign = 'ACS3-HMAC-SHA256\n' + hashlib.sha256(canonical.encode()).hexdigest()
        expected = hmac.new(secret.encode(), to_sign.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signature.lower()):
            raise ApiError(400, 'SignatureDoesNotMatch', 'Specified signature is not matched with our calculation.')
        self.fresh(headers['x-acs-date'], 'x-acs-date', access_key_id, headers['x-acs-signature-nonce'])
        return headers['x-acs-action'], headers['x-acs-version']

    def legacy(self, method, pairs):
        """Returns (action, version) of a valid HMAC-SHA1 query-signed request."""
        params = dict(pairs)
        for name in ('AccessKeyId', 'SignatureNonce', 'Timestamp', 'Action', 'Version'):
            if not params.get(name):
                raise ApiError(400, 'MissingParameter', 'The input parameter "%s" that is mandatory for processing this request is not supplied.' % name)
        if params.get('SignatureMethod', 'HMAC-SHA1') != 'HMAC-SHA1':
            raise ApiError(400, 'IncompleteSignature', 'SignatureMethod "%s" is not supported; use HMAC-SHA1.' % params['SignatureMethod'])
        access_key_id = params['AccessKeyId']
        secret = self.secret(access_key_id, params.get('SecurityToken'))
        canonical = '&'.join('%s=%s' % (rfc3986(k), rfc3986(v)) for k, v in sorted(pairs) if k != 'Signature')
        to_sign = '%s&%s&%s' % (method, rfc3986('/'), rfc3986(canonical))
        expected = base64.b64encode(hmac.new((secret + '&').encode(), to_sign.encode(), hashlib.sha1).digest()).decode()
        if not hmac.compare_digest(expected, params['Signature']):
            raise ApiError(400, 'SignatureDoesNotMatch', 'Specified signature is not matched with our calculation.')
        self.fresh(params['Timestamp'], 'Timestamp', access_key_id, params['SignatureNonce'])
        return params['Action'], params['Version']


# ----------------------------------------------------------------------------------------------
# Faults, statistics, HTTP

def _per_action(values, convert, valid, expected):
    """A number, a dict or ['N', 'Action=N', ...] -> {action or '*': convert(N)}, each checked by ``valid``."""
    if values is None:
        return {}
    if isinstance(values, (int, float)) and not isinstance(values, bool):
        values = {'*': values}
    if isinstance(values, dict):
        items = list(values.items())
    else:
        items = [tuple(v.split('=', 1)) if '=' in v else ('*', v) for v in ([values] if isinstance(values, str) else values)]
    out = {}
    for action, value in items:
        value = convert(value)
        if not valid(value):
            raise ValueError('%r for %s must be %s' % (value, action, expected))
        out[action] = value
    return out


def parse_rates(values):
    """['0.3', 'DescribeInstances=0.5'] -> {'*': 0.3, 'DescribeInstances': 0.5}."""
    return _per_action(values, float, lambda rate: 0.0 <= rate <= 1.0, 'a rate between 0 and 1')


def parse_limits(values):
    """['2', 'AttachNetworkInterface=1'] -> {'*': 2, 'AttachNetworkInterface': 1}."""
    return _per_action(values, int, lambda limit: limit >= 0, 'a limit of 0 or more')


# Transport faults, in the order they are drawn: a connection dropped before the request runs,
# an answer lost after it ran, and an answer held back past the client's read timeout (after it ran).
TRANSPORT_FAULTS = ('drop', 'lost_answer', 'read_timeout')
FAULT_CODES = {'drop': 'ConnectionDropped', 'lost_answer': 'LostAnswer', 'read_timeout': 'ReadTimeout'}
FAULT_SETTINGS = ('throttle_rate', 'unavailable_rate', 'seed', 'throttle_retry_after', 'read_timeout_seconds') + tuple(
    '%s_%s' % (kind, what) for kind in TRANSPORT_FAULTS for what in ('rate', 'limit'))


class Faults:
    """Seeded fault injection, optionally per action.

    API faults answer an error (throttling, 503). Transport faults answer nothing: the connection
    is closed, before the request runs (``drop``) or after it ran (``lost_answer``, and
    ``read_timeout`` after holding the connection ``read_timeout_seconds``). Each transport fault
    has a rate and an optional limit (most faults of that kind per action key, then none).
    """

    def __init__(self, throttle_rate=None, unavailable_rate=None, seed=0, throttle_retry_after=0,
                 read_timeout_seconds=12.0, **transport):
        self.throttle = parse_rates(throttle_rate)
        self.unavailable = parse_rates(unavailable_rate)
        self.retry_after_ms = throttle_retry_after
        self.read_timeout_seconds = float(read_timeout_seconds)
        self.rates = dict((kind, parse_rates(transport.pop(kind + '_rate', None))) for kind in TRANSPORT_FAULTS)
        self.limits = dict((kind, parse_limits(transport.pop(kind + '_limit', None))) for kind in TRANSPORT_FAULTS)
        if transport:
            raise ValueError('unknown fault settings: %s' % ', '.join(sorted(transport)))
        self.injected = Counter()         # (kind, action key) -> transport faults injected so far
        self.seed = seed
        self.random = random.Random(seed)
        self.lock = threading.Lock()

    def settings(self):
        """The knobs of this instance, in the form the constructor takes."""
        out = {'throttle_rate': self.throttle, 'unavailable_rate': self.unavailable, 'seed': self.seed,
               'throttle_retry_after': self.retry_after_ms, 'read_timeout_seconds': self.read_timeout_seconds}
        for kind in TRANSPORT_FAULTS:
            out[kind + '_rate'] = self.rates[kind]
            out[kind + '_limit'] = self.limits[kind]
        return out

    def check(self, action):
        throttle = self.throttle.get(action, self.throttle.get('*', 0.0))
        unavailable = self.unavailable.get(action, self.unavailable.get('*', 0.0))
        if not throttle and not unavailable:
            return
        with self.lock:
            draw = self.random.random()
        if draw < throttle:
            headers = {'x-acs-retry-after': str(self.retry_after_ms)} if self.retry_after_ms else {}
            raise ApiError(400, 'Throttling.User', 'Request was denied due to user flow control.', headers, injected=True)
        if draw < throttle + unavailable:
            raise ApiError(503, 'ServiceUnavailable', 'The request has failed due to a temporary failure of the server.', injected=True)

    def transport(self, action):
        """The transport fault ('drop', 'lost_answer', 'read_timeout') to inflict on this request, or None."""
        for kind in TRANSPORT_FAULTS:
            rates = self.rates[kind]
            key = action if action in rates else '*'
            rate = rates.get(key, 0.0)
            if not rate:
                continue
            limits = self.limits[kind]
            limit = limits.get(action, limits.get('*'))
            with self.lock:
                if limit is not None and self.injected[(kind, key)] >= limit:
                    continue
                if self.random.random() < rate:
                    self.injected[(kind, key)] += 1
                    return kind
        return None


class Stats:
    def __init__(self, log_path=None, keep=100000):
        self.lock = threading.Lock()
        self.log_path = log_path
        self.log_file = open(log_path, 'a', encoding='utf-8') if log_path else None  # pylint: disable=consider-using-with
        self.entries = deque(maxlen=keep)
        self.reset()

    def reset(self):
        with self.lock:
            self.actions = Counter()
            self.codes = Counter()
            self.faults = Counter()
            self.total = 0
            self.entries.clear()

    def record(self, entry):
        line = json.dumps(entry, sort_keys=True)
        with self.lock:
            self.total += 1
            self.actions[entry['action']] += 1
            if entry['code']:
                self.codes[entry['code']] += 1
            if entry.get('injected'):
                self.faults[entry['code']] += 1
            self.entries.append(entry)
            if self.log_file:
                self.log_file.write(line + '\n')
                self.log_file.flush()

    def snapshot(self):
        with self.lock:
            return {'total': self.total, 'actions': dict(self.actions), 'errors': dict(self.codes), 'faults': dict(self.faults)}

    def close(self):
        if self.log_file:
            self.log_file.close()
            self.log_file = None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 512


class _Handler(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    server_version = 'EcsEmulator/1.0'
    # One buffered write per response and no Nagle: otherwise keep-alive clients wait ~40 ms
    # for a delayed ACK between the header and body segments.
    wbufsize = 1 << 16
    disable_nagle_algorithm = True

    def do_POST(self):  # noqa: N802 (http.server naming)
        self.server.emulator.handle(self)

    do_GET = do_POST

    def log_message(self, format, *args):  # pylint: disable=redefined-builtin
        """Requests are recorded by Stats, not printed."""

    def reply(self, status, body, headers=None, content_type='application/json;charset=utf-8'):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header('Content-Type', content_type)
        self.send_header('Content-Length', str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)


class EcsEmulator:
    """The emulator as a library: `with EcsEmulator(world) as emu:` serves on emu.url.

    latency is in milliseconds; throttle_rate / unavailable_rate are a fraction, or a dict
    {action or '*': fraction}; `faults` may carry the same keys (and seed) as one dict, plus the
    transport faults and timing knobs listed in FAULT_SETTINGS and API_SETTINGS (docs/emulator.md).
    attach_steps: how many DescribeNetworkInterfaces answers show an ENI Attaching/Detaching
    before it settles (0 = at once).
    """

    def __init__(self, world, host='127.0.0.1', port=0, latency=0, throttle_rate=None, unavailable_rate=None,
                 seed=0, faults=None, request_log=None, attach_steps=1, throttle_retry_after=0,
                 max_skew=MAX_SKEW_SECONDS, check_nonce=True):
        settings = {'latency': latency, 'throttle_rate': throttle_rate, 'unavailable_rate': unavailable_rate,
                    'seed': seed, 'throttle_retry_after': throttle_retry_after, 'attach_steps': attach_steps}
        settings.update(faults or {})
        self.world = load_world(world)
        self.api = Api(self.world, **dict((k, settings.pop(k)) for k in API_SETTINGS if k in settings))
        self.verifier = Verifier(self.world.credentials, max_skew=max_skew, check_nonce=check_nonce)
        self.latency = 0.0
        self.faults = Faults()
        self.configure(settings)
        self.stats = Stats(request_log)
        self.host = host
        self.port = port
        self.server = None
        self.thread = None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self):
        self.server = _Server((self.host, self.port), _Handler)
        self.server.emulator = self
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={'poll_interval': 0.05}, name='ecs-emulator', daemon=True)
        self.thread.start()
        return self

    def stop(self):
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None
        self.stats.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def endpoint(self):
        """host:port, the form the SDK's Config(endpoint=...) wants (with protocol='http')."""
        return '%s:%d' % (self.host, self.port)

    @property
    def url(self):
        return 'http://%s' % self.endpoint

    # -- inspection ------------------------------------------------------------------------

    def state(self):
        """The current world, in world-file form (loadable again)."""
        with self.api.lock:
            return self.world.dump()

    def request_counts(self):
        return self.stats.snapshot()['actions']

    def stats_snapshot(self):
        return self.stats.snapshot()

    def requests(self):
        with self.stats.lock:
            return list(self.stats.entries)

    def reset_stats(self):
        self.stats.reset()

    def configure(self, settings):
        """Change latency / fault / timing knobs while running (also POST /_emulator/faults).

        Fault knobs not named keep their value, except ``seed``, which restarts the draws.
        """
        settings = dict(settings)
        unknown = set(settings) - set(FAULT_SETTINGS) - set(API_SETTINGS) - {'latency'}
        if unknown:
            raise ValueError('unknown settings: %s' % ', '.join(sorted(unknown)))
        if 'latency' in settings:
            self.latency = float(settings.pop('latency') or 0) / 1000.0
        self.api.configure(dict((k, settings.pop(k)) for k in API_SETTINGS if k in settings))
        knobs = self.faults.settings()
        knobs['seed'] = 0
        knobs.update(settings)
        self.faults = Faults(**knobs)

    # -- request handling ------------------------------------------------------------------

    def handle(self, req):
        split = urlsplit(req.path)
        length = int(req.headers.get('Content-Length') or 0)
        body = req.rfile.read(length) if length else b''
        if split.path.startswith(ADMIN_PREFIX):
            self.admin(req, split, body)
            return
        started = time.monotonic()
        request_id = str(uuid.uuid4()).upper()
        if self.latency:
            time.sleep(self.latency)
        headers = {k.lower(): v for k, v in req.headers.items()}
        pairs = parse_qsl(split.query, keep_blank_values=True)
        if headers.get('content-type', '').startswith('application/x-www-form-urlencoded') and body:
            pairs += parse_qsl(body.decode('utf-8', 'replace'), keep_blank_values=True)
        action, version, mode, status, code, extra, injected, fault = '', '', '', 200, '', {}, False, None
        region = dict(pairs).get('RegionId', '')
        try:
            if split.path != '/':
                raise ApiError(404, 'InvalidAction.NotFound', 'Specified api path "%s" is not found; RPC requests use "/".' % split.path)
            if 'authorization' in headers:
                mode = 'acs3'
                action, version = self.verifier.acs3(req.command, split.path, pairs, headers, body)
            elif 'Signature' in dict(pairs):
                mode = 'v2'
                action, version = self.verifier.legacy(req.command, pairs)
            else:
                raise ApiError(400, 'IncompleteSignature', 'The request carries neither an Authorization header nor a Signature parameter.')
            handler = self.api.lookup(version, action)
            self.faults.check(action)
            fault = self.faults.transport(action)
            result = {}
            if fault != 'drop':
                params = Params({k: v for k, v in pairs if mode == 'acs3' or k not in LEGACY_COMMON})
                with self.api.lock:
                    result = self.api.call(action, handler, params)
                    if len(self.api.counts) > 20000:
                        self.api.counts.clear()
            result = dict(result)
            result['RequestId'] = request_id
        except ApiError as exc:
            status, code, extra, injected = exc.status, exc.code, exc.headers, exc.injected
            result = {'RequestId': request_id, 'HostId': 'ecs.aliyuncs.com' if version != VPC_VERSION else 'vpc.aliyuncs.com',
                      'Code': exc.code, 'Message': exc.message,
                      'Recommend': 'https://api.aliyun.com/troubleshoot?q=%s' % exc.code}
        except Exception as exc:  # pylint: disable=broad-except  # a bug here must still answer JSON
            status, code = 500, 'InternalError'
            result = {'RequestId': request_id, 'Code': code, 'Message': 'The request processing has failed due to some unknown error: %r' % exc}
            print('ecs-emulator: internal error on %s: %r' % (action, exc), file=sys.stderr)
        extra = dict(extra, **{'x-acs-request-id': request_id})
        if fault:
            # No answer at all: the client sees the connection closed (or its read timeout first).
            if fault == 'read_timeout':
                time.sleep(self.faults.read_timeout_seconds)
            req.close_connection = True
            status, code, injected = 0, FAULT_CODES[fault], True
        else:
            req.reply(status, result, extra)
        self.stats.record({'ts': round(time.time(), 3), 'action': action or '?', 'version': version, 'auth': mode,
                           'region': region, 'status': status, 'code': code, 'injected': injected, 'request_id': request_id,
                           'ms': round((time.monotonic() - started) * 1000, 2)})

    def admin(self, req, split, body):
        name = split.path[len(ADMIN_PREFIX):].strip('/')
        query = dict(parse_qsl(split.query))
        if req.command == 'GET' and name == 'stats':
            req.reply(200, self.stats.snapshot())
        elif req.command == 'GET' and name == 'state':
            state = self.state()
            if query.get('format') == 'yaml':
                req.reply(200, yaml.safe_dump(state, sort_keys=False).encode(), content_type='application/yaml;charset=utf-8')
            else:
                req.reply(200, state)
        elif req.command == 'GET' and name == 'requests':
            req.reply(200, self.requests())
        elif req.command == 'GET' and name == 'health':
            req.reply(200, {'ok': True})
        elif req.command == 'POST' and name == 'reset-stats':
            self.reset_stats()
            req.reply(200, {'ok': True})
        elif req.command == 'POST' and name == 'faults':
            try:
                self.configure(json.loads(body or b'{}'))
            except (ValueError, TypeError) as exc:
                req.reply(400, {'error': str(exc)})
                return
            req.reply(200, {'ok': True})
        else:
            req.reply(404, {'error': 'unknown admin endpoint %s %s; try GET stats|state|requests|health, POST reset-stats|faults'
                            % (req.command, split.path)})


def main(argv=None):
    parser = argparse.ArgumentParser(description='Offline emulator of the Alibaba Cloud ECS and VPC APIs.')
    parser.add_argument('--world', required=True, help='world file (YAML or JSON)')
    parser.add_argument('--listen', default='127.0.0.1:0', help='HOST:PORT, port 0 picks a free one (default %(default)s)')
    parser.add_argument('--latency', type=float, default=0, metavar='MS', help='latency added to every API request')
    parser.add_argument('--throttle-rate', action='append', metavar='[ACTION=]RATE',
                        help='fraction of requests answered Throttling.User (400); repeatable, per action with ACTION=')
    parser.add_argument('--unavailable-rate', action='append', metavar='[ACTION=]RATE',
                        help='fraction of requests answered ServiceUnavailable (503); repeatable, per action with ACTION=')
    parser.add_argument('--throttle-retry-after', type=int, default=0, metavar='MS',
                        help='send x-acs-retry-after with throttling errors (default: not sent, like real ECS)')
    parser.add_argument('--seed', type=int, default=0, help='seed of the fault injection')
    parser.add_argument('--attach-steps', type=int, default=1,
                        help='describes an ENI stays Attaching/Detaching before it settles (default %(default)s)')
    parser.add_argument('--attach-seconds', type=float, default=0, metavar='S',
                        help='seconds an ENI stays Attaching/Detaching at least (default %(default)s)')
    parser.add_argument('--token-window', type=float, metavar='S',
                        help='seconds a ClientToken is remembered (default: forever)')
    for kind, what in (('drop', 'connections closed before the request runs'),
                       ('lost-answer', 'requests that run but whose answer is lost (connection closed)'),
                       ('read-timeout', 'requests that run but whose answer is held back --read-timeout-seconds')):
        parser.add_argument('--%s-rate' % kind, action='append', metavar='[ACTION=]RATE',
                            help='fraction of %s; repeatable, per action with ACTION=' % what)
        parser.add_argument('--%s-limit' % kind, action='append', metavar='[ACTION=]N',
                            help='at most N such faults (per action with ACTION=)')
    parser.add_argument('--read-timeout-seconds', type=float, default=12.0, metavar='S',
                        help='how long a read-timeout fault holds the connection (default %(default)s)')
    parser.add_argument('--request-log', metavar='FILE', help='append one JSON line per API request')
    parser.add_argument('--max-skew', type=int, default=MAX_SKEW_SECONDS, help='allowed clock skew in seconds, 0 = unchecked')
    args = parser.parse_args(argv)
    host, sep, port = args.listen.rpartition(':')
    if not sep or not port.isdigit():
        parser.error('--listen %r: expected HOST:PORT such as 127.0.0.1:0' % args.listen)
    try:
        emulator = EcsEmulator(args.world, host=host or '127.0.0.1', port=int(port), latency=args.latency,
                               throttle_rate=args.throttle_rate, unavailable_rate=args.unavailable_rate, seed=args.seed,
                               request_log=args.request_log, attach_steps=args.attach_steps,
                               throttle_retry_after=args.throttle_retry_after, max_skew=args.max_skew,
                               faults=dict(attach_seconds=args.attach_seconds, token_window=args.token_window,
                                           read_timeout_seconds=args.read_timeout_seconds,
                                           **dict(('%s_%s' % (kind, what), getattr(args, '%s_%s' % (kind, what)))
                                                  for kind in TRANSPORT_FAULTS for what in ('rate', 'limit'))))
        emulator.start()
    except (OSError, ValueError, yaml.YAMLError) as exc:
        print('ecs-emulator: %s' % exc, file=sys.stderr)
        return 2
    print('listening on %s' % emulator.url, flush=True)
    try:
        emulator.thread.join()
    except KeyboardInterrupt:
        pass
    finally:
        emulator.stop()
    return 0


if __name__ == '__main__':
    sys.exit(main())
