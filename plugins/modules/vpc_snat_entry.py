#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: vpc_snat_entry
short_description: Ensure SNAT entries of a NAT gateway for vSwitches or CIDRs, reporting overlaps
version_added: 0.2.0
description:
  - Ensures one SNAT entry per source in O(sources) (a vSwitch id or an IPv4 CIDR inside the NAT
    gateway's VPC) in the gateway's SNAT table, translating to O(snat_ips).
  - Entries the collection creates are named O(name_prefix) plus the source (for example
    C(underlay-vsw-bp1a)); SNAT entries carry no tags in the API, so that name marks them as ours.
    Entries with any other name are never modified or deleted.
  - A source already covered by somebody else's entry (the same vSwitch or CIDR, or with
    O(skip_covered=true) a wider CIDR such as the whole VPC) gets no entry of ours; it is reported in
    RV(covered) or RV(foreign). Every existing entry whose CIDR overlaps a wanted source is reported in
    RV(overlaps).
  - With O(state=absent) our entries for O(sources) are deleted; with O(purge=true) our entries for
    sources no longer listed are deleted too.
author:
  - underlay.alicloud maintainers (!UNKNOWN)
options:
  nat_gateway_id:
    description:
      - The NAT gateway (C(ngw-...)).
    type: str
    required: true
  sources:
    description:
      - vSwitch ids (C(vsw-...)) and IPv4 CIDRs whose traffic should leave through the gateway.
    type: list
    elements: str
    required: true
  snat_ips:
    description:
      - Public addresses (EIPs associated with the gateway) the entries use. Defaults to every EIP of
        the gateway. An address that is not on the gateway is refused.
    type: list
    elements: str
  state:
    description:
      - Whether the entries should exist.
    type: str
    choices: [present, absent]
    default: present
  purge:
    description:
      - Delete our entries whose source is not in O(sources).
    type: bool
    default: false
  skip_covered:
    description:
      - Create no entry for a source that lies inside the CIDR of an entry the collection did not create.
    type: bool
    default: true
  name_prefix:
    description:
      - Name prefix that marks the collection's entries.
    type: str
    default: underlay-
  wait:
    description:
      - Wait until new entries are C(Available) and deleted ones are gone.
    type: bool
    default: true
  wait_timeout:
    description:
      - Seconds to wait.
    type: int
    default: 120
extends_documentation_fragment:
  - underlay.alicloud.auth
  - underlay.alicloud.attributes
notes:
  - CreateSnatEntry cannot run concurrently on one NAT gateway; the module creates entries one after
    the other and waits for each.
seealso:
  - module: underlay.alicloud.vpc_nat_gateway
  - module: underlay.alicloud.vpc_nat_gateway_info
"""

EXAMPLES = r"""
- name: SNAT for the pod vSwitches
  underlay.alicloud.vpc_snat_entry:
    region: cn-hangzhou
    nat_gateway_id: ngw-bp1example
    sources: [vsw-bp1a, vsw-bp1b]
  register: snat

- name: Show sources another entry already overlaps
  ansible.builtin.debug:
    var: snat.overlaps
"""

RETURN = r"""
entries:
  description: Every entry of the gateway's SNAT tables after the change.
  returned: success
  type: list
  elements: dict
  sample:
    - id: snat-bp1example
      name: underlay-vsw-bp1a
      source_vswitch_id: vsw-bp1a
      source_cidr: 172.31.192.0/20
      snat_ips: [47.96.0.10]
      status: Available
      managed: true
created:
  description: Sources an entry was (or in check mode would be) created for.
  returned: success
  type: list
  elements: str
deleted:
  description: Ids of the entries deleted (or to be deleted).
  returned: success
  type: list
  elements: str
modified:
  description: Ids of our entries whose SNAT addresses were changed.
  returned: success
  type: list
  elements: str
covered:
  description: Sources left alone because an entry the collection did not create covers them (C(source), C(by), C(by_cidr)).
  returned: success
  type: list
  elements: dict
foreign:
  description: Sources with an entry of exactly that source which the collection did not create (C(source), C(entry)).
  returned: success
  type: list
  elements: dict
overlaps:
  description: Existing entries whose CIDR overlaps a wanted source without being its own entry
    (C(source), C(cidr), C(entry), C(entry_name), C(entry_cidr), C(managed)).
  returned: success
  type: list
  elements: dict
"""

import hashlib

from ansible_collections.underlay.alicloud.plugins.module_utils import ecs, vpc
from ansible_collections.underlay.alicloud.plugins.module_utils.egress import (
    EgressError, nat_record, normalise_source, plan_snat, snat_record)
from ansible_collections.underlay.alicloud.plugins.module_utils.module import AlicloudModule


class VpcSnatEntry(AlicloudModule):
    """SNAT entries of one NAT gateway."""

    represent = 'entries'

    @classmethod
    def define_module(cls):
        return cls.create_module(dict(
            nat_gateway_id=dict(type='str', required=True),
            sources=dict(type='list', elements='str', required=True),
            snat_ips=dict(type='list', elements='str'),
            state=dict(type='str', choices=['present', 'absent'], default='present'),
            purge=dict(type='bool', default=False),
            skip_covered=dict(type='bool', default=True),
            name_prefix=dict(type='str', default='underlay-'),
            wait=dict(type='bool', default=True),
            wait_timeout=dict(type='int', default=120),
        ), supports_check_mode=True)

    def entries(self, nat):
        prefix = self.module.params['name_prefix']
        return [snat_record(e, prefix) for table in nat['snat_table_ids']
                for e in vpc.describe_snat_table_entries(self.clients, self.region, table)]

    def wanted(self, nat):
        vswitches = ecs.describe_vswitches(self.clients, self.region, {'VpcId': nat['vpc_id']})
        vsw_cidrs = dict((v['VSwitchId'], v.get('CidrBlock')) for v in vswitches)
        vpc_cidrs = sorted(set(self.vpc_cidrs(nat['vpc_id'], vsw_cidrs)))
        return [normalise_source(s, vsw_cidrs, vpc_cidrs) for s in self.module.params['sources']]

    def vpc_cidrs(self, vpc_id, vsw_cidrs):
        """The VPC's IPv4 CIDRs (DescribeVpcs: CidrBlock and SecondaryCidrBlocks)."""
        vpcs = vpc.describe_vpcs(self.clients, self.region, {'VpcId': vpc_id})
        if not vpcs:
            return list(vsw_cidrs.values())
        cidrs = [vpcs[0].get('CidrBlock')] + list(((vpcs[0].get('SecondaryCidrBlocks') or {}).get('SecondaryCidrBlock')) or [])
        return [c for c in cidrs if c]

    def snat_ips(self, nat):
        on_gateway = sorted(e['ip_address'] for e in nat['eips'] if e.get('ip_address'))
        wanted = sorted(set(self.module.params['snat_ips'] or on_gateway))
        stray = [ip for ip in wanted if ip not in on_gateway]
        if stray:
            self.fail('snat_ips: %s not associated with %s (its EIPs: %s); associate it with vpc_eip first'
                      % (', '.join(stray), nat['id'], ', '.join(on_gateway) or 'none'))
        if not wanted and self.module.params['state'] == 'present':
            self.fail('%s has no EIP; associate one with vpc_eip or give snat_ips' % nat['id'])
        return wanted

    def wait_entry(self, table, entry_id, gone=False):
        if not self.module.params['wait']:
            return

        def fetch():
            return [e for e in vpc.describe_snat_table_entries(self.clients, self.region, table, {'SnatEntryId': entry_id})
                    if e.get('SnatEntryId') == entry_id]

        vpc.wait_until(fetch, (lambda found: not found) if gone else (lambda found: found and found[0].get('Status') == 'Available'),
                       self.module.params['wait_timeout'], 'SNAT entry %s' % entry_id)

    def apply(self, plan, table, ips):
        for entry, new_ips in plan['modify']:
            vpc.modify_snat_entry(self.clients, self.region, entry['snat_table_id'], entry['id'], new_ips)
            self.wait_entry(entry['snat_table_id'], entry['id'])
        for entry in plan['delete']:
            vpc.delete_snat_entry(self.clients, self.region, entry['snat_table_id'], entry['id'])
            self.wait_entry(entry['snat_table_id'], entry['id'], gone=True)
        for want in plan['create']:
            request = {'SnatTableId': table, 'SnatIp': ','.join(ips), 'SnatEntryName': want['name']}
            if want['vswitch_id']:
                request['SourceVSwitchId'] = want['vswitch_id']
            else:
                request['SourceCIDR'] = want['cidr']
            token = hashlib.sha256(repr(sorted(request.items())).encode()).hexdigest()[:64]
            response = vpc.create_snat_entry(self.clients, self.region, request, client_token=token)
            if not response.get('SnatEntryId'):
                self.fail('CreateSnatEntry returned no SnatEntryId for %s' % want['source'])
            self.wait_entry(table, response['SnatEntryId'])

    def run(self):
        params = self.module.params
        if not params['nat_gateway_id'].startswith('ngw-'):
            self.fail('nat_gateway_id: %r is not a NAT gateway id (expected ngw- followed by letters and digits)' % params['nat_gateway_id'])
        if not params['sources']:
            self.fail('sources: give at least one vSwitch id or IPv4 CIDR')
        raws = vpc.describe_nat_gateways(self.clients, self.region, {'NatGatewayId': params['nat_gateway_id']})
        if not raws:
            self.fail('nat_gateway_id: %s not found in region %s' % (params['nat_gateway_id'], self.region))
        nat = nat_record(raws[0])
        if not nat['snat_table_ids']:
            self.fail('%s has no SNAT table (only Internet NAT gateways have one)' % nat['id'])
        try:
            wanted = self.wanted(nat)
        except EgressError as exc:
            self.fail(str(exc))
        ips = self.snat_ips(nat)
        before = self.entries(nat)
        plan = plan_snat(before, wanted, ips, state=params['state'], purge=params['purge'],
                         skip_covered=params['skip_covered'], prefix=params['name_prefix'])
        changed = bool(plan['create'] or plan['delete'] or plan['modify'])
        if changed and not self.module.check_mode:
            self.apply(plan, nat['snat_table_ids'][0], ips)
        after = self.entries(nat) if changed and not self.module.check_mode else before
        for item in plan['foreign']:
            self.module.warn('source %s: entry %s (%s) was not created by this collection and is left alone'
                             % (item['source'], item['entry'], item['entry_name'] or 'no name'))
        self.result.update(
            changed=changed, entries=after,
            created=[w['source'] for w in plan['create']], deleted=[e['id'] for e in plan['delete']],
            modified=[e['id'] for e, _ips in plan['modify']],
            covered=plan['covered'], foreign=plan['foreign'], overlaps=plan['overlaps'])
        if self.module._diff:
            predicted = after
            if self.module.check_mode and changed:
                gone = set(self.result['deleted'])
                predicted = [e for e in before if e['id'] not in gone] + [
                    {'id': None, 'name': w['name'], 'source_vswitch_id': w['vswitch_id'], 'source_cidr': w['cidr'],
                     'snat_ips': ips, 'status': 'Available', 'managed': True} for w in plan['create']]
            self.result['diff'] = {'before': {'entries': before}, 'after': {'entries': predicted}}


def main():
    VpcSnatEntry(VpcSnatEntry.define_module()).execute()


if __name__ == '__main__':
    main()
