#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: vpc_nat_gateway_info
short_description: Gather NAT gateways, their EIPs and optionally their SNAT entries
version_added: 0.2.0
description:
  - Lists the NAT gateways of one region that match all given filters (DescribeNatGateways,
    50 per page, every page).
  - With O(snat_entries=true) each gateway also carries the entries of its SNAT tables
    (DescribeSnatTableEntries, every page), with C(managed) telling the collection's own entries apart.
author:
  - underlay.alicloud maintainers (!UNKNOWN)
options:
  nat_gateway_ids:
    description:
      - Only these gateways (ids starting with C(ngw-)).
    type: list
    elements: str
  vpc_id:
    description:
      - Only gateways of this VPC.
    type: str
  name:
    description:
      - Only gateways with this name.
    type: str
  tags:
    description:
      - Only gateways carrying all these tags.
    type: dict
  snat_entries:
    description:
      - Also return the SNAT entries of every gateway.
    type: bool
    default: false
  snat_name_prefix:
    description:
      - Name prefix of the SNAT entries the collection created (sets C(managed) on entries).
    type: str
    default: underlay-
extends_documentation_fragment:
  - underlay.alicloud.auth
notes:
  - Supports check mode; it only reads.
seealso:
  - module: underlay.alicloud.vpc_nat_gateway
"""

EXAMPLES = r"""
- name: NAT gateways of the lab VPC with their SNAT entries
  underlay.alicloud.vpc_nat_gateway_info:
    region: cn-hangzhou
    vpc_id: vpc-bp1lab
    snat_entries: true
  register: nat
"""

RETURN = r"""
nat_gateways:
  description: Matching gateways sorted by id.
  returned: always
  type: list
  elements: dict
  contains:
    id:
      description: Gateway id.
      type: str
      sample: ngw-bp1example
    name:
      description: Gateway name.
      type: str
    vpc_id:
      description: VPC id.
      type: str
    vswitch_id:
      description: vSwitch of the gateway's private address.
      type: str
    status:
      description: C(Creating), C(Available), C(Modifying), C(Deleting) or C(Converting).
      type: str
    snat_table_ids:
      description: SNAT table ids.
      type: list
      elements: str
    eips:
      description: Associated EIPs (C(allocation_id), C(ip_address)).
      type: list
      elements: dict
    tags:
      description: Tags.
      type: dict
    managed:
      description: Whether the collection created the gateway (C(managed-by=underlay.alicloud) tag).
      type: bool
    snat_entries:
      description: SNAT entries (with O(snat_entries=true)) with id, name, source_vswitch_id, source_cidr, snat_ips, status, managed.
      type: list
      elements: dict
      returned: when O(snat_entries=true)
"""

from ansible_collections.underlay.alicloud.plugins.module_utils import vpc
from ansible_collections.underlay.alicloud.plugins.module_utils.egress import nat_record, snat_record
from ansible_collections.underlay.alicloud.plugins.module_utils.module import AlicloudModule


class VpcNatGatewayInfo(AlicloudModule):
    """Read-only listing of NAT gateways."""

    represent = 'nat_gateways'

    @classmethod
    def define_module(cls):
        return cls.create_module(dict(
            nat_gateway_ids=dict(type='list', elements='str'),
            vpc_id=dict(type='str'),
            name=dict(type='str'),
            tags=dict(type='dict'),
            snat_entries=dict(type='bool', default=False),
            snat_name_prefix=dict(type='str', default='underlay-'),
        ), supports_check_mode=True)

    def run(self):
        params = self.module.params
        wanted = sorted(set(params['nat_gateway_ids'] or []))
        for value in wanted:
            if not value.startswith('ngw-'):
                self.fail('nat_gateway_ids: %r is not a NAT gateway id (expected ngw- followed by letters and digits)' % value)
        self.validate_ids('vpc_id', 'vpc', [params['vpc_id']] if params['vpc_id'] else [])
        filters = {'VpcId': params['vpc_id'], 'Name': params['name'],
                   'NatGatewayId': wanted[0] if len(wanted) == 1 else None,
                   'Tag': params['tags'] or None}
        filters = dict((k, v) for k, v in filters.items() if v is not None)
        raws = vpc.describe_nat_gateways(self.clients, self.region, filters)
        records = sorted((nat_record(r) for r in raws), key=lambda r: r['id'])
        if wanted:
            records = [r for r in records if r['id'] in wanted]
        if params['name']:
            records = [r for r in records if r['name'] == params['name']]
        self.warn_missing('nat_gateway_ids', wanted, [r['id'] for r in records])
        if params['snat_entries']:
            for record in records:
                record['snat_entries'] = [
                    snat_record(e, params['snat_name_prefix'])
                    for table in record['snat_table_ids']
                    for e in vpc.describe_snat_table_entries(self.clients, self.region, table)]
        self.result[self.represent] = records


def main():
    VpcNatGatewayInfo(VpcNatGatewayInfo.define_module()).execute()


if __name__ == '__main__':
    main()
