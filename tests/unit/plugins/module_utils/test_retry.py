"""AlicloudRetry: which errors retry, how long it waits, and that attempts and time are bounded."""
import random

import pytest

from ansible_collections.underlay.alicloud.plugins.module_utils.errors import AlicloudApiError
from ansible_collections.underlay.alicloud.plugins.module_utils.retry import AlicloudRetry, is_retryable


class FakeClock:
    def __init__(self):
        self.now = 100.0
        self.sleeps = []

    def clock(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


def make(clock, **kwargs):
    return AlicloudRetry(sleep=clock.sleep, clock=clock.clock, rng=random.Random(7), **kwargs)


def failing(errors, result='ok'):
    """A callable raising each error of ``errors`` in turn, then returning ``result``."""
    calls = []

    def func():
        calls.append(1)
        if len(calls) <= len(errors):
            raise errors[len(calls) - 1]
        return result
    return func, calls


def api_error(code, status=400, retry_after=None):
    return AlicloudApiError('DescribeInstances', code, 'x', request_id='r', status=status, retry_after=retry_after)


@pytest.mark.parametrize('code,status,expected', [
    ('Throttling.User', 400, True), ('Throttling', 400, True), ('Throttling.Api', 400, True),
    ('ServiceUnavailable', 503, True), ('InternalError', 500, True), ('UnknownError', 500, True),
    ('Operation.Conflict', 409, True), ('Whatever', 502, True), ('ConnectionError', None, True),
    ('InvalidEniId.NotFound', 404, False), ('Forbidden.RAM', 403, False), ('SignatureDoesNotMatch', 400, False),
    ('InvalidParameter', 400, False), (None, None, False),
])
def test_retryable_codes(code, status, expected):
    assert is_retryable(code, status) is expected


def test_retries_throttling_then_succeeds_with_growing_jittered_delays():
    clock = FakeClock()
    retry = make(clock, max_attempts=6, base_delay=0.5, max_delay=10)
    func, calls = failing([api_error('Throttling.User')] * 4)
    assert retry.call(func) == 'ok'
    assert len(calls) == 5 and retry.retries == 4
    for n, waited in enumerate(clock.sleeps, 1):
        ceiling = min(10, 0.5 * 2 ** (n - 1))
        assert ceiling / 2 <= waited <= ceiling


def test_attempts_are_bounded():
    clock = FakeClock()
    retry = make(clock, max_attempts=3)
    func, calls = failing([api_error('ServiceUnavailable', 503)] * 10)
    with pytest.raises(AlicloudApiError, match='ServiceUnavailable'):
        retry.call(func)
    assert len(calls) == 3 and len(clock.sleeps) == 2


def test_total_time_is_bounded():
    clock = FakeClock()
    retry = make(clock, max_attempts=100, base_delay=4, max_delay=8, max_total=20)
    func, calls = failing([api_error('Throttling.User')] * 100)
    with pytest.raises(AlicloudApiError):
        retry.call(func)
    assert clock.now - 100.0 <= 20
    assert 2 <= len(calls) < 10


def test_non_retryable_error_raises_immediately():
    clock = FakeClock()
    retry = make(clock)
    func, calls = failing([api_error('InvalidEniId.NotFound', 404)])
    with pytest.raises(AlicloudApiError, match='NotFound'):
        retry.call(func)
    assert len(calls) == 1 and clock.sleeps == []


def test_foreign_exceptions_are_not_retried():
    clock = FakeClock()
    retry = make(clock)
    func, calls = failing([KeyError('x')])
    with pytest.raises(KeyError):
        retry.call(func)
    assert len(calls) == 1


def test_connection_errors_get_few_attempts():
    clock = FakeClock()
    retry = make(clock, max_attempts=10, max_connection_attempts=3)
    func, calls = failing([api_error('ConnectionError', None)] * 10)
    with pytest.raises(AlicloudApiError):
        retry.call(func)
    assert len(calls) == 3


@pytest.mark.parametrize('code', ['ConnectionLost', 'ReadTimeout'])
def test_dropped_connections_and_read_timeouts_get_the_full_budget(code):
    clock = FakeClock()
    retry = make(clock, max_attempts=6, max_connection_attempts=3)
    func, calls = failing([api_error(code, None)] * 5)
    assert retry.call(func) == 'ok'
    assert len(calls) == 6
    assert len(clock.sleeps) == 5 and all(0.15 <= s <= 10 for s in clock.sleeps)   # jittered backoff


def test_server_retry_after_hint_is_used():
    clock = FakeClock()
    retry = make(clock, max_delay=10)
    func, dummy = failing([api_error('Throttling.User', retry_after=3)])
    retry.call(func)
    assert clock.sleeps == [3.0]


def test_decorator_and_zero_retries():
    clock = FakeClock()
    retry = make(clock, max_attempts=1)
    func, calls = failing([api_error('Throttling.User')])
    with pytest.raises(AlicloudApiError):
        retry(func)()
    assert len(calls) == 1
    with pytest.raises(ValueError):
        AlicloudRetry(max_attempts=0)
