"""docs/policies/egress-ram-policy.json grants every VPC action the egress code calls, and nothing unknown."""
import json
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_policy_covers_every_vpc_call():
    with open(os.path.join(ROOT, 'plugins', 'module_utils', 'vpc.py'), encoding='utf-8') as handle:
        called = set(re.findall(r"(?:'vpc', region|_page_numbers\(clients, region), '([A-Z][A-Za-z0-9]+)'", handle.read()))
    called |= {'DescribeVSwitches'}   # through ecs.describe_vswitches (vSwitch and VPC checks)
    with open(os.path.join(ROOT, 'docs', 'policies', 'egress-ram-policy.json'), encoding='utf-8') as handle:
        policy = json.load(handle)
    granted = set(a.split(':', 1)[1] for s in policy['Statement'] for a in s['Action'] if a.startswith('vpc:'))
    assert len(called) >= 19
    assert called == granted
