#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: vpc_ipv6_address_info
short_description: Gather the IPv6 addresses of a VPC with their IPv6 Internet bandwidth
version_added: 0.2.0
description:
  - Lists the IPv6 addresses of one region that match all given filters (DescribeIpv6Addresses,
    50 per page, every page), each with the Internet bandwidth opened for it on the VPC's IPv6
    gateway, or none (the address then only talks inside the VPC).
author:
  - underlay.alicloud maintainers (!UNKNOWN)
options:
  vpc_id:
    description:
      - Only addresses of this VPC.
    type: str
  vswitch_id:
    description:
      - Only addresses of this vSwitch.
    type: str
  addresses:
    description:
      - Only these IPv6 addresses; addresses that are not found are reported in a warning.
    type: list
    elements: str
    default: []
extends_documentation_fragment:
  - underlay.alicloud.auth
notes:
  - Supports check mode; it only reads.
seealso:
  - module: underlay.alicloud.vpc_ipv6_internet_bandwidth
"""

EXAMPLES = r"""
- name: Which pod IPv6 addresses of the lab VPC can reach the Internet
  underlay.alicloud.vpc_ipv6_address_info:
    region: cn-hangzhou
    vpc_id: vpc-bp1lab
  register: ipv6
"""

RETURN = r"""
ipv6_addresses:
  description: Matching addresses sorted by address.
  returned: always
  type: list
  elements: dict
  contains:
    id:
      description: IPv6 address id.
      type: str
      sample: ipv6-bp1example
    address:
      description: The address in canonical form.
      type: str
      sample: 2408:4005:3a1:a400::156
    vswitch_id:
      description: vSwitch of the address.
      type: str
    vpc_id:
      description: VPC of the address.
      type: str
    ipv6_gateway_id:
      description: IPv6 gateway of the VPC, when the API names it.
      type: str
    instance_id:
      description: Instance or ENI holding the address.
      type: str
    bandwidth:
      description: Internet bandwidth (C(id), C(bandwidth) in Mbit/s, C(internet_charge_type)); null when none is open.
      type: dict
    tags:
      description: Tags.
      type: dict
    managed:
      description: Whether the collection opened the bandwidth (C(managed-by=underlay.alicloud) tag on the address).
      type: bool
"""

import ipaddress

from ansible_collections.underlay.alicloud.plugins.module_utils import vpc
from ansible_collections.underlay.alicloud.plugins.module_utils.egress import EgressError, check_ipv6_addresses, ipv6_record
from ansible_collections.underlay.alicloud.plugins.module_utils.module import AlicloudModule


class VpcIpv6AddressInfo(AlicloudModule):
    """Read-only listing of IPv6 addresses and their Internet bandwidth."""

    represent = 'ipv6_addresses'

    @classmethod
    def define_module(cls):
        return cls.create_module(dict(
            vpc_id=dict(type='str'),
            vswitch_id=dict(type='str'),
            addresses=dict(type='list', elements='str', default=[]),
        ), supports_check_mode=True)

    def run(self):
        params = self.module.params
        self.validate_ids('vpc_id', 'vpc', [params['vpc_id']] if params['vpc_id'] else [])
        self.validate_ids('vswitch_id', 'vswitch', [params['vswitch_id']] if params['vswitch_id'] else [])
        try:
            wanted = check_ipv6_addresses('addresses', params['addresses'])
        except EgressError as exc:
            self.fail(str(exc))
        filters = {'VpcId': params['vpc_id'], 'VSwitchId': params['vswitch_id'],
                   'Ipv6Address': next(iter(wanted)) if len(wanted) == 1 else None}
        filters = dict((k, v) for k, v in filters.items() if v is not None)
        records = [ipv6_record(r) for r in vpc.describe_ipv6_addresses(self.clients, self.region, filters)]
        if wanted:
            records = [r for r in records if r['address'] in wanted]
        self.warn_missing('addresses', sorted(wanted), [r['address'] for r in records])
        self.result[self.represent] = sorted(records, key=lambda r: ipaddress.ip_address(r['address']))


def main():
    VpcIpv6AddressInfo(VpcIpv6AddressInfo.define_module()).execute()


if __name__ == '__main__':
    main()
