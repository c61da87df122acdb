#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: ecs_eni
short_description: Create, attach, detach and delete secondary elastic network interfaces (ENIs)
version_added: 0.1.0
description:
  - Manages one secondary ENI, found by O(eni_id) or by O(name) (and O(instance_id) when several
    ENIs share a name).
  - With O(state=present) a missing ENI is created in O(vswitch_id) with O(security_groups) and
    attached to O(instance_id) when given; an existing one is attached when it is not. The module
    waits for the ENI to be C(InUse) (or C(Available) when detached).
  - With O(state=absent), or O(attached=false), the ENI is detached; with O(state=absent) it is
    then deleted. A primary ENI is never detached or deleted.
  - The creation request carries a ClientToken derived from the name, instance and vSwitch, so a
    retried request never creates a second ENI.
  - Name, description, tags and security groups are set at creation; differences on an existing
    ENI are reported as a warning and left alone.
author:
  - underlay.alicloud maintainers (!UNKNOWN)
options:
  state:
    description:
      - Whether the ENI should exist.
    type: str
    choices: [present, absent]
    default: present
  eni_id:
    description:
      - The ENI (C(eni-...)). Either this or O(name) is required.
    type: str
  name:
    description:
      - ENI name (2 to 128 characters). Used to find the ENI when O(eni_id) is not given.
    type: str
  instance_id:
    description:
      - Instance the ENI is (to be) attached to.
    type: str
  attached:
    description:
      - Whether the ENI should be attached to O(instance_id).
      - Defaults to V(true) when O(instance_id) is given. V(false) detaches it.
    type: bool
  vswitch_id:
    description:
      - vSwitch of a new ENI. Required to create one.
    type: str
  security_groups:
    description:
      - Security group ids of a new ENI. Required to create one.
    type: list
    elements: str
  description:
    description:
      - Description of a new ENI.
    type: str
  tags:
    description:
      - Tags of a new ENI.
    type: dict
  secondary_private_ip_address_count:
    description:
      - Secondary IPv4 addresses to give a new ENI at creation (1 to 49). Use
        M(underlay.alicloud.ecs_eni_ip) to manage them afterwards.
    type: int
  delete_on_release:
    description:
      - Release the ENI together with the instance.
    type: bool
  eni_quota:
    description:
      - ENI quota of O(instance_id) as in the C(alicloud_eni_quota) host variable (key C(enis),
        counting the primary ENI). Before creating or attaching, the module checks that the
        instance has room for one more ENI, so no orphan ENI is left behind by a failed attach.
      - When omitted the quota is read from DescribeInstances and DescribeInstanceTypes.
    type: dict
  wait:
    description:
      - Wait for attach and detach to complete.
    type: bool
    default: true
  wait_timeout:
    description:
      - Seconds to wait for attach or detach.
    type: int
    default: 120
extends_documentation_fragment:
  - underlay.alicloud.auth
  - underlay.alicloud.attributes
seealso:
  - module: underlay.alicloud.ecs_eni_ip
  - module: underlay.alicloud.ecs_eni_info
"""

EXAMPLES = r"""
- name: A second ENI for the node, in the pod vSwitch
  underlay.alicloud.ecs_eni:
    region: cn-hangzhou
    name: worker-1-eni1
    instance_id: i-bp1worker
    vswitch_id: vsw-bp1pods
    security_groups: [sg-bp1nodes]
    secondary_private_ip_address_count: 5
  register: eni

- name: Detach and delete it
  underlay.alicloud.ecs_eni:
    region: cn-hangzhou
    eni_id: "{{ eni.network_interface.id }}"
    state: absent
"""

RETURN = r"""
network_interface:
  description: The ENI after the change (null when absent), normalised like the C(alicloud_enis) host facts.
  returned: success
  type: dict
  sample:
    id: eni-bp1example
    type: Secondary
    status: InUse
    instance_id: i-bp1worker
    name: worker-1-eni1
    mac: "00:16:3e:00:00:0a"
    device_index: 1
    vswitch_id: vsw-bp1pods
    cidr: 192.168.0.0/24
    gateway: 192.168.0.253
    primary_ip: 192.168.0.20
    secondary_ips: [192.168.0.21]
    ipv6_cidr: null
    ipv6_ips: []
"""

import hashlib
import time

from ansible_collections.underlay.alicloud.plugins.module_utils import ecs
from ansible_collections.underlay.alicloud.plugins.module_utils.facts import eni_details, eni_quota
from ansible_collections.underlay.alicloud.plugins.module_utils.module import AlicloudModule

SETTLED = {'InUse', 'Available'}


class EcsEni(AlicloudModule):
    """Lifecycle of one secondary ENI."""

    represent = 'network_interface'

    @classmethod
    def define_module(cls):
        return cls.create_module(dict(
            state=dict(type='str', choices=['present', 'absent'], default='present'),
            eni_id=dict(type='str'),
            name=dict(type='str'),
            instance_id=dict(type='str'),
            attached=dict(type='bool'),
            vswitch_id=dict(type='str'),
            security_groups=dict(type='list', elements='str'),
            description=dict(type='str'),
            tags=dict(type='dict'),
            secondary_private_ip_address_count=dict(type='int'),
            delete_on_release=dict(type='bool'),
            eni_quota=dict(type='dict'),
            wait=dict(type='bool', default=True),
            wait_timeout=dict(type='int', default=120),
        ), supports_check_mode=True, required_one_of=[('eni_id', 'name')])

    def find(self):
        """The ENI's normalised record, or None."""
        params = self.module.params
        if params['eni_id']:
            raws = ecs.describe_network_interfaces(self.clients, self.region, {'NetworkInterfaceId': [params['eni_id']]})
            if not raws and params['state'] == 'present' and not params['name']:
                self.fail('eni_id: %s not found in region %s' % (params['eni_id'], self.region))
        else:
            raws = ecs.describe_network_interfaces(self.clients, self.region, {'NetworkInterfaceName': params['name']})
            raws = [r for r in raws if r.get('NetworkInterfaceName') == params['name']]
            if len(raws) > 1 and params['instance_id']:
                raws = [r for r in raws if _instance_of(r) in (params['instance_id'], None)]
            if len(raws) > 1:
                self.fail('name: %d ENIs are named %r (%s); give eni_id or instance_id'
                          % (len(raws), params['name'], ', '.join(sorted(r['NetworkInterfaceId'] for r in raws))))
        return self.record(raws[0]) if raws else None

    def record(self, raw):
        vswitches = {}
        if raw.get('VSwitchId'):
            vswitches = dict((v['VSwitchId'], v) for v in
                             ecs.describe_vswitches(self.clients, self.region, {'VSwitchId': raw['VSwitchId']}))
        return eni_details(raw, vswitches)

    def wait_status(self, eni_id, wanted):
        deadline = time.monotonic() + self.module.params['wait_timeout']
        delay = 1.0
        while True:
            raws = ecs.describe_network_interfaces(self.clients, self.region, {'NetworkInterfaceId': [eni_id]})
            status = raws[0].get('Status') if raws else None
            if status == wanted:
                return raws[0]
            if status in SETTLED and status != wanted:
                self.fail('%s: became %s instead of %s; check the instance state and the ENI quota' % (eni_id, status, wanted))
            if time.monotonic() >= deadline:
                self.fail('%s: still %s after %ss, expected %s' % (eni_id, status, self.module.params['wait_timeout'], wanted))
            time.sleep(delay)
            delay = min(delay * 2, 5)

    def check_room(self, instance_id):
        """Fail before any change when ``instance_id`` already has as many ENIs as its type allows."""
        quota = self.module.params['eni_quota']
        if not quota:
            instances = ecs.describe_instances(self.clients, self.region, {'InstanceIds': [instance_id]})
            if not instances:
                self.fail('instance_id: %s not found in region %s' % (instance_id, self.region))
            types = ecs.describe_instance_types(self.clients, [instances[0].get('InstanceType')])
            quota = eni_quota(types[0]) if types else {}
        limit = quota.get('enis')
        attached = ecs.describe_network_interfaces(self.clients, self.region, {'InstanceId': instance_id})
        if limit and len(attached) >= limit:
            self.fail('%s already has %d ENIs, the most its instance type allows (EniQuantity %d counts the primary ENI)'
                      % (instance_id, len(attached), limit))

    def create(self):
        params = self.module.params
        missing = [opt for opt in ('vswitch_id', 'security_groups') if not params[opt]]
        if missing:
            self.fail('%s required to create ENI %r' % (' and '.join(missing), params['name'] or params['eni_id']))
        if params['eni_id']:
            self.fail('eni_id: %s not found in region %s; omit eni_id and give name to create one' % (params['eni_id'], self.region))
        request = {'VSwitchId': params['vswitch_id'], 'SecurityGroupIds': params['security_groups'],
                   'NetworkInterfaceName': params['name'], 'Description': params['description'],
                   'SecondaryPrivateIpAddressCount': params['secondary_private_ip_address_count'],
                   'DeleteOnRelease': params['delete_on_release']}
        if params['tags']:
            request['Tag'] = [{'Key': k, 'Value': v} for k, v in sorted(params['tags'].items())]
        request = dict((k, v) for k, v in request.items() if v is not None)
        token = hashlib.sha256(repr((params['name'], params['instance_id'], sorted(request.items()))).encode()).hexdigest()[:64]
        response = ecs.create_network_interface(self.clients, self.region, request, client_token=token)
        if not response.get('NetworkInterfaceId'):
            self.fail('CreateNetworkInterface returned no ENI id for %r' % params['name'])
        return response['NetworkInterfaceId']

    def warn_drift(self, record):
        params = self.module.params
        drift = []
        if params['vswitch_id'] and params['vswitch_id'] != record['vswitch_id']:
            drift.append('vswitch_id %s (wanted %s)' % (record['vswitch_id'], params['vswitch_id']))
        if params['security_groups'] and sorted(params['security_groups']) != sorted(record['security_group_ids']):
            drift.append('security_groups %s' % ','.join(record['security_group_ids']))
        for key, value in (params['tags'] or {}).items():
            if record['tags'].get(key) != value:
                drift.append('tag %s' % key)
        if drift:
            self.module.warn('%s differs from the request and is left unchanged: %s' % (record['id'], '; '.join(drift)))

    def run(self):
        params = self.module.params
        if params['eni_id']:
            self.validate_ids('eni_id', 'eni', [params['eni_id']])
        for option, kind in (('instance_id', 'instance'), ('vswitch_id', 'vswitch')):
            if params[option]:
                self.validate_ids(option, kind, [params[option]])
        if params['name'] is not None and not 2 <= len(params['name']) <= 128:
            self.fail('name: %r must be 2 to 128 characters long' % params['name'])
        attached = params['attached'] if params['attached'] is not None else bool(params['instance_id'])
        if attached and not params['instance_id'] and params['state'] == 'present':
            self.fail('attached=true needs instance_id')

        record = self.find()
        before = record
        if record and record['type'] == 'Primary' and (params['state'] == 'absent' or not attached):
            self.fail('%s is the primary ENI of %s; a primary ENI is never detached or deleted' % (record['id'], record['instance_id']))
        if record and attached and record['instance_id'] not in (None, params['instance_id']):
            self.fail('%s is attached to %s, not %s; detach it first' % (record['id'], record['instance_id'], params['instance_id']))

        changed = False
        if params['state'] == 'present':
            if attached and (record is None or record['instance_id'] != params['instance_id']):
                self.check_room(params['instance_id'])
            if record is None:
                changed = True
                if not self.module.check_mode:
                    record = self.find_created(self.create())
            else:
                self.warn_drift(record)
            if attached and (record is None or record['instance_id'] != params['instance_id']):
                changed = True
                if not self.module.check_mode:
                    ecs.attach_network_interface(self.clients, self.region, record['id'], params['instance_id'])
                    if params['wait']:
                        self.wait_status(record['id'], 'InUse')
            elif not attached and record and record['instance_id']:
                changed = True
                if not self.module.check_mode:
                    self.detach(record)
        elif record is not None:
            changed = True
            if not self.module.check_mode:
                if record['instance_id']:
                    self.detach(record)
                ecs.delete_network_interface(self.clients, self.region, record['id'])

        after = None
        if params['state'] == 'present':
            after = self.find() if changed and not self.module.check_mode else record
        self.result.update(changed=changed, **{self.represent: after})
        if self.module._diff:
            predicted = _expected(before, params, attached) if changed and self.module.check_mode else after
            self.result['diff'] = {'before': before or {}, 'after': predicted or {}}

    def find_created(self, eni_id):
        raws = ecs.describe_network_interfaces(self.clients, self.region, {'NetworkInterfaceId': [eni_id]})
        if not raws:
            self.fail('%s: created but not visible in DescribeNetworkInterfaces' % eni_id)
        return self.record(raws[0])

    def detach(self, record):
        ecs.detach_network_interface(self.clients, self.region, record['id'], record['instance_id'])
        if self.module.params['wait'] or self.module.params['state'] == 'absent':
            self.wait_status(record['id'], 'Available')


def _instance_of(raw):
    return raw.get('InstanceId') or (raw.get('Attachment') or {}).get('InstanceId') or None


def _expected(before, params, attached):
    """What check mode predicts (the cloud fills ids and addresses on creation)."""
    if params['state'] == 'absent':
        return {}
    after = dict(before or {'name': params['name'], 'vswitch_id': params['vswitch_id'],
                            'security_group_ids': params['security_groups'] or []})
    after['instance_id'] = params['instance_id'] if attached else None
    after['status'] = 'InUse' if attached else 'Available'
    return after


def main():
    EcsEni(EcsEni.define_module()).execute()


if __name__ == '__main__':
    main()
