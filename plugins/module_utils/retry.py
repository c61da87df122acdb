# -*- coding: utf-8 -*-
# Copyright: underlay.alicloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Provider-neutral retry with jittered exponential backoff (CloudRetry-like).

The Alibaba SDK does not retry by default, not even connection errors, so every API function in
this collection is wrapped by one :class:`AlicloudRetry`. Attempts AND total time are bounded, so a
throttled or unreachable API ends in a clear error instead of a hang.
"""

from __future__ import annotations

import functools
import random
import time

RETRYABLE_CODE_PREFIXES = (
    'Throttling',
    'ServiceUnavailable',
    'InternalError',
    'UnknownError',
    'Operation.Conflict',
)

# Codes used by errors.AlicloudApiError for transport failures. ConnectionError: no connection
# could be made (refused, DNS, connect timeout), a wrong endpoint more often than a blip.
# ConnectionLost / ReadTimeout: the request was sent but no answer came (connection dropped,
# answer too slow) -- transient, and the request may have run: writes must be safe to repeat.
CONNECTION_ERROR_CODE = 'ConnectionError'
CONNECTION_LOST_CODE = 'ConnectionLost'
READ_TIMEOUT_CODE = 'ReadTimeout'
NO_ANSWER_CODES = (CONNECTION_LOST_CODE, READ_TIMEOUT_CODE)


def is_retryable(code, status=None):
    """True for throttling, transient server errors (any HTTP 5xx) and transport errors."""
    if status is not None and 500 <= int(status) <= 599:
        return True
    if not code:
        return False
    return code in (CONNECTION_ERROR_CODE,) + NO_ANSWER_CODES or str(code).startswith(RETRYABLE_CODE_PREFIXES)


class AlicloudRetry:
    """Retry policy: ``max_attempts`` tries (first included) within ``max_total`` seconds.

    Delay before retry n (1-based) is uniform in [d/2, d] with d = min(cap, base * 2**(n-1))
    ("equal jitter": spreads concurrent workers apart but never retries immediately). A server
    hint (``retry_after``, seconds) replaces the computed delay. Failures to connect get at most
    ``max_connection_attempts`` tries: an endpoint that refuses connections rarely recovers within
    seconds, and the user should hear about a wrong endpoint quickly. Dropped connections and read
    timeouts get the full budget like throttling: they are blips of a working endpoint.

    ``classify(exc)`` maps an exception to ``(code, status, retry_after)`` or ``None`` when the
    exception is not an API/transport error (it is then raised immediately). ``sleep``, ``clock``
    and ``rng`` are injectable for tests.
    """

    def __init__(self, max_attempts=9, base_delay=0.3, max_delay=10.0, max_total=60.0,
                 max_connection_attempts=3, classify=None, sleep=None, clock=None, rng=None):
        if int(max_attempts) < 1:
            raise ValueError('max_attempts must be at least 1, got %r' % (max_attempts,))
        self.max_attempts = int(max_attempts)
        self.base_delay = float(base_delay)
        self.max_delay = float(max_delay)
        self.max_total = float(max_total)
        self.max_connection_attempts = max(1, int(max_connection_attempts))
        self.classify = classify or _default_classify
        self.sleep = sleep or time.sleep
        self.clock = clock or time.monotonic
        self.rng = rng or random.Random()
        self.retries = 0  # total retries performed; read by tests and benchmarks

    def delay(self, attempt, retry_after=None):
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        if retry_after:
            return min(float(retry_after), self.max_delay)
        ceiling = min(self.max_delay, self.base_delay * (2 ** (attempt - 1)))
        return self.rng.uniform(ceiling / 2.0, ceiling)

    def call(self, func, *args, **kwargs):
        """Call ``func`` and retry retryable failures within the attempt and time budget."""
        start = self.clock()
        attempt = 0
        while True:
            attempt += 1
            try:
                return func(*args, **kwargs)
            except Exception as exc:  # pylint: disable=broad-except
                info = self.classify(exc)
                if info is None:
                    raise
                code, status, retry_after = info
                if not is_retryable(code, status):
                    raise
                limit = self.max_connection_attempts if code == CONNECTION_ERROR_CODE else self.max_attempts
                if attempt >= min(limit, self.max_attempts):
                    raise
                wait = self.delay(attempt, retry_after)
                if self.clock() - start + wait > self.max_total:
                    raise
                self.retries += 1
                self.sleep(wait)

    def __call__(self, func):
        """Use as a decorator: ``@retry`` wraps ``func`` with :meth:`call`."""
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            return self.call(func, *args, **kwargs)
        return wrapper


def _default_classify(exc):
    code = getattr(exc, 'code', None)
    status = getattr(exc, 'status', None)
    if code is None and status is None:
        return None
    return code, status, getattr(exc, 'retry_after', None)


def retried(func):
    """Decorator for API functions taking ``clients`` first: retry with ``clients.retry``.

    The policy is read at call time, so one function serves modules with different
    ``max_retries``/``timeout`` settings.
    """
    @functools.wraps(func)
    def wrapper(clients, *args, **kwargs):
        return clients.retry.call(func, clients, *args, **kwargs)
    return wrapper
