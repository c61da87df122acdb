# -*- coding: utf-8 -*-
# Copyright: underlay.alicloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One exception type for every Alibaba API failure, with secrets redacted.

SDK exceptions carry the request, headers and a long multi-line message; modules and the
inventory only need a single line: ``"<Action> failed: <Code>: <Message> (RequestId: <id>)"``.
"""

from __future__ import annotations

import re

from ansible_collections.underlay.alicloud.plugins.module_utils.retry import (
    CONNECTION_ERROR_CODE, CONNECTION_LOST_CODE, READ_TIMEOUT_CODE)

REDACTED = '********'

# Authorisation refusals (RAM policy): a caller may skip such a region. Invalid credentials are
# not in this list on purpose: they fail every region and must always be reported.
PERMISSION_CODES = ('Forbidden', 'NoPermission', 'UnauthorizedOperation')

# Key=value style echoes of credentials some gateways put into error text.
_SECRET_PATTERNS = (
    re.compile(r'(?i)(access_?key_?secret|accesskeysecret|security_?token|securitytoken|secret|signature)'
               r'(["\']?\s*[:=]\s*["\']?)([^"\'\s,&;}]+)'),
)


class AlicloudApiError(Exception):
    """An API (or transport) failure of one Alibaba action."""

    def __init__(self, action, code, message, request_id=None, status=None, retry_after=None):
        self.action = action
        self.code = code or 'Unknown'
        self.message = message or ''
        self.request_id = request_id
        self.status = status
        self.retry_after = retry_after
        super().__init__(str(self))

    def __str__(self):
        text = '%s failed: %s: %s' % (self.action, self.code, self.message)
        if self.request_id:
            text += ' (RequestId: %s)' % self.request_id
        return text

    def to_dict(self):
        """Structured form for module results (``error`` key)."""
        return {'action': self.action, 'code': self.code, 'message': self.message,
                'request_id': self.request_id, 'status': self.status}


def redact(text, secrets=()):
    """Remove every known secret value and any ``secret=...``-style echo from ``text``."""
    text = '' if text is None else str(text)
    for secret in secrets:
        if secret and len(str(secret)) >= 4:
            text = text.replace(str(secret), REDACTED)
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + m.group(2) + REDACTED, text)
    return _one_line(text)


def _one_line(text):
    return ' '.join(text.split())


# (text in the transport error, short reason, code), first match wins; TLSError is not retried.
_TRANSPORT_FAILURES = (
    ('Read timed out', 'no answer within the read timeout', READ_TIMEOUT_CODE),
    ('Connection refused', 'connection refused', CONNECTION_ERROR_CODE),
    ('timed out', 'timed out', CONNECTION_ERROR_CODE),
    ('Name or service not known', 'host name not resolvable', CONNECTION_ERROR_CODE),
    ('nodename nor servname', 'host name not resolvable', CONNECTION_ERROR_CODE),
    ('Temporary failure in name resolution', 'host name not resolvable', CONNECTION_ERROR_CODE),
    ('RemoteDisconnected', 'connection closed by the server without an answer', CONNECTION_LOST_CODE),
    ('Connection reset', 'connection reset', CONNECTION_LOST_CODE),
    ('Connection aborted', 'connection aborted', CONNECTION_LOST_CODE),
    ('CERTIFICATE_VERIFY_FAILED', 'TLS certificate verification failed', 'TLSError'),
    ('SSLError', 'TLS error', 'TLSError'),
)


_READ_TIMEOUT_RE = re.compile(r'read timeout=([0-9.]+)')


def _transport_failure(exc, where):
    """``(message, code)`` for a transport failure (refused, timeout, DNS, TLS, no answer), else None."""
    inner = getattr(exc, 'inner_exception', None) or exc
    text = getattr(inner, 'message', None) or str(inner)
    for marker, reason, code in _TRANSPORT_FAILURES:
        if marker not in text:
            continue
        if code == READ_TIMEOUT_CODE:
            seconds = _READ_TIMEOUT_RE.search(text)
            return ('no answer from%s within %s s (read timeout; the request may have run, raise timeout if the API is slow)'
                    % (where, seconds.group(1).rstrip('0').rstrip('.') if seconds else 'the read timeout'), code)
        if code == CONNECTION_LOST_CODE:
            return 'connection to%s lost after the request was sent: %s' % (where, reason), code
        return 'cannot connect to%s: %s' % (where, reason), code
    return None


def _retry_after_seconds(exc):
    """The server's x-acs-retry-after hint (the SDK keeps it in milliseconds) in seconds."""
    value = getattr(exc, 'retry_after', None)
    try:
        return float(value) / 1000.0 if value else None
    except (TypeError, ValueError):
        return None


def from_sdk_exception(exc, action, secrets=(), endpoint=None):
    """Build an :class:`AlicloudApiError` from any exception the SDK raised for ``action``.

    ``secrets`` are literal values (AccessKey secret, security token) removed from the message
    wherever the server or the SDK echoed them. ``endpoint`` names the host in transport errors.
    """
    if isinstance(exc, AlicloudApiError):
        return exc
    data = getattr(exc, 'data', None)
    status = getattr(exc, 'status_code', None) or getattr(exc, 'statusCode', None)
    code = getattr(exc, 'code', None)
    if isinstance(data, dict) and (data.get('Code') or data.get('Message')):
        # The raw server body: the SDK's own .message is prefixed with "code: 400, ...".
        return AlicloudApiError(action, data.get('Code') or code, redact(data.get('Message'), secrets),
                                request_id=data.get('RequestId') or getattr(exc, 'request_id', None),
                                status=status or data.get('statusCode'), retry_after=_retry_after_seconds(exc))
    if code and type(exc).__name__ != 'UnretryableException':
        # ClientException raised by the SDK itself, e.g. InvalidCredentials, ParameterMissing.
        return AlicloudApiError(action, code, redact(getattr(exc, 'message', None) or str(exc), secrets),
                                request_id=getattr(exc, 'request_id', None), status=status)
    inner = getattr(exc, 'inner_exception', None)
    if 'CredentialException' in (type(exc).__name__, type(inner).__name__):
        return AlicloudApiError(action, 'InvalidCredentials', redact(
            'no usable credentials: set access_key_id and access_key_secret (or ALIBABA_CLOUD_ACCESS_KEY_ID and '
            'ALIBABA_CLOUD_ACCESS_KEY_SECRET), a profile, or another source of the default credential chain', secrets))
    where = (' %s' % endpoint) if endpoint else ''
    transport = _transport_failure(exc, where)
    if transport:
        return AlicloudApiError(action, transport[1], redact(transport[0], secrets))
    if inner is not None and 'json format' in str(inner):
        return AlicloudApiError(action, 'InvalidResponse', redact(
            'the endpoint%s did not answer with an Alibaba API response: %s' % (where, str(inner)[:200]), secrets))
    return AlicloudApiError(action, type(inner or exc).__name__, redact(str(inner or exc)[:300], secrets))


def is_permission_error(err):
    """True when the caller's credentials are not allowed to make the call (or are not valid)."""
    code = getattr(err, 'code', None) or ''
    return code.startswith(PERMISSION_CODES)


def is_not_found(err):
    """True for ``*.NotFound`` codes (unknown ENI, instance, vSwitch, ...)."""
    code = getattr(err, 'code', None) or ''
    return code.endswith('NotFound') or '.NotFound' in code or code.startswith('NotFound')
