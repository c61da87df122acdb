"""The least-privilege RAM policy shipped for the cloud-controller-manager stays least-privilege."""
import json
import os

POLICY = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                      'docs', 'policies', 'ccm-ram-policy.json')


def actions():
    with open(POLICY, encoding='utf-8') as handle:
        policy = json.load(handle)
    assert policy['Version'] == '1'
    for statement in policy['Statement']:
        assert statement['Effect'] == 'Allow'
        listed = statement['Action'] if isinstance(statement['Action'], list) else [statement['Action']]
        for action in listed:
            yield action, statement


def test_no_service_wide_or_global_wildcards():
    for action, _statement in actions():
        assert action != '*' and not action.endswith(':*'), action


def test_ecs_and_vpc_are_read_only():
    for action, _statement in actions():
        service, name = action.split(':', 1)
        if service in ('ecs', 'vpc'):
            assert name.startswith(('Describe', 'List')), action


def test_only_load_balancer_services_and_a_scoped_service_linked_role():
    services = {action.split(':', 1)[0] for action, _statement in actions()}
    assert services == {'ecs', 'vpc', 'slb', 'nlb', 'ram'}
    for action, statement in actions():
        if action.startswith('ram:'):
            assert action == 'ram:CreateServiceLinkedRole'
            assert statement['Condition']['StringEquals']['ram:ServiceName'] == ['nlb.aliyuncs.com']
