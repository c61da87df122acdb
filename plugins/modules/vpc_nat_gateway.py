#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: vpc_nat_gateway
short_description: Create and delete an Enhanced Internet NAT gateway for pod egress
version_added: 0.2.0
description:
  - Manages one VPC NAT gateway, found by O(nat_gateway_id), or by O(name) in O(vpc_id).
  - With O(state=present) a missing gateway is created as an Enhanced Internet NAT gateway
    (C(NatType=Enhanced), C(NetworkType=internet), pay-as-you-go C(PayByLcu)) in O(vswitch_id),
    tagged C(managed-by=underlay.alicloud), and the module waits until it is C(Available).
    An existing gateway is left as it is; differences are reported as a warning.
  - With O(state=absent) the gateway is deleted only when it carries the C(managed-by=underlay.alicloud)
    tag and its SNAT tables hold no entry that the collection did not create. The deletion uses
    C(Force), which also removes the collection's SNAT entries and unbinds its EIPs.
  - A NAT gateway costs money while it exists.
author:
  - underlay.alicloud maintainers (!UNKNOWN)
options:
  state:
    description:
      - Whether the gateway should exist.
    type: str
    choices: [present, absent]
    default: present
  nat_gateway_id:
    description:
      - The gateway (C(ngw-...)). Either this or O(name) is required.
    type: str
  name:
    description:
      - Gateway name, 2 to 128 characters starting with a letter. With O(vpc_id) it finds the gateway
        when O(nat_gateway_id) is not given.
    type: str
  vpc_id:
    description:
      - VPC of the gateway. Required to create one.
    type: str
  vswitch_id:
    description:
      - vSwitch the gateway takes its private address from; it must belong to O(vpc_id).
        Required to create one.
    type: str
  description:
    description:
      - Description of a new gateway.
    type: str
  tags:
    description:
      - Tags of a new gateway (the C(managed-by) tag is always added).
    type: dict
    default: {}
  wait:
    description:
      - Wait until a new gateway is C(Available) and a deleted one is gone.
    type: bool
    default: true
  wait_timeout:
    description:
      - Seconds to wait.
    type: int
    default: 300
extends_documentation_fragment:
  - underlay.alicloud.auth
  - underlay.alicloud.attributes
seealso:
  - module: underlay.alicloud.vpc_nat_gateway_info
  - module: underlay.alicloud.vpc_eip
  - module: underlay.alicloud.vpc_snat_entry
"""

EXAMPLES = r"""
- name: NAT gateway for the pods' egress
  underlay.alicloud.vpc_nat_gateway:
    region: cn-hangzhou
    name: lab-egress
    vpc_id: vpc-bp1lab
    vswitch_id: vsw-bp1a
  register: nat

- name: Remove it again (only if this collection created it)
  underlay.alicloud.vpc_nat_gateway:
    region: cn-hangzhou
    nat_gateway_id: "{{ nat.nat_gateway.id }}"
    state: absent
"""

RETURN = r"""
nat_gateway:
  description: The gateway after the change (null when absent).
  returned: success
  type: dict
  sample:
    id: ngw-bp1example
    name: lab-egress
    vpc_id: vpc-bp1lab
    vswitch_id: vsw-bp1a
    status: Available
    nat_type: Enhanced
    network_type: internet
    snat_table_ids: [stb-bp1example]
    eips: [{allocation_id: eip-bp1example, ip_address: 47.96.0.10}]
    tags: {managed-by: underlay.alicloud}
    managed: true
"""

import hashlib

from ansible_collections.underlay.alicloud.plugins.module_utils import ecs, vpc
from ansible_collections.underlay.alicloud.plugins.module_utils.egress import (
    check_name, nat_record, snat_record, with_managed_tag)
from ansible_collections.underlay.alicloud.plugins.module_utils.module import AlicloudModule


class VpcNatGateway(AlicloudModule):
    """Lifecycle of one NAT gateway."""

    represent = 'nat_gateway'

    @classmethod
    def define_module(cls):
        return cls.create_module(dict(
            state=dict(type='str', choices=['present', 'absent'], default='present'),
            nat_gateway_id=dict(type='str'),
            name=dict(type='str'),
            vpc_id=dict(type='str'),
            vswitch_id=dict(type='str'),
            description=dict(type='str'),
            tags=dict(type='dict', default={}),
            wait=dict(type='bool', default=True),
            wait_timeout=dict(type='int', default=300),
        ), supports_check_mode=True, required_one_of=[('nat_gateway_id', 'name')])

    def lookup(self, nat_id):
        raws = vpc.describe_nat_gateways(self.clients, self.region, {'NatGatewayId': nat_id})
        return nat_record(raws[0]) if raws else None

    def find(self):
        params = self.module.params
        if params['nat_gateway_id']:
            record = self.lookup(params['nat_gateway_id'])
            if record is None and params['state'] == 'present':
                self.fail('nat_gateway_id: %s not found in region %s' % (params['nat_gateway_id'], self.region))
            return record
        filters = {'Name': params['name']}
        if params['vpc_id']:
            filters['VpcId'] = params['vpc_id']
        found = [nat_record(r) for r in vpc.describe_nat_gateways(self.clients, self.region, filters)]
        found = [r for r in found if r['name'] == params['name']]
        if len(found) > 1:
            self.fail('name: %d NAT gateways are named %r (%s); give nat_gateway_id or vpc_id'
                      % (len(found), params['name'], ', '.join(sorted(r['id'] for r in found))))
        return found[0] if found else None

    def check_vswitch(self):
        params = self.module.params
        raws = ecs.describe_vswitches(self.clients, self.region, {'VSwitchId': params['vswitch_id']})
        if not raws:
            self.fail('vswitch_id: %s not found in region %s' % (params['vswitch_id'], self.region))
        if raws[0].get('VpcId') != params['vpc_id']:
            self.fail('vswitch_id: %s belongs to %s, not to vpc_id %s' % (params['vswitch_id'], raws[0].get('VpcId'), params['vpc_id']))

    def create(self):
        params = self.module.params
        missing = [opt for opt in ('vpc_id', 'vswitch_id', 'name') if not params[opt]]
        if missing:
            self.fail('%s required to create a NAT gateway' % ' and '.join(missing))
        self.check_vswitch()
        if self.module.check_mode:
            return None
        request = {'VpcId': params['vpc_id'], 'VSwitchId': params['vswitch_id'], 'Name': params['name'],
                   'NatType': 'Enhanced', 'NetworkType': 'internet', 'InternetChargeType': 'PayByLcu',
                   'Description': params['description'], 'Tag': with_managed_tag(params['tags'])}
        request = dict((k, v) for k, v in request.items() if v is not None)
        token = hashlib.sha256(repr(sorted((k, str(v)) for k, v in request.items())).encode()).hexdigest()[:64]
        response = vpc.create_nat_gateway(self.clients, self.region, request, client_token=token)
        nat_id = response.get('NatGatewayId')
        if not nat_id:
            self.fail('CreateNatGateway returned no NatGatewayId for %r' % params['name'])
        if params['wait']:
            return vpc.wait_until(lambda: self.lookup(nat_id), lambda r: r is not None and r['status'] == 'Available',
                                  params['wait_timeout'], 'NAT gateway %s' % nat_id)
        return self.lookup(nat_id)

    def foreign_entries(self, record):
        entries = []
        for table in record['snat_table_ids']:
            entries.extend(snat_record(e) for e in vpc.describe_snat_table_entries(self.clients, self.region, table))
        return [e for e in entries if not e['managed']]

    def delete(self, record):
        if not record['managed']:
            self.fail('%s (%s) was not created by this collection (no managed-by=underlay.alicloud tag); it is left alone'
                      % (record['id'], record['name']))
        foreign = self.foreign_entries(record)
        if foreign:
            self.fail('%s has SNAT entries this collection did not create (%s); delete them first or keep the gateway'
                      % (record['id'], ', '.join('%s %s' % (e['id'], e['name'] or e['source_cidr']) for e in foreign)))
        if self.module.check_mode:
            return
        vpc.delete_nat_gateway(self.clients, self.region, record['id'], force=True)
        if self.module.params['wait']:
            vpc.wait_until(lambda: self.lookup(record['id']), lambda r: r is None,
                           self.module.params['wait_timeout'], 'deleting NAT gateway %s' % record['id'])

    def warn_drift(self, record):
        params = self.module.params
        drift = ['%s %s (wanted %s)' % (key, record[key], params[key]) for key in ('vpc_id', 'vswitch_id')
                 if params[key] and record[key] and params[key] != record[key]]
        if drift:
            self.module.warn('%s differs from the request and is left unchanged: %s' % (record['id'], '; '.join(drift)))

    def run(self):
        params = self.module.params
        if params['nat_gateway_id'] and not params['nat_gateway_id'].startswith('ngw-'):
            self.fail('nat_gateway_id: %r is not a NAT gateway id (expected ngw- followed by letters and digits)'
                      % params['nat_gateway_id'])
        self.validate_ids('vpc_id', 'vpc', [params['vpc_id']] if params['vpc_id'] else [])
        self.validate_ids('vswitch_id', 'vswitch', [params['vswitch_id']] if params['vswitch_id'] else [])
        try:
            check_name('name', params['name'])
        except ValueError as exc:
            self.fail(str(exc))
        before = self.find()
        after = before
        changed = False
        if params['state'] == 'present':
            if before is None:
                changed = True
                after = self.create()
                if after is None:   # check mode
                    after = {'id': None, 'name': params['name'], 'vpc_id': params['vpc_id'], 'vswitch_id': params['vswitch_id'],
                             'status': 'Available', 'tags': with_managed_tag(params['tags']), 'managed': True}
            else:
                self.warn_drift(before)
        elif before is not None:
            self.delete(before)
            changed = True
            after = None
        self.result.update(changed=changed, **{self.represent: after})
        if self.module._diff:
            self.result['diff'] = {'before': before or {}, 'after': after or {}}


def main():
    VpcNatGateway(VpcNatGateway.define_module()).execute()


if __name__ == '__main__':
    main()
