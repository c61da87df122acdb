#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: underlay.alicloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: underlay_capacity
short_description: Capacity report and secondary-address top-up of the underlay pools, fleet-wide in one call
version_added: 0.2.0
description:
  - Compares, per node, interface and IP family, the secondary addresses on the ENI (from the
    C(alicloud_enis) host facts) with the SpiderIPPool the collection manages for it (from O(pools)
    as listed from the cluster, status included) - addresses in the cloud, in the pool, allocated
    to pods, free, the quota head room (more addresses on this ENI, more ENIs on this node) and
    drift in either direction. Pools of nodes no longer in O(hosts) are reported as stale.
  - With O(cluster_nodes), nodes of O(hosts) that have no Node object in the cluster are named in
    RV(report.absent_nodes); with O(remove_missing_nodes) they are treated as removed, like those of O(remove_nodes).
  - With O(topup=true), every row whose available addresses (on the ENI and held by no pod, which
    is what the pool offers once it matches the ENI) are under O(threshold) gets more addresses assigned in the cloud, up to
    O(target) free addresses, within the instance type's per-ENI quota and the O(max_per_node) and
    O(max_per_run) budgets. The module changes only the cloud; the caller extends the pools from
    the returned RV(hosts) afterwards (cloud first, pool second).
  - Counting addresses on the ENI but not yet in the pool as available makes a run interrupted between the
    cloud step and the pool step converge on the next run without assigning again.
  - With O(new_enis), an ENI that has reached the per-ENI quota of its instance type, on a node with room for
    another ENI, gets a sibling in RV(plan.new_enis) (create and attach it with M(underlay.alicloud.ecs_eni)); with
    O(topup=true) each entry carries the security groups of the full ENI, or names the ENI an interrupted run
    created but did not attach, so that it is attached instead of a second one being made.
  - With O(release_enis), unassigns from those ENIs the addresses that no pool lists and no pod
    holds; ENIs of nodes still in O(hosts) are never touched.
  - One invocation for the whole fleet. A report-only run makes no cloud API call at all.
author:
  - underlay.alicloud maintainers (!UNKNOWN)
options:
  hosts:
    description:
      - Host facts of the cluster nodes (C(alicloud_enis), C(alicloud_eni_quota), C(alicloud_instance_id),
        C(alicloud_instance_type), C(alicloud_region), C(alicloud_hostname) and the planner's per-host
        variables), for example C(groups['k8s_cluster'] | map('extract', hostvars)).
    type: list
    elements: dict
    required: true
  pools:
    description:
      - Every SpiderIPPool of the cluster as listed by the API (with C(status.allocatedIPs)).
    type: list
    elements: dict
    default: []
  pool_options:
    description:
      - Options of the pool planner (as given to P(underlay.alicloud.spiderpool_plan#filter)), so that the
        rows name the pools the collection manages.
    type: dict
    default: {}
  threshold:
    description:
      - A pool with fewer free addresses than this is flagged low; top-up acts below it.
    type: int
    default: 2
  target:
    description:
      - Free addresses a low pool is topped up to. At least O(threshold) and at most the per-ENI quota.
    type: int
    default: 5
  families:
    description:
      - IP families to report and top up. IPv6 rows exist only for ENIs whose vSwitch has an IPv6 CIDR.
    type: list
    elements: int
    default: [4, 6]
  topup:
    description:
      - Assign the planned addresses in the cloud. Without it the module only reports (and plans).
    type: bool
    default: false
  max_per_node:
    description:
      - Most addresses assigned to one node in one run.
    type: int
    default: 10
  max_per_run:
    description:
      - Most addresses assigned in one run, all nodes together.
    type: int
    default: 100
  wait_timeout:
    description:
      - Seconds to wait until the API shows the assigned addresses.
    type: int
    default: 60
  remove_nodes:
    description:
      - Kubernetes node names to treat as removed although their instances are still in O(hosts)
        (for example drained and deleted from the cluster). They get no rows and are left out of RV(hosts).
    type: list
    elements: str
    default: []
  cluster_nodes:
    description:
      - Names of the cluster's Node objects. Hosts whose node name is not among them are reported in
        RV(report.absent_nodes). Omitted, every host counts as in the cluster.
    type: list
    elements: str
  remove_missing_nodes:
    description:
      - Treat the hosts whose node is not in O(cluster_nodes) as removed, like those of O(remove_nodes).
      - Off by default because an instance that has not joined the cluster yet looks the same.
    type: bool
    default: false
  new_enis:
    description:
      - Plan a new ENI (RV(plan.new_enis)) for an ENI that has reached its per-ENI address quota while its
        pool is under O(threshold) and the node has room for another ENI.
    type: bool
    default: false
  max_new_enis:
    description:
      - Most new ENIs planned in one run (at most one per node).
    type: int
    default: 1
  new_eni_vswitches:
    description:
      - vSwitch of a new ENI by the vSwitch of the full ENI, for example C(vsw-nodes) mapped to C(vsw-pods). Unlisted, the
        new ENI is in the full ENI's vSwitch.
    type: dict
    default: {}
  new_eni_security_groups:
    description:
      - Security groups of a new ENI. Empty, those of the full ENI.
    type: list
    elements: str
    default: []
  release_enis:
    description:
      - ENIs of removed nodes whose secondary addresses are unassigned when no pool lists them and no pod holds
        them (the C(eni_id) of RV(report.stale_pools) and the C(eni_ids) of the removed RV(report.absent_nodes) of an
        earlier call, after the stale pools were deleted).
    type: list
    elements: str
    default: []
extends_documentation_fragment:
  - underlay.alicloud.auth
  - underlay.alicloud.attributes
notes:
  - O(region) is only used for O(release_enis) when O(hosts) name no region; the other calls use each host's
    C(alicloud_region).
  - Assign calls carry a ClientToken made of the ENI, its addresses when planned, the count and a per-run nonce,
    so a retried call never assigns twice and a later run is never answered with an earlier run's replay.
  - An assign refused for one ENI (for example an exhausted vSwitch) is reported in RV(errors) and the other ENIs
    go on; the caller decides whether to fail.
seealso:
  - module: underlay.alicloud.ecs_eni_ip
  - module: underlay.alicloud.spiderpool_objects
"""

EXAMPLES = r"""
- name: Read the pools
  kubernetes.core.k8s_info:
    api_version: spiderpool.spidernet.io/v2beta1
    kind: SpiderIPPool
  register: pools

- name: Report, and top up pools with fewer than 3 free addresses to 8
  underlay.alicloud.underlay_capacity:
    hosts: "{{ groups['k8s_cluster'] | map('extract', hostvars) | list }}"
    pools: "{{ pools.resources }}"
    threshold: 3
    target: 8
    topup: true
  register: capacity

- name: Extend the pools from the refreshed facts (cloud first, pool second)
  underlay.alicloud.spiderpool_objects:
    objects: "{{ (capacity.hosts | underlay.alicloud.spiderpool_plan).objects }}"
  when: capacity.pool_sync_needed
"""

RETURN = r"""
report:
  description: The capacity report; its schema is documented in docs/day2.md.
  returned: always
  type: dict
  contains:
    schema:
      description: Schema name and version, V(underlay.alicloud/capacity-report/v1).
      type: str
    rows:
      description: One entry per node x interface x family.
      type: list
      elements: dict
    absent_nodes:
      description: Hosts whose node the cluster does not know or that O(remove_nodes) names, with whether they are
        treated as removed and why.
      type: list
      elements: dict
    stale_pools:
      description: Pools the collection owns whose node is gone, with V(delete) or V(keep) and why.
      type: list
      elements: dict
    summary:
      description: Totals and flag counts.
      type: dict
table:
  description: The report as aligned text lines, then what the budgets held back and what happens to full ENIs.
  returned: always
  type: list
  elements: str
plan:
  description: Top-up plan (C(assign), C(limited), C(full), C(new_enis)); made also when O(topup=false).
  returned: always
  type: dict
  contains:
    new_enis:
      description: ENIs to create and attach, one per node at most; the parameters of M(underlay.alicloud.ecs_eni).
      type: list
      elements: dict
      sample: [{"node": "worker", "instance_id": "i-bp1worker", "region": "cn-hangzhou", "name": "worker-capacity-2",
                "eni_id": null, "device_index": 2, "interface": "eth2", "vswitch_id": "vsw-bp1a",
                "security_groups": ["sg-bp1lab"], "full_eni": "eni-bp1w0", "family": 4, "ipv4": 4, "ipv6": 0,
                "eni_quota": {"enis": 3, "ipv4_per_eni": 6, "ipv6_per_eni": 6},
                "tags": {"managed-by": "underlay.alicloud", "underlay.alicloud/instance": "i-bp1worker"}}]
assigned:
  description: Addresses assigned by this run, per ENI and family.
  returned: always
  type: list
  elements: dict
  sample: [{"eni_id": "eni-bp1x0", "family": 4, "addresses": ["172.31.199.198", "172.31.199.199"]}]
released:
  description: Addresses unassigned by this run (or that would be, in check mode), per ENI.
  returned: always
  type: list
  elements: dict
hosts:
  description: The host facts of the nodes still in the cluster with the ENI records refreshed after the top-up,
    ready for the pool planner.
  returned: always
  type: list
  elements: dict
pool_sync_needed:
  description: Whether the pools differ from the ENIs (new addresses, a node without pools, drift, stale pools).
  returned: always
  type: bool
errors:
  description: Per-ENI failures of assign or unassign calls; the other ENIs were still handled.
  returned: always
  type: list
  elements: str
"""

import copy
import time

from ansible_collections.underlay.alicloud.plugins.module_utils import capacity, ecs
from ansible_collections.underlay.alicloud.plugins.module_utils.eni_ip_plan import IPV4_BATCH, IPV6_BATCH, batches, count_batches
from ansible_collections.underlay.alicloud.plugins.module_utils.errors import AlicloudApiError
from ansible_collections.underlay.alicloud.plugins.module_utils.facts import eni_details, normalise_eni
from ansible_collections.underlay.alicloud.plugins.module_utils.ipmath import ip_sort_key
from ansible_collections.underlay.alicloud.plugins.module_utils.module import AlicloudModule, client_token

# family -> (assign, unassign, assign action, per-call batch)
ACTIONS = {
    4: (ecs.assign_private_ip_addresses, ecs.unassign_private_ip_addresses, 'AssignPrivateIpAddresses', IPV4_BATCH),
    6: (ecs.assign_ipv6_addresses, ecs.unassign_ipv6_addresses, 'AssignIpv6Addresses', IPV6_BATCH),
}


class UnderlayCapacity(AlicloudModule):
    """Report, top-up and release for every node in one call."""

    represent = 'report'

    @classmethod
    def define_module(cls):
        return cls.create_module(dict(
            hosts=dict(type='list', elements='dict', required=True),
            pools=dict(type='list', elements='dict', default=[]),
            pool_options=dict(type='dict', default={}),
            threshold=dict(type='int', default=2),
            target=dict(type='int', default=5),
            families=dict(type='list', elements='int', default=[4, 6]),
            topup=dict(type='bool', default=False),
            max_per_node=dict(type='int', default=10),
            max_per_run=dict(type='int', default=100),
            remove_nodes=dict(type='list', elements='str', default=[]),
            cluster_nodes=dict(type='list', elements='str'),
            remove_missing_nodes=dict(type='bool', default=False),
            new_enis=dict(type='bool', default=False),
            max_new_enis=dict(type='int', default=1),
            new_eni_vswitches=dict(type='dict', default={}),
            new_eni_security_groups=dict(type='list', elements='str', default=[]),
            release_enis=dict(type='list', elements='str', default=[]),
            wait_timeout=dict(type='int', default=60),
        ), supports_check_mode=True)

    def settings(self):
        params = self.module.params
        return dict((key, params[key]) for key in ('threshold', 'target', 'families', 'max_per_node', 'max_per_run',
                                                   'remove_nodes', 'remove_missing_nodes', 'new_enis', 'max_new_enis',
                                                   'new_eni_vswitches', 'new_eni_security_groups'))

    def assign(self, plan, records):
        """Assign every planned count; returns the plan items that were (at least partly) sent."""
        sent = []
        for item in plan['assign']:
            eni_id, family = item['eni_id'], item['family']
            assign, _unassign, action, size = ACTIONS[family]
            seen = ','.join(records[eni_id][capacity.FAMILY_KEYS[family]])
            try:
                for index, count in enumerate(count_batches(item['count'], size)):
                    token = client_token(eni_id, action, seen, (index, count), self.run_nonce)
                    self.write(assign, item['region'], eni_id, count=count, client_token=token)
                    if item not in sent:
                        sent.append(item)
            except AlicloudApiError as err:
                self.result['errors'].append('%s (%s %s IPv%d): %s' % (eni_id, item['node'], item['interface'], family, err))
        return sent

    def read_enis(self, region, eni_ids):
        """``{eni id: normalised record}`` of ``eni_ids`` (100 per call)."""
        raw = ecs.describe_network_interfaces(self.clients, region, {'NetworkInterfaceId': sorted(eni_ids)})
        return dict((r['NetworkInterfaceId'], normalise_eni(r, {})) for r in raw)

    def refresh(self, hosts, plan, before):
        """Re-read the changed ENIs until the added addresses show, and put them into the host facts."""
        wanted = {}
        for item in plan['assign']:
            key = capacity.FAMILY_KEYS[item['family']]
            wanted.setdefault(item['region'], {}).setdefault(item['eni_id'], {})[key] = len(before[item['eni_id']][key]) + item['count']
        fresh = {}
        deadline = time.monotonic() + self.module.params['wait_timeout']
        for region, enis in sorted(wanted.items()):
            delay = 0.5
            while True:
                records = self.read_enis(region, enis)
                if all(len(records.get(e, {}).get(k, [])) >= n for e, keys in enis.items() for k, n in keys.items()) \
                        or time.monotonic() >= deadline:
                    break
                time.sleep(delay)
                delay = min(delay * 2, 5)
            fresh.update(records)
        for facts in hosts:
            for eni in facts.get('alicloud_enis') or []:
                if eni.get('id') in fresh:
                    eni['secondary_ips'] = fresh[eni['id']]['secondary_ips']
                    eni['ipv6_ips'] = fresh[eni['id']]['ipv6_ips']

    def place_new_enis(self, new_enis):
        """Security groups of the full ENIs, and the collection's unattached ENIs made for the same instances.

        An ENI tagged for an instance and still Available was created by a run that stopped before
        attaching it: the entry names it, so it is attached rather than a second one created.
        """
        for region in sorted(set(e['region'] for e in new_enis)):
            items = [e for e in new_enis if e['region'] == region]
            wanted = sorted(set(e['full_eni'] for e in items if not e['security_groups']))
            groups = {}
            if wanted:
                raws = ecs.describe_network_interfaces(self.clients, region, {'NetworkInterfaceId': wanted})
                groups = dict((r['NetworkInterfaceId'], eni_details(r, {})['security_group_ids']) for r in raws)
            waiting = {}
            raws = ecs.describe_network_interfaces(self.clients, region, {
                'Status': 'Available', 'Tag': {capacity.ENI_TAG_KEY: capacity.ENI_TAG_VALUE}})
            for record in sorted((eni_details(r, {}) for r in raws), key=lambda r: r['id']):
                waiting.setdefault(record['tags'].get(capacity.ENI_INSTANCE_TAG), record)
            for item in items:
                found = waiting.get(item['instance_id'])
                if found:
                    item.update(eni_id=found['id'], name=found['name'] or found['id'], vswitch_id=found['vswitch_id'],
                                security_groups=found['security_group_ids'], ipv4=len(found['secondary_ips']),
                                ipv6=len(found['ipv6_ips']))
                elif not item['security_groups']:
                    item['security_groups'] = groups.get(item['full_eni'], [])

    def release(self, pools, live_enis, regions):
        """Unassign the addresses of ``release_enis`` that no pool and no pod holds."""
        ids = self.module.params['release_enis']
        self.validate_ids('release_enis', 'eni', ids)
        records = {}
        for region in regions:
            missing = sorted(set(ids) - set(records))
            if missing:
                records.update(dict((k, dict(v, region=region)) for k, v in self.read_enis(region, missing).items()))
        plan = capacity.release_plan(list(records.values()), pools, live_enis)
        for message in plan['kept']:
            self.module.warn(message)
        for entry in plan['release']:
            region = records[entry['eni_id']]['region']
            for family in (4, 6):
                _assign, unassign, _action, size = ACTIONS[family]
                for chunk in batches(entry['ipv%d' % family], size):
                    if self.module.check_mode:
                        continue
                    try:
                        self.write(unassign, region, entry['eni_id'], chunk)
                    except AlicloudApiError as err:
                        # No ClientToken on unassign: a lost answer shows up as IpUnassigned on the retry.
                        if err.code != 'InvalidIp.IpUnassigned':
                            self.result['errors'].append('%s: %s' % (entry['eni_id'], err))
        return plan['release']

    def run(self):
        params = self.module.params
        for option in ('threshold', 'target', 'max_per_node', 'max_per_run', 'max_new_enis', 'wait_timeout'):
            if params[option] < 0:
                self.fail('%s=%d: expected a whole number of at least 0' % (option, params[option]))
        hosts = copy.deepcopy(params['hosts'])
        try:
            result = capacity.report(hosts, params['pools'], self.settings(), params['pool_options'], params['cluster_nodes'])
            plan = capacity.topup_plan(result['rows'], result['settings'], result.pop('nodes'))
        except capacity.CapacityError as exc:
            self.fail(str(exc))
        live = result.pop('live_hosts')
        live_enis = result.pop('live_enis')
        self.result.update(errors=[], assigned=[], released=[])
        records = dict((e['id'], e) for h in live for e in h.get('alicloud_enis') or [])
        before = copy.deepcopy(records)
        if params['topup'] and plan['assign'] and not self.module.check_mode:
            sent = self.assign(plan, before)
            if sent:
                self.refresh(live, {'assign': sent}, before)
            for item in sent:
                key = capacity.FAMILY_KEYS[item['family']]
                added = sorted(set(records[item['eni_id']][key]) - set(before[item['eni_id']][key]), key=ip_sort_key)
                self.result['assigned'].append({'eni_id': item['eni_id'], 'family': item['family'], 'addresses': added})
        if params['topup'] and plan['new_enis']:
            self.place_new_enis(plan['new_enis'])
        if params['release_enis']:
            regions = sorted(set(h.get('alicloud_region') for h in hosts if h.get('alicloud_region'))) or [self.region]
            self.result['released'] = self.release(params['pools'], live_enis, regions)
            self.result['changed'] = self.result['changed'] or bool(self.result['released'])
        if params['topup'] and self.module.check_mode and plan['assign']:
            self.result['changed'] = True
        summary = result['summary']
        self.result.update({
            self.represent: result,
            'table': capacity.table(result) + capacity.plan_lines(plan),
            'plan': plan,
            'hosts': live,
            'pool_sync_needed': bool(self.result['assigned'] or summary['missing_pools'] or summary['cloud_only']
                                     or summary['pool_only'] or summary['stale_pools'] > summary['stale_pools_kept']),
        })
        if self.module._diff:
            self.result['diff'] = _diff(before, records, plan if params['topup'] and self.module.check_mode else None)


def _diff(before, after, planned):
    """Address counts per ENI and family, before and after (check mode: after the plan)."""
    def counts(records):
        return dict(('%s/%s' % (eni, key), len(rec.get(key) or [])) for eni, rec in sorted(records.items())
                    for key in capacity.FAMILY_KEYS.values())
    after_counts = counts(after)
    for item in (planned or {}).get('assign', []):
        after_counts['%s/%s' % (item['eni_id'], capacity.FAMILY_KEYS[item['family']])] += item['count']
    return {'before': counts(before), 'after': after_counts}


def main():
    UnderlayCapacity(UnderlayCapacity.define_module()).execute()


if __name__ == '__main__':
    main()
