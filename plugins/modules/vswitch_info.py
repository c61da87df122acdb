#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: vswitch_info
short_description: Gather VPC vSwitches with IPv4/IPv6 CIDR, gateway, zone and free addresses
version_added: 0.1.0
description:
  - Lists the vSwitches of one region that match all given filters through the VPC API
    (DescribeVSwitches, 50 per page, every page).
  - Adds what pools need and the API does not say directly, the gateway (last address of the
    CIDR minus 2) and the number of assignable addresses (CIDR size minus the reserved ones).
author:
  - underlay.alicloud maintainers (!UNKNOWN)
options:
  vswitch_ids:
    description:
      - Only these vSwitches (ids starting with C(vsw-)).
    type: list
    elements: str
  vpc_id:
    description:
      - Only vSwitches of this VPC (C(VpcId)).
    type: str
  zone_id:
    description:
      - Only vSwitches in this zone (C(ZoneId)).
    type: str
  filters:
    description:
      - Further DescribeVSwitches request parameters by their API names, for example
        C(VSwitchName), C(IsDefault), C(EnableIpv6), C(RouteTableId), C(Tag).
      - The dedicated options above take precedence over the same parameter given here.
        Paging parameters and C(RegionId) are set by the module.
      - Keys are checked before any API call against the request parameters of the VPC API's DescribeVSwitches (those
        of C(DescribeVSwitchesRequest) in the SDK C(alibabacloud-vpc20160428)), including the C(Key)/C(Value) entries
        of C(Tag); an unknown key fails the task with a message naming it and the nearest valid one, because the API
        would ignore it and return every vSwitch.
    type: dict
extends_documentation_fragment:
  - underlay.alicloud.auth
notes:
  - Supports check mode; it only reads.
  - Ids in O(vswitch_ids) that do not exist are reported in a warning, not as an error.
seealso:
  - module: underlay.alicloud.ecs_eni_info
"""

EXAMPLES = r"""
- name: vSwitches of the lab VPC
  underlay.alicloud.vswitch_info:
    region: cn-hangzhou
    vpc_id: vpc-bp1lab
  register: vsw

- name: Gateway of the pod vSwitch
  ansible.builtin.debug:
    msg: "{{ (vsw.vswitches | selectattr('id', 'equalto', 'vsw-bp1b') | first).gateway }}"

- name: IPv6-enabled vSwitches in one zone
  underlay.alicloud.vswitch_info:
    region: cn-hangzhou
    zone_id: cn-hangzhou-i
    filters:
      EnableIpv6: true
"""

RETURN = r"""
vswitches:
  description: Matching vSwitches sorted by id.
  returned: always
  type: list
  elements: dict
  contains:
    id:
      description: vSwitch id.
      type: str
      sample: vsw-bp1b
    name:
      description: vSwitch name.
      type: str
      sample: lab-pods-i
    vpc_id:
      description: VPC id.
      type: str
    zone_id:
      description: Zone id.
      type: str
    cidr:
      description: IPv4 CIDR.
      type: str
      sample: 192.168.0.0/24
    gateway:
      description: Gateway, the last address of the CIDR minus 2.
      type: str
      sample: 192.168.0.253
    ipv6_cidr:
      description: IPv6 CIDR, null when IPv6 is not enabled.
      type: str
      sample: 2408:4005:3a1:a400::/64
    available_ip_count:
      description: Free IPv4 addresses as reported by the API (reserved and used ones excluded).
      type: int
      sample: 236
    usable_ip_count:
      description: Assignable IPv4 addresses of the CIDR (size minus the first and the last three).
      type: int
      sample: 252
    status:
      description: vSwitch state.
      type: str
      sample: Available
    is_default:
      description: Whether this is the zone's default vSwitch.
      type: bool
    tags:
      description: vSwitch tags.
      type: dict
"""

from ansible_collections.underlay.alicloud.plugins.module_utils import ecs
from ansible_collections.underlay.alicloud.plugins.module_utils.facts import vswitch_record
from ansible_collections.underlay.alicloud.plugins.module_utils.module import AlicloudModule


class VswitchInfo(AlicloudModule):
    """Read-only listing of vSwitches."""

    represent = 'vswitches'

    @classmethod
    def define_module(cls):
        return cls.create_module(dict(
            vswitch_ids=dict(type='list', elements='str'),
            vpc_id=dict(type='str'),
            zone_id=dict(type='str'),
            filters=dict(type='dict'),
        ), supports_check_mode=True)

    def run(self):
        params = self.module.params
        wanted = sorted(set(params['vswitch_ids'] or []))
        self.validate_ids('vswitch_ids', 'vswitch', wanted)
        self.validate_ids('vpc_id', 'vpc', [params['vpc_id']] if params['vpc_id'] else [])
        # The API filters by one VSwitchId only; several ids are picked from the (VPC or region) listing.
        filters = self.build_filters('DescribeVSwitches', VSwitchId=wanted[0] if len(wanted) == 1 else None,
                                     VpcId=params['vpc_id'], ZoneId=params['zone_id'])
        raw = ecs.describe_vswitches(self.clients, self.region, filters)
        if wanted:
            raw = [v for v in raw if v.get('VSwitchId') in wanted]
        records = sorted((vswitch_record(v) for v in raw), key=lambda r: r['id'])
        self.warn_missing('vswitch_ids', wanted, [r['id'] for r in records])
        self.result[self.represent] = records


def main():
    VswitchInfo(VswitchInfo.define_module()).execute()


if __name__ == '__main__':
    main()
