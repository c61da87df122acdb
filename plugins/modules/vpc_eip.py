#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: vpc_eip
short_description: Allocate an elastic IP address (EIP), associate it with a NAT gateway, release it
version_added: 0.2.0
description:
  - Manages one EIP, found by O(allocation_id), O(ip_address) or O(name).
  - With O(state=present) a missing EIP is allocated (pay-as-you-go) with O(bandwidth) and
    O(internet_charge_type) and tagged C(managed-by=underlay.alicloud); with O(nat_gateway_id) it is
    associated with that NAT gateway (C(InstanceType=Nat)). An EIP already associated with something
    else is refused, naming the instance.
  - With O(state=absent) only an EIP carrying the C(managed-by=underlay.alicloud) tag is disassociated
    and released; any other EIP is refused and left alone.
  - An EIP costs money while it is allocated.
author:
  - underlay.alicloud maintainers (!UNKNOWN)
options:
  state:
    description:
      - Whether the EIP should exist.
    type: str
    choices: [present, absent]
    default: present
  allocation_id:
    description:
      - The EIP (C(eip-...)).
    type: str
  ip_address:
    description:
      - The EIP's public address.
    type: str
  name:
    description:
      - EIP name (up to 128 characters). Finds the EIP when neither O(allocation_id) nor O(ip_address)
        is given; required to allocate one.
    type: str
  bandwidth:
    description:
      - Peak bandwidth in Mbit/s of a new EIP; 1 to 200 with C(PayByTraffic), 1 to 500 with C(PayByBandwidth).
    type: int
    default: 5
  internet_charge_type:
    description:
      - Metering of a new EIP.
    type: str
    choices: [PayByTraffic, PayByBandwidth]
    default: PayByTraffic
  nat_gateway_id:
    description:
      - NAT gateway (C(ngw-...)) the EIP should be associated with.
    type: str
  tags:
    description:
      - Tags of a new EIP (the C(managed-by) tag is always added).
    type: dict
    default: {}
  wait:
    description:
      - Wait until association and disassociation are done.
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
seealso:
  - module: underlay.alicloud.vpc_eip_info
  - module: underlay.alicloud.vpc_nat_gateway
"""

EXAMPLES = r"""
- name: An EIP for the NAT gateway
  underlay.alicloud.vpc_eip:
    region: cn-hangzhou
    name: lab-egress-1
    bandwidth: 10
    nat_gateway_id: ngw-bp1example
  register: eip

- name: Release it (only when this collection allocated it)
  underlay.alicloud.vpc_eip:
    region: cn-hangzhou
    allocation_id: "{{ eip.eip.allocation_id }}"
    state: absent
"""

RETURN = r"""
eip:
  description: The EIP after the change (null when absent).
  returned: success
  type: dict
  sample:
    allocation_id: eip-bp1example
    ip_address: 47.96.0.10
    name: lab-egress-1
    status: InUse
    bandwidth: 10
    internet_charge_type: PayByTraffic
    instance_id: ngw-bp1example
    instance_type: Nat
    tags: {managed-by: underlay.alicloud}
    managed: true
"""

import hashlib
import ipaddress

from ansible_collections.underlay.alicloud.plugins.module_utils import vpc
from ansible_collections.underlay.alicloud.plugins.module_utils.egress import (
    EIP_BANDWIDTH_RANGES, check_bandwidth, eip_record, nat_record, with_managed_tag)
from ansible_collections.underlay.alicloud.plugins.module_utils.module import AlicloudModule


class VpcEip(AlicloudModule):
    """Lifecycle of one EIP and its association with a NAT gateway."""

    represent = 'eip'

    @classmethod
    def define_module(cls):
        return cls.create_module(dict(
            state=dict(type='str', choices=['present', 'absent'], default='present'),
            allocation_id=dict(type='str'),
            ip_address=dict(type='str'),
            name=dict(type='str'),
            bandwidth=dict(type='int', default=5),
            internet_charge_type=dict(type='str', choices=['PayByTraffic', 'PayByBandwidth'], default='PayByTraffic'),
            nat_gateway_id=dict(type='str'),
            tags=dict(type='dict', default={}),
            wait=dict(type='bool', default=True),
            wait_timeout=dict(type='int', default=120),
        ), supports_check_mode=True, required_one_of=[('allocation_id', 'ip_address', 'name')])

    def lookup(self, allocation_id):
        raws = vpc.describe_eip_addresses(self.clients, self.region, {'AllocationId': allocation_id})
        return eip_record(raws[0]) if raws else None

    def find(self):
        params = self.module.params
        if params['allocation_id'] or params['ip_address']:
            filters = {'AllocationId': params['allocation_id'], 'EipAddress': params['ip_address']}
            raws = vpc.describe_eip_addresses(self.clients, self.region, dict((k, v) for k, v in filters.items() if v))
            if not raws:
                what = params['allocation_id'] or params['ip_address']
                if params['state'] == 'present':
                    self.fail('%s: %s not found in region %s (an EIP of another region cannot be used here)'
                              % ('allocation_id' if params['allocation_id'] else 'ip_address', what, self.region))
                return None
            return eip_record(raws[0])
        found = [eip_record(r) for r in vpc.describe_eip_addresses(self.clients, self.region, {'EipName': params['name']})]
        found = [r for r in found if r['name'] == params['name']]
        if len(found) > 1:
            self.fail('name: %d EIPs are named %r (%s); give allocation_id'
                      % (len(found), params['name'], ', '.join(sorted(r['allocation_id'] for r in found))))
        return found[0] if found else None

    def allocate(self):
        params = self.module.params
        if not params['name']:
            self.fail('name is required to allocate an EIP')
        if self.module.check_mode:
            return {'allocation_id': None, 'ip_address': None, 'name': params['name'], 'status': 'Available',
                    'bandwidth': params['bandwidth'], 'internet_charge_type': params['internet_charge_type'],
                    'instance_id': None, 'instance_type': None, 'tags': with_managed_tag(params['tags']), 'managed': True}
        request = {'Name': params['name'], 'Bandwidth': params['bandwidth'], 'InstanceChargeType': 'PostPaid',
                   'InternetChargeType': params['internet_charge_type'], 'Tag': with_managed_tag(params['tags'])}
        token = hashlib.sha256(repr(sorted((k, str(v)) for k, v in request.items())).encode()).hexdigest()[:64]
        response = vpc.allocate_eip_address(self.clients, self.region, request, client_token=token)
        if not response.get('AllocationId'):
            self.fail('AllocateEipAddress returned no AllocationId for %r' % params['name'])
        return self.lookup(response['AllocationId'])

    def check_nat(self, nat_id):
        raws = vpc.describe_nat_gateways(self.clients, self.region, {'NatGatewayId': nat_id})
        if not raws:
            self.fail('nat_gateway_id: %s not found in region %s' % (nat_id, self.region))
        return nat_record(raws[0])

    def wait_status(self, allocation_id, status):
        if self.module.params['wait'] and not self.module.check_mode:
            return vpc.wait_until(lambda: self.lookup(allocation_id), lambda r: r is not None and r['status'] == status,
                                  self.module.params['wait_timeout'], 'EIP %s' % allocation_id)
        return self.lookup(allocation_id)

    def present(self, record):
        params = self.module.params
        changed = False
        nat_id = params['nat_gateway_id']
        if nat_id:
            self.check_nat(nat_id)
        if record is None:
            record = self.allocate()
            changed = True
        if nat_id and record['instance_id'] != nat_id:
            if record['instance_id']:
                self.fail('EIP %s (%s) is already associated with %s %s; disassociate it first or use another EIP'
                          % (record['allocation_id'], record['ip_address'], record['instance_type'], record['instance_id']))
            changed = True
            if self.module.check_mode:
                record = dict(record, instance_id=nat_id, instance_type='Nat', status='InUse')
            else:
                token = hashlib.sha256(('%s:%s' % (record['allocation_id'], nat_id)).encode()).hexdigest()[:64]
                vpc.associate_eip_address(self.clients, self.region, record['allocation_id'], nat_id, 'Nat', client_token=token)
                record = self.wait_status(record['allocation_id'], 'InUse')
        return changed, record

    def absent(self, record):
        if not record['managed']:
            self.fail('EIP %s (%s) was not allocated by this collection (no managed-by=underlay.alicloud tag); it is left alone'
                      % (record['allocation_id'], record['ip_address']))
        if self.module.check_mode:
            return
        if record['instance_id']:
            vpc.unassociate_eip_address(self.clients, self.region, record['allocation_id'], record['instance_id'],
                                        record['instance_type'] or 'Nat')
            self.wait_status(record['allocation_id'], 'Available')
        vpc.release_eip_address(self.clients, self.region, record['allocation_id'])

    def run(self):
        params = self.module.params
        if params['allocation_id'] and not params['allocation_id'].startswith('eip-'):
            self.fail('allocation_id: %r is not an EIP allocation id (expected eip- followed by letters and digits)' % params['allocation_id'])
        if params['nat_gateway_id'] and not params['nat_gateway_id'].startswith('ngw-'):
            self.fail('nat_gateway_id: %r is not a NAT gateway id (expected ngw- followed by letters and digits)' % params['nat_gateway_id'])
        if params['ip_address']:
            try:
                if ipaddress.ip_address(params['ip_address']).version != 4:
                    raise ValueError
            except ValueError:
                self.fail('ip_address: %r is not an IPv4 address' % params['ip_address'])
        if params['name'] is not None and (len(params['name']) > 128 or params['name'].startswith(('http://', 'https://'))):
            self.fail('name: %r must be at most 128 characters and not start with http:// or https://' % params['name'])
        try:
            check_bandwidth('bandwidth', params['bandwidth'], params['internet_charge_type'], EIP_BANDWIDTH_RANGES)
        except ValueError as exc:
            self.fail(str(exc))
        before = self.find()
        after = None
        changed = False
        if params['state'] == 'present':
            changed, after = self.present(before)
        elif before is not None:
            self.absent(before)
            changed = True
        self.result.update(changed=changed, **{self.represent: after})
        if self.module._diff:
            self.result['diff'] = {'before': before or {}, 'after': after or {}}


def main():
    VpcEip(VpcEip.define_module()).execute()


if __name__ == '__main__':
    main()
