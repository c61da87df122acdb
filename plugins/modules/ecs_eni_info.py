#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: ecs_eni_info
short_description: Gather elastic network interfaces (ENIs) with their IPv4/IPv6 addresses and vSwitch data
version_added: 0.1.0
description:
  - Lists the ENIs of one region that match all given filters, reading every page
    (DescribeNetworkInterfaces with 500 ENIs per page).
  - Each ENI is normalised like the C(alicloud_enis) host facts (primary IP, sorted secondary IPv4
    and IPv6 addresses, vSwitch CIDR, gateway and IPv6 CIDR) plus its instance, state, name and tags.
author:
  - underlay.alicloud maintainers (!UNKNOWN)
options:
  eni_ids:
    description:
      - Only these ENIs (ids starting with C(eni-)). More than 100 ids are queried in batches.
    type: list
    elements: str
  instance_id:
    description:
      - Only ENIs attached to this instance (C(InstanceId)).
    type: str
  vswitch_id:
    description:
      - Only ENIs in this vSwitch (C(VSwitchId)).
    type: str
  vpc_id:
    description:
      - Only ENIs in this VPC (C(VpcId)).
    type: str
  type:
    description:
      - Only primary or only secondary ENIs (C(Type)).
    type: str
    choices: [Primary, Secondary]
  tags:
    description:
      - Only ENIs carrying all these tags (C(Tag.N.Key)/C(Tag.N.Value)).
    type: dict
  filters:
    description:
      - Further DescribeNetworkInterfaces request parameters by their API names, for example
        C(Status), C(NetworkInterfaceName), C(PrimaryIpAddress), C(SecurityGroupId).
      - The dedicated options above take precedence over the same parameter given here.
        Paging parameters and C(RegionId) are set by the module.
      - Keys are checked before any API call against the request parameters of DescribeNetworkInterfaces (those of
        C(DescribeNetworkInterfacesRequest) in the SDK C(alibabacloud-ecs20140526)), including the C(Key)/C(Value)
        entries of C(Tag); an unknown key fails the task with a message naming it and the nearest valid one,
        because the API would ignore it and return every ENI.
    type: dict
extends_documentation_fragment:
  - underlay.alicloud.auth
notes:
  - Supports check mode; it only reads.
  - Calls DescribeNetworkInterfaces and, for the vSwitch CIDRs, DescribeVSwitches (VPC API).
  - Ids in O(eni_ids) that do not exist are reported in a warning, not as an error.
seealso:
  - module: underlay.alicloud.ecs_instance_info
  - module: underlay.alicloud.vswitch_info
"""

EXAMPLES = r"""
- name: All ENIs of one instance
  underlay.alicloud.ecs_eni_info:
    region: cn-hangzhou
    instance_id: i-bp1worker
  register: worker_enis

- name: Secondary addresses of the worker's second ENI
  ansible.builtin.debug:
    msg: "{{ (worker_enis.network_interfaces | selectattr('device_index', 'equalto', 1) | first).secondary_ips }}"

- name: Secondary ENIs of a VPC that are not attached
  underlay.alicloud.ecs_eni_info:
    region: cn-hangzhou
    vpc_id: vpc-bp1lab
    type: Secondary
    filters:
      Status: Available

- name: ENIs by id
  underlay.alicloud.ecs_eni_info:
    region: cn-hangzhou
    eni_ids: [eni-bp1m0, eni-bp1m1]
"""

RETURN = r"""
network_interfaces:
  description: Matching ENIs, grouped by instance (primary ENI first, then by device index).
  returned: always
  type: list
  elements: dict
  contains:
    id:
      description: ENI id.
      type: str
      sample: eni-bp1m1
    type:
      description: V(Primary) or V(Secondary).
      type: str
    mac:
      description: MAC address, lower case.
      type: str
      sample: "00:16:3e:00:00:02"
    device_index:
      description: Device index on the instance; null when not attached or not reported.
      type: int
      sample: 1
    vswitch_id:
      description: vSwitch of the ENI.
      type: str
    cidr:
      description: IPv4 CIDR of the vSwitch.
      type: str
      sample: 192.168.0.0/24
    gateway:
      description: vSwitch gateway, the last address of the CIDR minus 2.
      type: str
      sample: 192.168.0.253
    primary_ip:
      description: Primary private IPv4 address.
      type: str
    secondary_ips:
      description: Secondary private IPv4 addresses, numerically sorted.
      type: list
      elements: str
    ipv6_cidr:
      description: IPv6 CIDR of the vSwitch, null when IPv6 is not enabled.
      type: str
    ipv6_ips:
      description: IPv6 addresses, sorted.
      type: list
      elements: str
    instance_id:
      description: Instance the ENI is attached to, null when unattached.
      type: str
    status:
      description: ENI state (Available, Attaching, InUse, Detaching, Deleting).
      type: str
      sample: InUse
    name:
      description: ENI name.
      type: str
    description:
      description: ENI description.
      type: str
    vpc_id:
      description: VPC of the ENI.
      type: str
    zone_id:
      description: Zone of the ENI.
      type: str
    security_group_ids:
      description: Security groups of the ENI.
      type: list
      elements: str
    tags:
      description: ENI tags.
      type: dict
"""

from concurrent.futures import ThreadPoolExecutor

from ansible_collections.underlay.alicloud.plugins.module_utils import ecs
from ansible_collections.underlay.alicloud.plugins.module_utils.facts import eni_details, eni_order_key
from ansible_collections.underlay.alicloud.plugins.module_utils.module import AlicloudModule


class EcsEniInfo(AlicloudModule):
    """Read-only listing of normalised ENIs."""

    represent = 'network_interfaces'

    @classmethod
    def define_module(cls):
        return cls.create_module(dict(
            eni_ids=dict(type='list', elements='str'),
            instance_id=dict(type='str'),
            vswitch_id=dict(type='str'),
            vpc_id=dict(type='str'),
            type=dict(type='str', choices=['Primary', 'Secondary']),
            tags=dict(type='dict'),
            filters=dict(type='dict'),
        ), supports_check_mode=True)

    def run(self):
        params = self.module.params
        self.validate_ids('eni_ids', 'eni', params['eni_ids'])
        for option, kind in (('instance_id', 'instance'), ('vswitch_id', 'vswitch'), ('vpc_id', 'vpc')):
            self.validate_ids(option, kind, [params[option]] if params[option] else [])
        filters = self.build_filters(
            'DescribeNetworkInterfaces', NetworkInterfaceId=sorted(set(params['eni_ids'] or [])), InstanceId=params['instance_id'],
            VSwitchId=params['vswitch_id'], VpcId=params['vpc_id'], Type=params['type'], Tag=params['tags'])
        region = self.region
        clients = self.clients
        # The vSwitch listing (for CIDR and gateway) overlaps the ENI pages.
        scope = dict((k, filters[k]) for k in ('VpcId', 'VSwitchId') if filters.get(k))
        with ThreadPoolExecutor(2) as pool:
            vswitches = pool.submit(ecs.describe_vswitches, clients, region, scope)
            raw_enis = ecs.describe_network_interfaces(clients, region, filters)
            vswitches_by_id = dict((v['VSwitchId'], v) for v in vswitches.result())
        records = [eni_details(raw, vswitches_by_id) for raw in raw_enis]
        records.sort(key=lambda r: (r['instance_id'] or '~', eni_order_key(r)))
        self.warn_missing('eni_ids', params['eni_ids'], [r['id'] for r in records])
        self.result[self.represent] = records


def main():
    EcsEniInfo(EcsEniInfo.define_module()).execute()


if __name__ == '__main__':
    main()
