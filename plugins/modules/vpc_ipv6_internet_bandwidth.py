#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: vpc_ipv6_internet_bandwidth
short_description: Open (or close) IPv6 Internet bandwidth for pod IPv6 addresses on the VPC's IPv6 gateway
version_added: 0.2.0
description:
  - An IPv6 address of a VPC only talks inside the VPC until Internet bandwidth is allocated for it on
    the VPC's IPv6 gateway. This module ensures that bandwidth for a set of addresses, given directly
    (O(addresses)), by ENI (O(eni_ids), every IPv6 address of those ENIs) or by vSwitch (O(vswitch_ids),
    every IPv6 address in use there).
  - Bandwidth the module allocates is marked by tagging the IPv6 address C(managed-by=underlay.alicloud);
    only such bandwidth is resized or, with O(state=absent), deleted. Bandwidth somebody else opened is
    reported in RV(foreign) and left alone.
  - IPv6 Internet bandwidth costs money.
author:
  - underlay.alicloud maintainers (!UNKNOWN)
options:
  addresses:
    description:
      - IPv6 addresses.
    type: list
    elements: str
    default: []
  eni_ids:
    description:
      - ENIs (C(eni-...)) whose IPv6 addresses are meant.
    type: list
    elements: str
    default: []
  vswitch_ids:
    description:
      - vSwitches (C(vsw-...)) whose IPv6 addresses are meant.
    type: list
    elements: str
    default: []
  vpc_id:
    description:
      - VPC of the addresses. When given, addresses of other VPCs are refused and one listing of the VPC
        replaces per-address lookups.
    type: str
  bandwidth:
    description:
      - Bandwidth per address in Mbit/s; 1 to 1000 with C(PayByTraffic), 1 to 2000 with C(PayByBandwidth).
    type: int
    default: 1
  internet_charge_type:
    description:
      - Metering of new bandwidth. It cannot be changed afterwards; a difference is reported as a warning.
    type: str
    choices: [PayByTraffic, PayByBandwidth]
    default: PayByTraffic
  state:
    description:
      - Whether the addresses should have Internet bandwidth.
    type: str
    choices: [present, absent]
    default: present
extends_documentation_fragment:
  - underlay.alicloud.auth
  - underlay.alicloud.attributes
seealso:
  - module: underlay.alicloud.ecs_eni_ip
"""

EXAMPLES = r"""
- name: Internet for the IPv6 pod addresses of the dual-stack vSwitch
  underlay.alicloud.vpc_ipv6_internet_bandwidth:
    region: cn-hangzhou
    vpc_id: vpc-bp1lab
    vswitch_ids: [vsw-bp1b]
    bandwidth: 5
"""

RETURN = r"""
addresses:
  description: The meant IPv6 addresses after the change, sorted.
  returned: success
  type: list
  elements: dict
  sample:
    - id: ipv6-bp1example
      address: "2408:4005:3a1:a400::10"
      vswitch_id: vsw-bp1b
      vpc_id: vpc-bp1lab
      ipv6_gateway_id: ipv6gw-bp1lab
      bandwidth: {id: ipv6bw-bp1example, bandwidth: 5, internet_charge_type: PayByTraffic}
      managed: true
allocated:
  description: Addresses bandwidth was (or would be) opened for.
  returned: success
  type: list
  elements: str
modified:
  description: Addresses whose bandwidth was (or would be) resized.
  returned: success
  type: list
  elements: str
deleted:
  description: Addresses whose bandwidth was (or would be) deleted.
  returned: success
  type: list
  elements: str
foreign:
  description: Addresses with bandwidth the collection did not open (left alone).
  returned: success
  type: list
  elements: str
"""

import hashlib
import ipaddress

from ansible_collections.underlay.alicloud.plugins.module_utils import ecs, vpc
from ansible_collections.underlay.alicloud.plugins.module_utils.egress import (
    IPV6_BANDWIDTH_RANGES, MANAGED_TAG_KEY, MANAGED_TAGS, EgressError, check_bandwidth, check_ipv6_addresses, ipv6_record,
    plan_ipv6_bandwidth)
from ansible_collections.underlay.alicloud.plugins.module_utils.module import AlicloudModule


class VpcIpv6InternetBandwidth(AlicloudModule):
    """IPv6 Internet bandwidth of a set of addresses."""

    represent = 'addresses'

    @classmethod
    def define_module(cls):
        return cls.create_module(dict(
            addresses=dict(type='list', elements='str', default=[]),
            eni_ids=dict(type='list', elements='str', default=[]),
            vswitch_ids=dict(type='list', elements='str', default=[]),
            vpc_id=dict(type='str'),
            bandwidth=dict(type='int', default=1),
            internet_charge_type=dict(type='str', choices=['PayByTraffic', 'PayByBandwidth'], default='PayByTraffic'),
            state=dict(type='str', choices=['present', 'absent'], default='present'),
        ), supports_check_mode=True, required_one_of=[('addresses', 'eni_ids', 'vswitch_ids')])

    def wanted_addresses(self):
        params = self.module.params
        try:
            wanted = check_ipv6_addresses('addresses', params['addresses'])
        except EgressError as exc:
            self.fail(str(exc))
        if params['eni_ids']:
            enis = ecs.describe_network_interfaces(self.clients, self.region, {'NetworkInterfaceId': params['eni_ids']})
            self.warn_missing('eni_ids', params['eni_ids'], [e.get('NetworkInterfaceId') for e in enis])
            for eni in enis:
                for item in ((eni.get('Ipv6Sets') or {}).get('Ipv6Set') or []):
                    wanted.add(str(ipaddress.ip_address(item['Ipv6Address'])))
        return wanted

    def records(self, wanted):
        params = self.module.params
        found = {}
        if params['vpc_id'] or len(wanted) > 20:
            scope = {'VpcId': params['vpc_id']} if params['vpc_id'] else {}
            for raw in vpc.describe_ipv6_addresses(self.clients, self.region, scope):
                rec = ipv6_record(raw)
                if rec['address'] in wanted:
                    found[rec['address']] = rec
        else:
            for address in sorted(wanted):
                for raw in vpc.describe_ipv6_addresses(self.clients, self.region, {'Ipv6Address': address}):
                    rec = ipv6_record(raw)
                    if rec['address'] == address:
                        found[address] = rec
        for vsw in params['vswitch_ids']:
            for raw in vpc.describe_ipv6_addresses(self.clients, self.region, {'VSwitchId': vsw}):
                rec = ipv6_record(raw)
                found[rec['address']] = rec
        missing = sorted(wanted - set(found), key=ipaddress.ip_address)
        if missing:
            self.fail('addresses: %s not found among the IPv6 addresses of %s in region %s'
                      % (', '.join(missing), params['vpc_id'] or 'any VPC', self.region))
        if params['vpc_id']:
            stray = sorted(r['address'] for r in found.values() if r['vpc_id'] != params['vpc_id'])
            if stray:
                self.fail('addresses: %s not in vpc_id %s' % (', '.join(stray), params['vpc_id']))
        return [found[a] for a in sorted(found, key=ipaddress.ip_address)]

    def gateway_of(self, rec, cache):
        if rec['ipv6_gateway_id']:
            return rec['ipv6_gateway_id']
        if rec['vpc_id'] not in cache:
            gateways = vpc.describe_ipv6_gateways(self.clients, self.region, {'VpcId': rec['vpc_id']})
            cache[rec['vpc_id']] = gateways[0]['Ipv6GatewayId'] if gateways else None
        if not cache[rec['vpc_id']]:
            self.fail('VPC %s has no IPv6 gateway; create one (CreateIpv6Gateway) before opening Internet bandwidth for %s'
                      % (rec['vpc_id'], rec['address']))
        return cache[rec['vpc_id']]

    def apply(self, plan):
        params = self.module.params
        cache = {}
        for rec in plan['allocate']:
            gateway = self.gateway_of(rec, cache)
            if self.module.check_mode:
                continue
            token = hashlib.sha256(('%s:%s:%s' % (rec['id'], params['bandwidth'], params['internet_charge_type'])).encode()).hexdigest()[:64]
            vpc.allocate_ipv6_internet_bandwidth(self.clients, self.region, gateway, rec['id'], params['bandwidth'],
                                                 params['internet_charge_type'], client_token=token)
        if plan['allocate'] and not self.module.check_mode:
            vpc.tag_resources(self.clients, self.region, 'IPV6ADDRESS', [r['id'] for r in plan['allocate']], MANAGED_TAGS)
        if self.module.check_mode:
            return
        for rec in plan['modify']:
            vpc.modify_ipv6_internet_bandwidth(self.clients, self.region, rec['bandwidth']['id'], rec['id'], params['bandwidth'])
        for rec in plan['delete']:
            vpc.delete_ipv6_internet_bandwidth(self.clients, self.region, rec['bandwidth']['id'], rec['id'])
        if plan['delete']:
            vpc.untag_resources(self.clients, self.region, 'IPV6ADDRESS', [r['id'] for r in plan['delete']], [MANAGED_TAG_KEY])

    def run(self):
        params = self.module.params
        self.validate_ids('eni_ids', 'eni', params['eni_ids'])
        self.validate_ids('vswitch_ids', 'vswitch', params['vswitch_ids'])
        self.validate_ids('vpc_id', 'vpc', [params['vpc_id']] if params['vpc_id'] else [])
        try:
            check_bandwidth('bandwidth', params['bandwidth'], params['internet_charge_type'], IPV6_BANDWIDTH_RANGES)
        except ValueError as exc:
            self.fail(str(exc))
        before = self.records(self.wanted_addresses())
        plan = plan_ipv6_bandwidth(before, params['bandwidth'], params['internet_charge_type'], params['state'])
        changed = bool(plan['allocate'] or plan['modify'] or plan['delete'])
        if changed:
            self.apply(plan)
        after = before
        if changed and not self.module.check_mode:
            after = self.records(set(r['address'] for r in before))
        for rec in plan['charge_drift']:
            self.module.warn('%s: bandwidth is metered %s, not %s; the charge type cannot be changed in place'
                             % (rec['address'], rec['bandwidth']['internet_charge_type'], params['internet_charge_type']))
        self.result.update(changed=changed, addresses=after,
                           allocated=[r['address'] for r in plan['allocate']], modified=[r['address'] for r in plan['modify']],
                           deleted=[r['address'] for r in plan['delete']], foreign=[r['address'] for r in plan['foreign']])
        if self.module._diff:
            self.result['diff'] = {'before': {'addresses': before}, 'after': {'addresses': self.predicted(before, plan, after)}}

    def predicted(self, before, plan, after):
        if not self.module.check_mode:
            return after
        params = self.module.params
        band = {'id': None, 'bandwidth': params['bandwidth'], 'internet_charge_type': params['internet_charge_type']}
        touched = dict((r['address'], 'open') for r in plan['allocate'] + plan['modify'])
        touched.update((r['address'], 'close') for r in plan['delete'])
        out = []
        for rec in before:
            action = touched.get(rec['address'])
            if action == 'open':
                rec = dict(rec, bandwidth=dict(rec['bandwidth'] or band, bandwidth=params['bandwidth']), managed=True)
            elif action == 'close':
                rec = dict(rec, bandwidth=None, managed=False)
            out.append(rec)
        return out


def main():
    VpcIpv6InternetBandwidth(VpcIpv6InternetBandwidth.define_module()).execute()


if __name__ == '__main__':
    main()
