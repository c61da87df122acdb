#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: vpc_eip_info
short_description: Gather elastic IP addresses (EIPs)
version_added: 0.2.0
description:
  - Lists the EIPs of one region that match all given filters (DescribeEipAddresses, 100 per page,
    every page).
author:
  - underlay.alicloud maintainers (!UNKNOWN)
options:
  allocation_ids:
    description:
      - Only these EIPs (ids starting with C(eip-)).
    type: list
    elements: str
  ip_address:
    description:
      - Only the EIP with this public address.
    type: str
  name:
    description:
      - Only EIPs with this name.
    type: str
  nat_gateway_id:
    description:
      - Only EIPs associated with this NAT gateway.
    type: str
  tags:
    description:
      - Only EIPs carrying all these tags.
    type: dict
extends_documentation_fragment:
  - underlay.alicloud.auth
notes:
  - Supports check mode; it only reads.
seealso:
  - module: underlay.alicloud.vpc_eip
"""

EXAMPLES = r"""
- name: EIPs of the egress NAT gateway
  underlay.alicloud.vpc_eip_info:
    region: cn-hangzhou
    nat_gateway_id: ngw-bp1example
  register: eips
"""

RETURN = r"""
eips:
  description: Matching EIPs sorted by allocation id.
  returned: always
  type: list
  elements: dict
  contains:
    allocation_id:
      description: EIP id.
      type: str
      sample: eip-bp1example
    ip_address:
      description: Public address.
      type: str
      sample: 47.96.0.10
    name:
      description: Name.
      type: str
    status:
      description: C(Associating), C(Unassociating), C(InUse), C(Available) or C(Releasing).
      type: str
    bandwidth:
      description: Peak bandwidth in Mbit/s.
      type: int
    internet_charge_type:
      description: C(PayByTraffic) or C(PayByBandwidth).
      type: str
    instance_id:
      description: Associated instance (a NAT gateway id for egress), null when free.
      type: str
    instance_type:
      description: Type of the associated instance (C(Nat), C(EcsInstance), C(NetworkInterface), ...).
      type: str
    tags:
      description: Tags.
      type: dict
    managed:
      description: Whether the collection allocated it (C(managed-by=underlay.alicloud) tag).
      type: bool
"""

from ansible_collections.underlay.alicloud.plugins.module_utils import vpc
from ansible_collections.underlay.alicloud.plugins.module_utils.egress import eip_record
from ansible_collections.underlay.alicloud.plugins.module_utils.module import AlicloudModule


class VpcEipInfo(AlicloudModule):
    """Read-only listing of EIPs."""

    represent = 'eips'

    @classmethod
    def define_module(cls):
        return cls.create_module(dict(
            allocation_ids=dict(type='list', elements='str'),
            ip_address=dict(type='str'),
            name=dict(type='str'),
            nat_gateway_id=dict(type='str'),
            tags=dict(type='dict'),
        ), supports_check_mode=True)

    def run(self):
        params = self.module.params
        wanted = sorted(set(params['allocation_ids'] or []))
        for value in wanted:
            if not value.startswith('eip-'):
                self.fail('allocation_ids: %r is not an EIP allocation id (expected eip- followed by letters and digits)' % value)
        filters = {'AllocationId': wanted[0] if len(wanted) == 1 else None, 'EipAddress': params['ip_address'],
                   'EipName': params['name'], 'Tag': params['tags'] or None}
        if params['nat_gateway_id']:
            filters.update(AssociatedInstanceId=params['nat_gateway_id'], AssociatedInstanceType='Nat')
        filters = dict((k, v) for k, v in filters.items() if v is not None)
        records = sorted((eip_record(r) for r in vpc.describe_eip_addresses(self.clients, self.region, filters)),
                         key=lambda r: r['allocation_id'])
        if wanted:
            records = [r for r in records if r['allocation_id'] in wanted]
        self.warn_missing('allocation_ids', wanted, [r['allocation_id'] for r in records])
        self.result[self.represent] = records


def main():
    VpcEipInfo(VpcEipInfo.define_module()).execute()


if __name__ == '__main__':
    main()
