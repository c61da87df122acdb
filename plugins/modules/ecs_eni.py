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
  - The creation request carries a ClientToken derived from the name, instance and request, so a
    retried request, or another run creating the same ENI at the same time, never creates a second
    ENI. When the token replays an earlier creation whose ENI has been deleted since, the module
    creates it again with a token unique to the run.
  - Before creating or attaching, the module checks that the vSwitch is in the zone and VPC of
    O(instance_id), that the security groups exist in that VPC, and that the instance has room for
    one more ENI. When attaching an ENI this run created still fails, the ENI is deleted again.
  - An ENI found C(Attaching) or C(Detaching) (another run, or a lost answer) is waited for until it
    is stable, at most O(wait_timeout) seconds, before anything is decided. After a refused attach,
    detach or delete the ENI is read again, and when it is already where it should be (the answer
    to an earlier attempt was lost) that is success.
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
  ipv6_address_count:
    description:
      - IPv6 addresses to give a new ENI at creation (1 to 10); its vSwitch needs an IPv6 CIDR. Use
        M(underlay.alicloud.ecs_eni_ip) to manage them afterwards.
    type: int
    version_added: 0.2.0
  delete_on_release:
    description:
      - Release the ENI together with the instance.
    type: bool
  eni_quota:
    description:
      - ENI quota of O(instance_id) as in the C(alicloud_eni_quota) host variable (key C(enis),
        counting the primary ENI). Before creating or attaching, the module checks that the
        instance has room for one more ENI, so no orphan ENI is left behind by a failed attach.
      - When omitted the quota is read from DescribeInstanceTypes.
    type: dict
  wait:
    description:
      - Wait for attach and detach to complete.
    type: bool
    default: true
  wait_timeout:
    description:
      - Seconds to wait for attach or detach, and for an ENI found C(Attaching) or C(Detaching) to
        become stable.
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

import time

from ansible_collections.underlay.alicloud.plugins.module_utils import ecs
from ansible_collections.underlay.alicloud.plugins.module_utils.errors import AlicloudApiError, is_not_found
from ansible_collections.underlay.alicloud.plugins.module_utils.facts import eni_details, eni_quota
from ansible_collections.underlay.alicloud.plugins.module_utils.module import AlicloudModule, client_token

SETTLED = {'InUse', 'Available'}
# How long a just-created ENI may take to show up in DescribeNetworkInterfaces.
CREATED_VISIBLE_SECONDS = 5


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
            ipv6_address_count=dict(type='int'),
            delete_on_release=dict(type='bool'),
            eni_quota=dict(type='dict'),
            wait=dict(type='bool', default=True),
            wait_timeout=dict(type='int', default=120),
        ), supports_check_mode=True, required_one_of=[('eni_id', 'name')])

    def describe(self, eni_id):
        """The ENI's raw API record, or None."""
        raws = ecs.describe_network_interfaces(self.clients, self.region, {'NetworkInterfaceId': [eni_id]})
        return raws[0] if raws else None

    def find(self):
        """The ENI's normalised record in a stable state (InUse or Available), or None."""
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
        raw = raws[0] if raws else None
        if raw and raw.get('Status') not in SETTLED:
            # Attaching/Detaching (another run, a lost answer, a slow cloud): decide on a stable state only.
            raw = self.wait_status(raw['NetworkInterfaceId'], SETTLED)
        return self.record(raw) if raw else None

    def record(self, raw):
        vswitches = {}
        if raw.get('VSwitchId'):
            vswitches = dict((v['VSwitchId'], v) for v in
                             ecs.describe_vswitches(self.clients, self.region, {'VSwitchId': raw['VSwitchId']}))
        return eni_details(raw, vswitches)

    def wait_status(self, eni_id, wanted):
        """Poll until the ENI's status is one of ``wanted`` (None when it is gone); bounded by wait_timeout."""
        deadline = time.monotonic() + self.module.params['wait_timeout']
        delay = 1.0
        while True:
            raw = self.describe(eni_id)
            status = raw.get('Status') if raw else None
            if status in wanted or (raw is None and wanted == SETTLED):
                return raw
            if status in SETTLED:
                self.fail('%s: became %s instead of %s; check the instance state and the ENI quota'
                          % (eni_id, status, ' or '.join(sorted(wanted))))
            if time.monotonic() >= deadline:
                self.fail('%s: still %s after %ss, expected %s'
                          % (eni_id, status, self.module.params['wait_timeout'], ' or '.join(sorted(wanted))))
            time.sleep(delay)
            delay = min(delay * 2, 5)

    def describe_instance(self, instance_id):
        instances = ecs.describe_instances(self.clients, self.region, {'InstanceIds': [instance_id]})
        if not instances:
            self.fail('instance_id: %s not found in region %s' % (instance_id, self.region))
        return instances[0]

    def check_room(self, instance):
        """Fail before any change when the instance already has as many ENIs as its type allows."""
        instance_id = instance['InstanceId']
        quota = self.module.params['eni_quota']
        if not quota:
            types = ecs.describe_instance_types(self.clients, [instance.get('InstanceType')])
            quota = eni_quota(types[0]) if types else {}
        limit = quota.get('enis')
        attached = ecs.describe_network_interfaces(self.clients, self.region, {'InstanceId': instance_id})
        if limit and len(attached) >= limit:
            self.fail('%s already has %d ENIs, the most its instance type allows (EniQuantity %d counts the primary ENI)'
                      % (instance_id, len(attached), limit))

    def check_placement(self, instance, vswitch_id, groups=None):
        """Fail before any change unless an ENI of ``vswitch_id`` (with ``groups``) can join ``instance``.

        Attach refuses an ENI of another zone or VPC only after the ENI was created; checking first
        means a failed run leaves no ENI behind.
        """
        vswitches = ecs.describe_vswitches(self.clients, self.region, {'VSwitchId': vswitch_id})
        if not vswitches:
            self.fail('vswitch_id: %s not found in region %s' % (vswitch_id, self.region))
        vsw = vswitches[0]
        zone, vpc = instance.get('ZoneId'), (instance.get('VpcAttributes') or {}).get('VpcId')
        if vsw.get('VpcId') != vpc:
            self.fail('vswitch_id: %s is in VPC %s but instance %s is in VPC %s; pick a vSwitch of %s'
                      % (vswitch_id, vsw.get('VpcId'), instance['InstanceId'], vpc, vpc))
        if vsw.get('ZoneId') != zone:
            self.fail('vswitch_id: %s is in zone %s but instance %s is in zone %s; an ENI attaches only to instances of '
                      "its vSwitch's zone, pick a vSwitch of %s" % (vswitch_id, vsw.get('ZoneId'), instance['InstanceId'], zone, zone))
        if groups:
            found = dict((g['SecurityGroupId'], g.get('VpcId')) for g in ecs.describe_security_groups(self.clients, self.region, groups))
            unknown = [g for g in groups if g not in found]
            if unknown:
                self.fail('security_groups: %s not found in region %s' % (', '.join(unknown), self.region))
            foreign = [g for g in groups if found[g] != vsw.get('VpcId')]
            if foreign:
                self.fail('security_groups: %s not in VPC %s of vSwitch %s' % (', '.join(foreign), vsw.get('VpcId'), vswitch_id))

    def create(self):
        """Create the ENI; returns its raw record."""
        params = self.module.params
        request = {'VSwitchId': params['vswitch_id'], 'SecurityGroupIds': params['security_groups'],
                   'NetworkInterfaceName': params['name'], 'Description': params['description'],
                   'SecondaryPrivateIpAddressCount': params['secondary_private_ip_address_count'],
                   'Ipv6AddressCount': params['ipv6_address_count'],
                   'DeleteOnRelease': params['delete_on_release']}
        if params['tags']:
            request['Tag'] = [{'Key': k, 'Value': v} for k, v in sorted(params['tags'].items())]
        request = dict((k, v) for k, v in request.items() if v is not None)
        # Same intent, same token: two runs creating this ENI at once get one ENI. When the token
        # replays an earlier create whose ENI was deleted since, the id it answers is gone: create
        # again with a token no earlier run can have used.
        material = (params['name'], params['instance_id'], sorted(request.items()))
        for token in (client_token(*material), client_token(*material + (self.run_nonce,))):
            response = self.write(ecs.create_network_interface, self.region, request, client_token=token)
            if not response.get('NetworkInterfaceId'):
                self.fail('CreateNetworkInterface returned no ENI id for %r' % params['name'])
            raw = self.wait_created(response['NetworkInterfaceId'])
            if raw is not None:
                return raw
        return self.fail('%s: created but not visible in DescribeNetworkInterfaces' % response['NetworkInterfaceId'])

    def wait_created(self, eni_id):
        deadline = time.monotonic() + min(CREATED_VISIBLE_SECONDS, self.module.params['wait_timeout'])
        delay = 0.5
        while True:
            raw = self.describe(eni_id)
            if raw is not None or time.monotonic() >= deadline:
                return raw
            time.sleep(delay)
            delay *= 2

    def attach(self, record, instance_id):
        try:
            self.write(ecs.attach_network_interface, self.region, record['id'], instance_id)
        except AlicloudApiError:
            raw = self.describe(record['id'])
            # Attaching or attached to this instance: the retry of an attach whose answer was lost,
            # or another run doing the same. Anything else is a real failure.
            if not raw or _instance_of(raw) != instance_id or raw.get('Status') not in ('Attaching', 'InUse'):
                raise
            self.result['changed'] = True
        if self.module.params['wait']:
            self.wait_status(record['id'], {'InUse'})

    def detach(self, record):
        try:
            self.write(ecs.detach_network_interface, self.region, record['id'], record['instance_id'])
        except AlicloudApiError:
            raw = self.describe(record['id'])
            if raw is not None and raw.get('Status') not in ('Detaching', 'Available'):
                raise
            self.result['changed'] = True
        if self.module.params['wait'] or self.module.params['state'] == 'absent':
            self.wait_status(record['id'], {'Available'})

    def delete(self, eni_id):
        try:
            self.write(ecs.delete_network_interface, self.region, eni_id)
        except AlicloudApiError as err:
            if not is_not_found(err):    # gone already: the retry of a delete whose answer was lost
                raise
            self.result['changed'] = True

    def discard(self, eni_id, err):
        """Delete the ENI this run created after attaching it failed, then fail: a failed run leaves nothing behind."""
        try:
            self.delete(eni_id)
        except AlicloudApiError as cleanup:
            self.fail('%s; the ENI %s created by this run could not be deleted (%s): delete it by hand'
                      % (err, eni_id, cleanup.code), error=err.to_dict())
        self.fail('%s; the ENI %s created by this run was deleted again' % (err, eni_id), error=err.to_dict())

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

    def validate(self):
        params = self.module.params
        if params['eni_id']:
            self.validate_ids('eni_id', 'eni', [params['eni_id']])
        for option, kind in (('instance_id', 'instance'), ('vswitch_id', 'vswitch')):
            if params[option]:
                self.validate_ids(option, kind, [params[option]])
        if params['name'] is not None and not 2 <= len(params['name']) <= 128:
            self.fail('name: %r must be 2 to 128 characters long' % params['name'])
        if params['wait_timeout'] < 0:
            self.fail('wait_timeout must be 0 or more, got %s' % params['wait_timeout'])
        attached = params['attached'] if params['attached'] is not None else bool(params['instance_id'])
        if attached and not params['instance_id'] and params['state'] == 'present':
            self.fail('attached=true needs instance_id')
        return attached

    def present(self, record, attached):
        """Create, attach or detach as needed; returns (a change is or, in check mode, would be made, ENI record)."""
        params = self.module.params
        attach = attached and (record is None or record['instance_id'] != params['instance_id'])
        if record is None:
            missing = [opt for opt in ('vswitch_id', 'security_groups') if not params[opt]]
            if missing:
                self.fail('%s required to create ENI %r' % (' and '.join(missing), params['name'] or params['eni_id']))
            if params['eni_id']:
                self.fail('eni_id: %s not found in region %s; omit eni_id and give name to create one' % (params['eni_id'], self.region))
        else:
            self.warn_drift(record)
        if attach:
            instance = self.describe_instance(params['instance_id'])
            self.check_placement(instance, record['vswitch_id'] if record else params['vswitch_id'],
                                 params['security_groups'] if record is None else None)
            self.check_room(instance)
        if self.module.check_mode:
            return record is None or attach or (not attached and bool(record['instance_id'])), record
        created = None
        if record is None:
            record = self.record(self.create())
            created = record['id']
        if attach:
            try:
                self.attach(record, params['instance_id'])
            except AlicloudApiError as err:
                if created:
                    self.discard(created, err)
                raise
        elif not attached and record['instance_id']:
            self.detach(record)
        return self.result['changed'], record

    def run(self):
        params = self.module.params
        attached = self.validate()
        record = self.find()
        before = record
        if record and record['type'] == 'Primary' and (params['state'] == 'absent' or not attached):
            self.fail('%s is the primary ENI of %s; a primary ENI is never detached or deleted' % (record['id'], record['instance_id']))
        if record and attached and record['instance_id'] not in (None, params['instance_id']):
            self.fail('%s is attached to %s, not %s; detach it first' % (record['id'], record['instance_id'], params['instance_id']))

        after = None
        if params['state'] == 'present':
            changed, after = self.present(record, attached)
            if changed and not self.module.check_mode:
                after = self.record(self.describe(after['id']))
        else:
            changed = record is not None
            if changed and not self.module.check_mode:
                if record['instance_id']:
                    self.detach(record)
                self.delete(record['id'])
        self.result.update(changed=changed, **{self.represent: after})
        if self.module._diff:
            predicted = _expected(before, params, attached) if changed and self.module.check_mode else after
            self.result['diff'] = {'before': before or {}, 'after': predicted or {}}


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
