"""Error formatting, classification and secret redaction, with the SDK's real exception classes."""
import pytest

from ansible_collections.underlay.alicloud.plugins.module_utils.errors import (
    AlicloudApiError, from_sdk_exception, is_not_found, is_permission_error, redact)

SECRET = 'Zx9secretValue42'


def test_one_line_format():
    err = AlicloudApiError('DescribeNetworkInterfaces', 'InvalidEniId.NotFound', 'The ENI does not exist.', request_id='RID-1', status=404)
    assert str(err) == 'DescribeNetworkInterfaces failed: InvalidEniId.NotFound: The ENI does not exist. (RequestId: RID-1)'
    assert err.to_dict() == {'action': 'DescribeNetworkInterfaces', 'code': 'InvalidEniId.NotFound',
                             'message': 'The ENI does not exist.', 'request_id': 'RID-1', 'status': 404}
    assert str(AlicloudApiError('A', 'C', 'm')) == 'A failed: C: m'


def test_redact_literal_and_key_value_echoes():
    text = 'bad sig for %s; AccessKeySecret=abc123 security_token: "tok-9" signature=deadbeef\nsecond line' % SECRET
    out = redact(text, [SECRET, None, ''])
    assert SECRET not in out and 'abc123' not in out and 'tok-9' not in out and 'deadbeef' not in out
    assert '\n' not in out and out.endswith('second line')


def test_from_sdk_client_exception_uses_raw_body():
    exceptions = pytest.importorskip('alibabacloud_tea_openapi.exceptions')
    exc = exceptions.ClientException(
        status_code=400, code='Throttling.User', message='code: 400, Request was denied. request id: R1', request_id='R1',
        data={'RequestId': 'R1', 'Code': 'Throttling.User', 'Message': 'Request was denied. key %s' % SECRET, 'statusCode': 400})
    err = from_sdk_exception(exc, 'DescribeInstances', secrets=[SECRET])
    assert (err.code, err.status, err.request_id) == ('Throttling.User', 400, 'R1')
    assert str(err) == 'DescribeInstances failed: Throttling.User: Request was denied. key ******** (RequestId: R1)'


def test_throttling_hint_is_converted_to_seconds():
    exceptions = pytest.importorskip('alibabacloud_tea_openapi.exceptions')
    exc = exceptions.ThrottlingException(status_code=400, code='Throttling.User', message='x', request_id='R3', retry_after=1500,
                                         data={'RequestId': 'R3', 'Code': 'Throttling.User', 'Message': 'slow down'})
    err = from_sdk_exception(exc, 'DescribeInstances')
    assert (err.code, err.retry_after) == ('Throttling.User', 1.5)


def test_from_sdk_server_exception():
    exceptions = pytest.importorskip('alibabacloud_tea_openapi.exceptions')
    exc = exceptions.ServerException(status_code=503, code='ServiceUnavailable', message='x', request_id='R2',
                                     data={'RequestId': 'R2', 'Code': 'ServiceUnavailable', 'Message': 'try later'})
    err = from_sdk_exception(exc, 'DescribeVSwitches')
    assert (err.code, err.status, err.message) == ('ServiceUnavailable', 503, 'try later')


class _Inner(Exception):
    def __init__(self, message):
        super().__init__(message)
        self.message = message


class UnretryableException(Exception):
    """Same name and shape as darabonba's wrapper for transport failures."""

    def __init__(self, inner):
        super().__init__(str(inner))
        self.inner_exception = inner
        self.code = None
        self.data = None


def test_connection_refused_becomes_connection_error():
    exc = UnretryableException(_Inner("HTTPConnectionPool(host='127.0.0.1', port=1): Max retries exceeded "
                                      "(Caused by NewConnectionError(...: [Errno 111] Connection refused))"))
    err = from_sdk_exception(exc, 'DescribeInstances', endpoint='127.0.0.1:1')
    assert str(err) == 'DescribeInstances failed: ConnectionError: cannot connect to 127.0.0.1:1: connection refused'


def test_read_timeout_is_worded_as_a_missing_answer():
    exc = UnretryableException(_Inner("HTTPConnectionPool(host='127.0.0.1', port=8080): Read timed out. (read timeout=10.0)"))
    err = from_sdk_exception(exc, 'AttachNetworkInterface', endpoint='127.0.0.1:8080')
    assert err.code == 'ReadTimeout'
    assert err.message.startswith('no answer from 127.0.0.1:8080 within 10 s (read timeout;')
    assert 'cannot connect' not in err.message


def test_dropped_connection_is_a_lost_connection():
    exc = UnretryableException(_Inner("('Connection aborted.', RemoteDisconnected('Remote end closed connection without response'))"))
    err = from_sdk_exception(exc, 'UnassignPrivateIpAddresses', endpoint='127.0.0.1:8080')
    assert (err.code, err.message) == ('ConnectionLost', 'connection to 127.0.0.1:8080 lost after the request was sent: '
                                                         'connection closed by the server without an answer')


def test_tls_failure_is_not_a_retryable_connection_error():
    exc = UnretryableException(_Inner("HTTPSConnectionPool(host='ecs.example', port=443): Max retries exceeded "
                                      "(Caused by SSLError(SSLCertVerificationError(1, '[SSL: CERTIFICATE_VERIFY_FAILED] ...')))"))
    err = from_sdk_exception(exc, 'DescribeInstances', endpoint='ecs.example')
    assert (err.code, err.message) == ('TLSError', 'cannot connect to ecs.example: TLS certificate verification failed')


def test_non_json_answer_and_missing_credentials():
    err = from_sdk_exception(UnretryableException(RuntimeError('Failed to parse the value as json format, Value: "<html>"')),
                             'DescribeInstances', endpoint='example.com')
    assert err.code == 'InvalidResponse' and 'example.com' in err.message

    class CredentialException(Exception):
        pass
    err = from_sdk_exception(UnretryableException(CredentialException('unable to load credentials ...')), 'DescribeInstances')
    assert err.code == 'InvalidCredentials' and 'access_key_id' in err.message


def test_classifiers():
    assert is_permission_error(AlicloudApiError('A', 'Forbidden.RAM', 'm', status=403))
    assert is_permission_error(AlicloudApiError('A', 'NoPermission', 'm', status=403))
    assert not is_permission_error(AlicloudApiError('A', 'InvalidAccessKeyId.NotFound', 'm', status=404))
    assert not is_permission_error(AlicloudApiError('A', 'InvalidOperation.Ipv4CountExceeded', 'm', status=403))
    assert is_not_found(AlicloudApiError('A', 'InvalidEniId.NotFound', 'm'))
    assert not is_not_found(AlicloudApiError('A', 'Throttling.User', 'm'))
