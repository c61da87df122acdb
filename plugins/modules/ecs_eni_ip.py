#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: ecs_eni_ip
short_description: Manage the secondary private IPv4 and IPv6 addresses of one ENI
version_added: 0.1.0
description:
  - Brings the secondary addresses of one elastic network interface (ENI) to a desired state,
    given as a number of addresses, a list of addresses that must be present, or both.
  - Quota-aware. The per-ENI limits of the instance type (C(EniPrivateIpAddressQuantity), which
    counts the ENI's primary address, and C(EniIpv6AddressQuantity)) are checked before any
    address is assigned or unassigned; an unattached ENI takes at most 49 secondary IPv4 and
    10 IPv6 addresses.
  - Never unassigns an address listed in O(protected_ips) (for example the addresses Spiderpool
    has allocated to pods); the module fails naming it and changes nothing.
  - Assign calls carry a ClientToken derived from the intended change and a per-run nonce, so a
    retried request never assigns twice, and a later run never gets the replayed answer of an
    earlier one. Calls are batched to the API's per-call limits. After a change the module waits
    until the API shows the new addresses.
  - ECS has no conditional assignment. When another run assigns addresses to the same ENI at the
    same time as a count-based assignment of this one, the ENI ends with more addresses than
    either asked for; the module detects this after its own change and fails naming the extra
    addresses (with C(changed=true)), instead of reporting success.
author:
  - underlay.alicloud maintainers (!UNKNOWN)
options:
  eni_id:
    description:
      - The ENI (C(eni-...)).
    type: str
    required: true
  secondary_private_ip_address_count:
    description:
      - Desired number of secondary IPv4 addresses (the primary address is not counted).
      - Addresses are added until the ENI has this many; with
        O(purge_secondary_private_ip_addresses=true) surplus addresses are removed, highest first,
        never touching O(secondary_private_ip_addresses) or O(protected_ips).
    type: int
  secondary_private_ip_addresses:
    description:
      - Secondary IPv4 addresses that must be present on the ENI.
    type: list
    elements: str
  purge_secondary_private_ip_addresses:
    description:
      - Remove secondary IPv4 addresses that are neither listed in O(secondary_private_ip_addresses)
        nor needed to reach O(secondary_private_ip_address_count).
    type: bool
    default: false
  ipv6_address_count:
    description:
      - Desired number of IPv6 addresses. The ENI's vSwitch must have an IPv6 CIDR.
    type: int
  ipv6_addresses:
    description:
      - IPv6 addresses that must be present on the ENI.
    type: list
    elements: str
  purge_ipv6_addresses:
    description:
      - Remove IPv6 addresses that are neither listed in O(ipv6_addresses) nor needed to reach
        O(ipv6_address_count).
    type: bool
    default: false
  protected_ips:
    description:
      - Addresses that must never be unassigned (IPv4 or IPv6). A plan that would remove one fails
        before any change, naming it.
    type: list
    elements: str
    default: []
  eni_quota:
    description:
      - Per-ENI quota of the instance the ENI is attached to, as in the C(alicloud_eni_quota) host
        variable (keys C(ipv4_per_eni), counting the primary address, and C(ipv6_per_eni)).
      - Saves two API calls per ENI when the caller already knows it (the inventory plugin provides
        it); when omitted the module reads it from DescribeInstances and DescribeInstanceTypes.
    type: dict
  wait:
    description:
      - Wait until the API shows the added and removed addresses.
    type: bool
    default: true
  wait_timeout:
    description:
      - Seconds to wait for the addresses to become visible.
    type: int
    default: 60
extends_documentation_fragment:
  - underlay.alicloud.auth
  - underlay.alicloud.attributes
notes:
  - Unassign calls take no ClientToken in the Alibaba API. When a repeated unassign is refused
    because an address is gone already (the answer to the first attempt was lost), the module
    re-reads the ENI and unassigns only what is still there.
seealso:
  - module: underlay.alicloud.ecs_eni_info
  - module: underlay.alicloud.ecs_eni
"""

EXAMPLES = r"""
- name: Give the ENI five secondary IPv4 addresses
  underlay.alicloud.ecs_eni_ip:
    region: cn-hangzhou
    eni_id: eni-bp1example
    secondary_private_ip_address_count: 5

- name: Exactly these addresses, never removing those pods use
  underlay.alicloud.ecs_eni_ip:
    region: cn-hangzhou
    eni_id: eni-bp1example
    secondary_private_ip_addresses: [172.31.199.185, 172.31.199.186]
    purge_secondary_private_ip_addresses: true
    protected_ips: "{{ allocated_pod_ips }}"

- name: Dual stack, six IPv6 addresses
  underlay.alicloud.ecs_eni_ip:
    region: cn-hangzhou
    eni_id: eni-bp1example
    ipv6_address_count: 6
"""

RETURN = r"""
network_interface:
  description: The ENI after the change, normalised like the C(alicloud_enis) host facts.
  returned: success
  type: dict
  sample:
    id: eni-bp1example
    type: Secondary
    mac: "00:16:3e:00:00:02"
    device_index: 1
    vswitch_id: vsw-bp1b
    cidr: 192.168.0.0/24
    gateway: 192.168.0.253
    primary_ip: 192.168.0.150
    secondary_ips: [192.168.0.156, 192.168.0.157]
    ipv6_cidr: null
    ipv6_ips: []
    instance_id: i-bp1example
    status: InUse
added_private_ips:
  description: Secondary IPv4 addresses assigned by this run (in check mode, the explicit ones that would be).
  returned: success
  type: list
  elements: str
removed_private_ips:
  description: Secondary IPv4 addresses unassigned by this run.
  returned: success
  type: list
  elements: str
added_ipv6_ips:
  description: IPv6 addresses assigned by this run.
  returned: success
  type: list
  elements: str
removed_ipv6_ips:
  description: IPv6 addresses unassigned by this run.
  returned: success
  type: list
  elements: str
"""

import time

from ansible_collections.underlay.alicloud.plugins.module_utils import ecs
from ansible_collections.underlay.alicloud.plugins.module_utils.eni_ip_plan import (
    IPV4_BATCH, IPV6_BATCH, EniIpPlanError, batches, count_batches, plan_family, sort_ips)
from ansible_collections.underlay.alicloud.plugins.module_utils.errors import AlicloudApiError
from ansible_collections.underlay.alicloud.plugins.module_utils.facts import eni_details, eni_quota
from ansible_collections.underlay.alicloud.plugins.module_utils.module import AlicloudModule, client_token

# An unattached (Available) ENI accepts these many secondary addresses whatever the instance type.
UNATTACHED_LIMITS = {'ipv4_per_eni': 50, 'ipv6_per_eni': 10}

FAMILIES = (
    # (IP version, count option, list option, purge option, record key, API kind)
    (4, 'secondary_private_ip_address_count', 'secondary_private_ip_addresses',
     'purge_secondary_private_ip_addresses', 'secondary_ips', 'private'),
    (6, 'ipv6_address_count', 'ipv6_addresses', 'purge_ipv6_addresses', 'ipv6_ips', 'ipv6'),
)
RECORD_KEYS = dict((family[5], family[4]) for family in FAMILIES)
LABELS = {4: 'secondary IPv4 addresses', 6: 'IPv6 addresses'}
QUOTA_NOTES = {
    4: ' (instance type EniPrivateIpAddressQuantity minus the primary address; 49 for an unattached ENI)',
    6: ' (instance type EniIpv6AddressQuantity; 10 for an unattached ENI)',
}
# kind -> (assign, unassign, assign action name, addresses per call)
ACTIONS = {
    'private': (ecs.assign_private_ip_addresses, ecs.unassign_private_ip_addresses, 'AssignPrivateIpAddresses', IPV4_BATCH),
    'ipv6': (ecs.assign_ipv6_addresses, ecs.unassign_ipv6_addresses, 'AssignIpv6Addresses', IPV6_BATCH),
}


class EcsEniIp(AlicloudModule):
    """Desired-state management of one ENI's secondary IPv4/IPv6 addresses."""

    represent = 'network_interface'

    @classmethod
    def define_module(cls):
        return cls.create_module(dict(
            eni_id=dict(type='str', required=True),
            secondary_private_ip_address_count=dict(type='int'),
            secondary_private_ip_addresses=dict(type='list', elements='str'),
            purge_secondary_private_ip_addresses=dict(type='bool', default=False),
            ipv6_address_count=dict(type='int'),
            ipv6_addresses=dict(type='list', elements='str'),
            purge_ipv6_addresses=dict(type='bool', default=False),
            protected_ips=dict(type='list', elements='str', default=[]),
            eni_quota=dict(type='dict'),
            wait=dict(type='bool', default=True),
            wait_timeout=dict(type='int', default=60),
        ), supports_check_mode=True)

    def read(self, with_vswitch=True):
        """The ENI as a raw API dict and as a normalised record."""
        eni_id = self.module.params['eni_id']
        raw = ecs.describe_network_interfaces(self.clients, self.region, {'NetworkInterfaceId': [eni_id]})
        if not raw:
            self.fail('eni_id: %s not found in region %s' % (eni_id, self.region))
        vswitches = {}
        if with_vswitch and raw[0].get('VSwitchId'):
            vswitches = dict((v['VSwitchId'], v) for v in
                             ecs.describe_vswitches(self.clients, self.region, {'VSwitchId': raw[0]['VSwitchId']}))
        return raw[0], eni_details(raw[0], vswitches)

    def quota(self, record):
        """Secondary-address limits per family for this ENI (instance-type quota minus the primary)."""
        quota = self.module.params['eni_quota']
        if not quota:
            if record['status'] != 'InUse' or not record['instance_id']:
                quota = UNATTACHED_LIMITS
            else:
                instances = ecs.describe_instances(self.clients, self.region, {'InstanceIds': [record['instance_id']]})
                itype = instances[0].get('InstanceType') if instances else None
                types = ecs.describe_instance_types(self.clients, [itype]) if itype else []
                quota = eni_quota(types[0]) if types else {}
        ipv4 = quota.get('ipv4_per_eni')
        return {4: ipv4 - 1 if ipv4 else None, 6: quota.get('ipv6_per_eni')}

    def plan(self, record, limits):
        params = self.module.params
        plans = {}
        for version, count_opt, list_opt, purge_opt, key, kind in FAMILIES:
            if params[count_opt] is None and not params[list_opt] and not params[purge_opt]:
                continue
            if version == 6 and not record['ipv6_cidr'] and (params[count_opt] or params[list_opt]):
                self.fail('%s: vSwitch %s of %s has no IPv6 CIDR; enable IPv6 on the vSwitch first'
                          % (count_opt if params[count_opt] else list_opt, record['vswitch_id'], record['id']))
            protected = [ip for ip in params['protected_ips'] if (':' in ip) == (version == 6)]
            try:
                plans[kind] = plan_family(
                    record[key], count=params[count_opt], addresses=params[list_opt], purge=params[purge_opt],
                    protected=protected, limit=limits[version], version=version, primary=record['primary_ip'],
                    label=LABELS[version])
            except EniIpPlanError as exc:
                self.fail('%s: %s%s' % (record['id'], exc, QUOTA_NOTES[version] if 'quota allows' in str(exc) else ''))
        return plans

    def apply(self, record, plans):
        """Unassign first (frees quota), then assign explicit addresses, then by count."""
        eni_id = record['id']
        added = {'private': [], 'ipv6': []}
        for kind, plan in sorted(plans.items()):
            assign, unassign, action, size = ACTIONS[kind]
            for chunk in batches(plan['remove'], size):
                self.unassign(unassign, eni_id, kind, chunk)
            # The token holds what the ENI had when planned, the request and the run's nonce: the
            # retries of this call share it, a later run (after 3 -> 0 -> 3, say) never does.
            seen = ','.join(record[RECORD_KEYS[kind]])
            for chunk in batches(plan['add'], size):
                self.write(assign, self.region, eni_id, addresses=chunk,
                           client_token=client_token(eni_id, action, seen, chunk, self.run_nonce))
            for index, count in enumerate(count_batches(plan['add_count'], size)):
                response = self.write(assign, self.region, eni_id, count=count,
                                      client_token=client_token(eni_id, action, seen, (index, count), self.run_nonce))
                added[kind].extend(_assigned(response, kind))
            added[kind] = sort_ips(set(added[kind]) | set(plan['add']))
        return added

    def unassign(self, unassign, eni_id, kind, chunk):
        """Unassign ``chunk``. Unassign takes no ClientToken: when a retry is refused because an
        address is gone already (the first attempt ran but its answer was lost, or another run
        removed it), unassign only what the ENI still holds."""
        try:
            self.write(unassign, self.region, eni_id, chunk)
        except AlicloudApiError as err:
            if err.code != 'InvalidIp.IpUnassigned':
                raise
            left = sort_ips(set(self.read(with_vswitch=False)[1][RECORD_KEYS[kind]]) & set(chunk))
            self.result['changed'] = True
            if left:
                self.write(unassign, self.region, eni_id, left)

    def check_overallocation(self, record, plans, added):
        """Fail when addresses appeared beside this run's count-based assignment.

        ECS has no conditional assign, so two count-based runs on one ENI at the same time both
        add (4 and 5 wanted from 2 end at 9). Of two overlapping runs, the one that reads last sees
        both assignments, so at least one of them always reports it.
        """
        for version, count_opt, _list_opt, purge_opt, key, kind in FAMILIES:
            plan = plans.get(kind)
            if not plan or not plan['add_count'] or len(record[key]) <= plan['total_after']:
                continue
            extra = sort_ips(set(record[key]) - set(plan['after']) - set(added[kind]))
            self.fail('%s: holds %d %s, %d wanted: %s appeared while this run assigned by count (another run or user '
                      'assigned at the same time; ECS has no conditional assign). Re-run with %s=%d and %s=true to '
                      'remove the surplus' % (record['id'], len(record[key]), LABELS[version], plan['total_after'],
                                              ', '.join(extra), count_opt, plan['total_after'], purge_opt))

    def wait_visible(self, plans):
        deadline = time.monotonic() + self.module.params['wait_timeout']
        delay = 0.5
        while True:
            _raw, record = self.read()
            if all(_settled(record[f[4]], plans[f[5]]) for f in FAMILIES if f[5] in plans):
                return record
            if time.monotonic() >= deadline:
                self.fail('%s: addresses not visible after %ss; the change was requested, re-run to converge'
                          % (record['id'], self.module.params['wait_timeout']))
            time.sleep(delay)
            delay = min(delay * 2, 5)

    def run(self):
        params = self.module.params
        self.validate_ids('eni_id', 'eni', [params['eni_id']])
        for option in ('secondary_private_ip_address_count', 'ipv6_address_count', 'wait_timeout'):
            if params[option] is not None and params[option] < 0:
                self.fail('%s must be 0 or more, got %s' % (option, params[option]))
        _raw, record = self.read()
        plans = self.plan(record, self.quota(record))
        changed = any(p['add'] or p['add_count'] or p['remove'] for p in plans.values())
        before = {'secondary_ips': record['secondary_ips'], 'ipv6_ips': record['ipv6_ips']}
        added = dict((kind, p['add']) for kind, p in plans.items())
        if changed and not self.module.check_mode:
            added = self.apply(record, plans)
            if params['wait']:
                record = self.wait_visible(plans)
            else:
                record = self.read()[1]
            self.check_overallocation(record, plans, added)
        after = {'secondary_ips': record['secondary_ips'], 'ipv6_ips': record['ipv6_ips']}
        if changed and self.module.check_mode:
            after = dict((f[4], _planned(plans[f[5]]) if f[5] in plans else before[f[4]]) for f in FAMILIES)
        self.result.update({
            'changed': changed or self.result['changed'],
            self.represent: record,
            'added_private_ips': added.get('private', []),
            'removed_private_ips': plans.get('private', {}).get('remove', []),
            'added_ipv6_ips': added.get('ipv6', []),
            'removed_ipv6_ips': plans.get('ipv6', {}).get('remove', []),
        })
        if self.module._diff:
            self.result['diff'] = {'before': before, 'after': after}


def _assigned(response, kind):
    """Addresses in an Assign* response (lists of strings, unlike Describe* responses)."""
    if kind == 'private':
        return ((response.get('AssignedPrivateIpAddressesSet') or {}).get('PrivateIpSet') or {}).get('PrivateIpAddress') or []
    return (response.get('Ipv6Sets') or {}).get('Ipv6Address') or []


def _planned(plan):
    """The address list a plan leads to, for check-mode diffs (the cloud picks count-based ones)."""
    extra = ['(%d more, picked by the cloud)' % plan['add_count']] if plan['add_count'] else []
    return plan['after'] + extra


def _settled(current, plan):
    present = set(current)
    return (set(plan['add']) <= present and not set(plan['remove']) & present
            and len(present) >= plan['total_after'])


def main():
    EcsEniIp(EcsEniIp.define_module()).execute()


if __name__ == '__main__':
    main()
