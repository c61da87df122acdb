#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: ecs_instance_info
short_description: Gather ECS instances with their ENIs, addresses and ENI quotas
version_added: 0.1.0
description:
  - Lists the ECS instances of one region that match all given filters, with every page read.
  - Each instance is returned as the collection's host facts (the same variables the
    C(underlay.alicloud.ecs) inventory sets), including its ENIs ordered primary first, each
    ENI's primary, secondary IPv4 and IPv6 addresses, the vSwitch CIDR and gateway, and the
    instance type's ENI quota.
  - ENIs and vSwitches are read in bulk (one listing per region or VPC), never per instance.
author:
  - underlay.alicloud maintainers (!UNKNOWN)
options:
  instance_ids:
    description:
      - Only these instances (ids starting with C(i-)). More than 100 ids are queried in batches.
    type: list
    elements: str
  vpc_id:
    description:
      - Only instances in this VPC (C(VpcId)).
    type: str
  vswitch_id:
    description:
      - Only instances whose primary ENI is in this vSwitch (C(VSwitchId)).
    type: str
  zone_id:
    description:
      - Only instances in this zone, for example V(cn-hangzhou-i) (C(ZoneId)).
    type: str
  instance_name:
    description:
      - Only instances with this name; C(*) is a wildcard (C(InstanceName)).
    type: str
  status:
    description:
      - Only instances in this state (C(Status)).
    type: str
    choices: [Pending, Running, Starting, Stopping, Stopped]
  tags:
    description:
      - Only instances carrying all these tags (C(Tag.N.Key)/C(Tag.N.Value)), at most 20.
    type: dict
  filters:
    description:
      - Further DescribeInstances request parameters by their API names, for example
        C(InstanceType), C(SecurityGroupId), C(ResourceGroupId), C(PrivateIpAddresses).
      - The dedicated options above take precedence over the same parameter given here.
        Paging parameters and C(RegionId) are set by the module.
      - Keys are checked before any API call against the request parameters of DescribeInstances (those of
        C(DescribeInstancesRequest) in the SDK C(alibabacloud-ecs20140526)), including the C(Key)/C(Value) entries of
        C(Tag) and C(Filter); an unknown key fails the task with a message naming it and the nearest valid one,
        because the API would ignore it and return every instance.
    type: dict
extends_documentation_fragment:
  - underlay.alicloud.auth
notes:
  - Supports check mode; it only reads.
  - Calls DescribeInstances, DescribeNetworkInterfaces, DescribeVSwitches (VPC API) and DescribeInstanceTypes.
seealso:
  - module: underlay.alicloud.ecs_eni_info
  - module: underlay.alicloud.vswitch_info
"""

EXAMPLES = r"""
- name: Gather the running nodes of cluster lab
  underlay.alicloud.ecs_instance_info:
    region: cn-hangzhou
    status: Running
    tags:
      cluster: lab
  register: lab

- name: Show each node with its secondary addresses
  ansible.builtin.debug:
    msg: "{{ item.alicloud_hostname }}: {{ item.alicloud_enis | map(attribute='secondary_ips') | list }}"
  loop: "{{ lab.instances }}"

- name: Two instances by id, through a local emulator
  underlay.alicloud.ecs_instance_info:
    region: cn-hangzhou
    instance_ids: [i-bp1master, i-bp1worker]
    ecs_endpoint: http://127.0.0.1:8080
    vpc_endpoint: http://127.0.0.1:8080

- name: Instances of one type, with a raw API filter
  underlay.alicloud.ecs_instance_info:
    region: cn-hangzhou
    vpc_id: vpc-bp1lab
    filters:
      InstanceType: ecs.g7.large
"""

RETURN = r"""
instances:
  description: Matching instances sorted by id, as host facts.
  returned: always
  type: list
  elements: dict
  contains:
    alicloud_instance_id:
      description: Instance id.
      type: str
      sample: i-bp1master
    alicloud_region:
      description: Region id.
      type: str
      sample: cn-hangzhou
    alicloud_zone:
      description: Zone id.
      type: str
      sample: cn-hangzhou-i
    alicloud_instance_type:
      description: Instance type.
      type: str
      sample: ecs.g7.large
    alicloud_provider_id:
      description: C(<region>.<instance id>), the Kubernetes provider id the Alibaba CCM expects.
      type: str
      sample: cn-hangzhou.i-bp1master
    alicloud_vpc_id:
      description: VPC id.
      type: str
      sample: vpc-bp1lab
    alicloud_hostname:
      description: ECS host name (the default Kubernetes node name).
      type: str
      sample: master
    alicloud_tags:
      description: Instance tags.
      type: dict
      sample: {cluster: lab, role: master}
    alicloud_eni_quota:
      description:
        - ENI limits of the instance type; null when the type is unknown.
        - C(ipv4_per_eni) counts the primary address of the ENI.
      type: dict
      sample: {enis: 3, ipv4_per_eni: 6, ipv6_per_eni: 6}
    alicloud_enis:
      description: The instance's ENIs, primary first, then by device index.
      type: list
      elements: dict
      contains:
        id:
          description: ENI id.
          type: str
          sample: eni-bp1m0
        type:
          description: V(Primary) or V(Secondary).
          type: str
        mac:
          description: MAC address, lower case.
          type: str
          sample: "00:16:3e:00:00:01"
        device_index:
          description: Device index on the instance; null when the API does not report it.
          type: int
        vswitch_id:
          description: vSwitch of the ENI.
          type: str
        cidr:
          description: IPv4 CIDR of the vSwitch.
          type: str
          sample: 172.31.192.0/20
        gateway:
          description: vSwitch gateway, the last address of the CIDR minus 2.
          type: str
          sample: 172.31.207.253
        primary_ip:
          description: Primary private IPv4 address of the ENI.
          type: str
        secondary_ips:
          description: Secondary private IPv4 addresses, numerically sorted.
          type: list
          elements: str
        ipv6_cidr:
          description: IPv6 CIDR of the vSwitch, null when IPv6 is not enabled.
          type: str
        ipv6_ips:
          description: IPv6 addresses of the ENI, sorted.
          type: list
          elements: str
    alicloud_instance_name:
      description: Instance name.
      type: str
    alicloud_status:
      description: Instance state.
      type: str
      sample: Running
    alicloud_vswitch_id:
      description: vSwitch of the primary ENI.
      type: str
    alicloud_private_ip:
      description: Primary private IPv4 address of the primary ENI.
      type: str
      sample: 172.31.199.183
"""

from ansible_collections.underlay.alicloud.plugins.module_utils.gather import gather_region
from ansible_collections.underlay.alicloud.plugins.module_utils.module import AlicloudModule


class EcsInstanceInfo(AlicloudModule):
    """Read-only listing of instances as host facts."""

    represent = 'instances'

    @classmethod
    def define_module(cls):
        return cls.create_module(dict(
            instance_ids=dict(type='list', elements='str'),
            vpc_id=dict(type='str'),
            vswitch_id=dict(type='str'),
            zone_id=dict(type='str'),
            instance_name=dict(type='str'),
            status=dict(type='str', choices=['Pending', 'Running', 'Starting', 'Stopping', 'Stopped']),
            tags=dict(type='dict'),
            filters=dict(type='dict'),
        ), supports_check_mode=True)

    def run(self):
        params = self.module.params
        self.validate_ids('instance_ids', 'instance', params['instance_ids'])
        self.validate_ids('vpc_id', 'vpc', [params['vpc_id']] if params['vpc_id'] else [])
        self.validate_ids('vswitch_id', 'vswitch', [params['vswitch_id']] if params['vswitch_id'] else [])
        filters = self.build_filters(
            'DescribeInstances', InstanceIds=sorted(set(params['instance_ids'] or [])), VpcId=params['vpc_id'], VSwitchId=params['vswitch_id'],
            ZoneId=params['zone_id'], InstanceName=params['instance_name'], Status=params['status'], Tag=params['tags'])
        region = self.region
        instances = gather_region(self.clients, region, [filters])
        self.warn_missing('instance_ids', params['instance_ids'], [i['alicloud_instance_id'] for i in instances])
        self.result[self.represent] = instances


def main():
    EcsInstanceInfo(EcsInstanceInfo.define_module()).execute()


if __name__ == '__main__':
    main()
