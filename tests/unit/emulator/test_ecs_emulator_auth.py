"""Emulator wire protocol through the real SDK: ACS3 and legacy signatures, STS, replay and skew checks."""
import base64
import hashlib
import hmac
import json
import urllib.request
from urllib.error import HTTPError
from urllib.parse import quote, urlencode

import pytest
import yaml
from alibabacloud_ecs20140526 import models as ecs_models
from alibabacloud_tea_openapi.utils import Utils

from ansible_collections.underlay.alicloud.tests.emulator.ecs_emulator import EcsEmulator


def raw_post(emu, query, headers=None, method='POST'):
    """Send a hand-built request; returns (status, parsed JSON body, headers)."""
    request = urllib.request.Request('%s/?%s' % (emu.url, urlencode(query)), method=method, headers=headers or {}, data=b'' if method == 'POST' else None)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=10) as response:
            return response.status, json.loads(response.read()), response.headers
    except HTTPError as exc:
        return exc.code, json.loads(exc.read()), exc.headers


def legacy_query(action, secret, key='LTAIlabkey', nonce='n-1', **params):
    """A footmark/aliyunsdkcore-style query: HMAC-SHA1, Action in the query, stray `on` and ClientToken."""
    query = dict(params, Action=action, Version='2014-05-26', Format='JSON', AccessKeyId=key, SignatureMethod='HMAC-SHA1',
                 SignatureVersion='1.0', SignatureNonce=nonce, Timestamp=Utils.get_timestamp())
    query['Signature'] = Utils.get_rpcsignature(query, 'GET', secret)
    return query


@pytest.mark.parametrize('algorithm', [None, 'v2'])
def test_good_signatures_are_accepted(lab, sdk, algorithm):
    lab.reset_stats()
    body = sdk.ecs(lab, signature_algorithm=algorithm).describe_regions(ecs_models.DescribeRegionsRequest()).body
    assert [r.region_id for r in body.regions.region] == ['cn-hangzhou']
    entry = lab.requests()[-1]
    assert (entry['action'], entry['auth'], entry['status']) == ('DescribeRegions', 'v2' if algorithm else 'acs3', 200)


@pytest.mark.parametrize('algorithm', [None, 'v2'])
def test_wrong_secret_is_signature_mismatch(lab, sdk, algorithm):
    err = sdk.error(sdk.ecs(lab, secret='not-the-secret', signature_algorithm=algorithm).describe_regions, ecs_models.DescribeRegionsRequest())
    assert (err.code, err.status_code) == ('SignatureDoesNotMatch', 400)
    assert err.data['RequestId'] and 'not-the-secret' not in json.dumps(err.data)


@pytest.mark.parametrize('algorithm', [None, 'v2'])
def test_unknown_access_key(lab, sdk, algorithm):
    err = sdk.error(sdk.ecs(lab, key='LTAInobody', signature_algorithm=algorithm).describe_regions, ecs_models.DescribeRegionsRequest())
    assert (err.code, err.status_code) == ('InvalidAccessKeyId.NotFound', 404)


def test_sts_token_must_match(sdk):
    world = yaml.safe_load(open(sdk.worlds + '/two-regions.yml', encoding='utf-8'))
    key, secret = 'STS.NUgYrLnoC37mZZCNnAbez', 'stssecret'
    with EcsEmulator(world) as emu:
        for algorithm in (None, 'v2'):
            good = sdk.ecs(emu, key=key, secret=secret, security_token='CAIS-lab-security-token', signature_algorithm=algorithm)
            assert len(good.describe_regions(ecs_models.DescribeRegionsRequest()).body.regions.region) == 2
            bad = sdk.ecs(emu, key=key, secret=secret, security_token='CAIS-forged', signature_algorithm=algorithm)
            err = sdk.error(bad.describe_regions, ecs_models.DescribeRegionsRequest())
            assert (err.code, err.status_code) == ('InvalidSecurityToken.MismatchWithAccessKey', 400)
            err = sdk.error(sdk.ecs(emu, key=key, secret=secret, signature_algorithm=algorithm).describe_regions, ecs_models.DescribeRegionsRequest())
            assert err.code == 'InvalidSecurityToken.MismatchWithAccessKey'


def test_reused_nonce_and_stale_date_are_rejected(lab, sdk, monkeypatch):
    client = sdk.ecs(lab)
    monkeypatch.setattr(Utils, 'get_nonce', staticmethod(lambda: 'fixed-nonce-for-replay-test'))
    client.describe_regions(ecs_models.DescribeRegionsRequest())
    err = sdk.error(client.describe_regions, ecs_models.DescribeRegionsRequest())
    assert (err.code, err.status_code) == ('SignatureNonceUsed', 400)
    monkeypatch.setattr(Utils, 'get_nonce', staticmethod(lambda: 'another-nonce'))
    monkeypatch.setattr(Utils, 'get_timestamp', staticmethod(lambda: '2020-01-01T00:00:00Z'))
    err = sdk.error(client.describe_regions, ecs_models.DescribeRegionsRequest())
    assert (err.code, err.status_code) == ('InvalidTimeStamp.Expired', 400)


def test_incomplete_or_missing_signature(lab):
    status, body, headers = raw_post(lab, {'RegionId': 'cn-hangzhou'}, {'x-acs-action': 'DescribeRegions', 'x-acs-version': '2014-05-26'})
    assert (status, body['Code']) == (400, 'IncompleteSignature')
    assert headers['Content-Type'] == 'application/json;charset=utf-8'
    auth = 'ACS3-HMAC-SHA256 Credential=LTAIlabkey,SignedHeaders=host;x-acs-action,Signature=' + '0' * 64
    status, body = raw_post(lab, {}, {'Authorization': auth, 'x-acs-action': 'DescribeRegions', 'x-acs-version': '2014-05-26'})[:2]
    assert (status, body['Code']) == (400, 'IncompleteSignature')
    assert 'x-acs-date' in body['Message']


def test_hand_signed_acs3_request_and_tampered_query(lab):
    """Hand-sign per the documented recipe, then tamper with the query: the signature must break."""
    def signed(query, date):
        headers = {'host': lab.endpoint, 'x-acs-action': 'DescribeInstances', 'x-acs-version': '2014-05-26', 'x-acs-date': date,
                   'x-acs-signature-nonce': 'nonce-%s' % len(query) + date, 'x-acs-content-sha256': hashlib.sha256(b'').hexdigest()}
        canon_query = '&'.join('%s=%s' % (k, quote(v, safe='~')) for k, v in sorted(query.items()))
        names = sorted(headers)
        canon_headers = ''.join('%s:%s\n' % (h, headers[h]) for h in names)
        canon = 'POST\n/\n%s\n%s\n%s\n%s' % (canon_query, canon_headers, ';'.join(names), headers['x-acs-content-sha256'])
        to_sign = 'ACS3-HMAC-SHA256\n' + hashlib.sha256(canon.encode()).hexdigest()
        sig = hmac.new(b'labsecret', to_sign.encode(), hashlib.sha256).hexdigest()
        headers['Authorization'] = 'ACS3-HMAC-SHA256 Credential=LTAIlabkey,SignedHeaders=%s,Signature=%s' % (';'.join(names), sig)
        return headers
    query = {'RegionId': 'cn-hangzhou', 'InstanceName': 'master node*'}
    status, body = raw_post(lab, query, signed(query, Utils.get_timestamp()))[:2]
    assert status == 200 and body['TotalCount'] == 0
    status, body = raw_post(lab, dict(query, InstanceName='worker*'), signed(query, Utils.get_timestamp()))[:2]
    assert (status, body['Code']) == (400, 'SignatureDoesNotMatch')


def test_legacy_query_signature_tolerates_footmark_params(lab):
    query = legacy_query('DescribeInstances', 'labsecret', nonce='footmark-1', RegionId='cn-hangzhou', on='DescribeInstances',
                         ClientToken='footmark-token', PageSize='50', InstanceName='master')
    status, body = raw_post(lab, query, method='GET')[:2]
    assert status == 200, body
    assert [i['InstanceId'] for i in body['Instances']['Instance']] == ['i-bp1master']
    status, body = raw_post(lab, legacy_query('DescribeInstances', 'wrong', nonce='footmark-2', RegionId='cn-hangzhou'), method='GET')[:2]
    assert (status, body['Code']) == (400, 'SignatureDoesNotMatch')
    query = legacy_query('DescribeRegions', 'labsecret', nonce='footmark-3')
    assert raw_post(lab, query, method='GET')[0] == 200
    assert raw_post(lab, query, method='GET')[1]['Code'] == 'SignatureNonceUsed'


def test_unknown_action_version_and_region(lab, sdk):
    status, body = raw_post(lab, legacy_query('RunInstances', 'labsecret', nonce='unknown-action', RegionId='cn-hangzhou'), method='GET')[:2]
    assert (status, body['Code']) == (404, 'InvalidAction.NotFound')
    query = legacy_query('DescribeRegions', 'labsecret', nonce='bad-version')
    query['Version'] = '2099-01-01'
    query.pop('Signature')
    query['Signature'] = base64.b64encode(hmac.new(b'labsecret&', ('GET&%2F&' + quote('&'.join(
        '%s=%s' % (quote(k, safe='~'), quote(v, safe='~')) for k, v in sorted(query.items())), safe='~')).encode(), hashlib.sha1).digest()).decode()
    status, body = raw_post(lab, query, method='GET')[:2]
    assert (status, body['Code']) == (400, 'InvalidVersion')
    err = sdk.error(sdk.ecs(lab).describe_instances, ecs_models.DescribeInstancesRequest(region_id='cn-nowhere-1'))
    assert (err.code, err.status_code) == ('InvalidRegionId.NotFound', 404)
    err = sdk.error(sdk.ecs(lab).describe_instances, ecs_models.DescribeInstancesRequest())
    assert (err.code, err.status_code) == ('MissingParameter', 400)


def test_request_ids_are_unique(lab, sdk):
    client = sdk.ecs(lab)
    ids = {client.describe_regions(ecs_models.DescribeRegionsRequest()).body.request_id for dummy in range(20)}
    assert len(ids) == 20
