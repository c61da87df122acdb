# -*- coding: utf-8 -*-
# Copyright: underlay.alicloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    """Shared Alibaba Cloud auth, region, endpoint and retry options."""

    # Modules: environment variables are described in prose (the SDK reads them itself).
    DOCUMENTATION = r"""
options:
  region:
    description:
      - Alibaba Cloud region id, for example V(cn-hangzhou).
      - Falls back to the environment variable E(ALIBABA_CLOUD_REGION_ID).
    type: str
  access_key_id:
    description:
      - AccessKey id. Must be given together with O(access_key_secret).
      - When neither is set, the Alibaba Cloud default credential chain is used, in this order
        E(ALIBABA_CLOUD_ACCESS_KEY_ID), E(ALIBABA_CLOUD_ACCESS_KEY_SECRET) and E(ALIBABA_CLOUD_SECURITY_TOKEN);
        OIDC role (E(ALIBABA_CLOUD_ROLE_ARN), E(ALIBABA_CLOUD_OIDC_PROVIDER_ARN), E(ALIBABA_CLOUD_OIDC_TOKEN_FILE));
        the Aliyun CLI file C(~/.aliyun/config.json); the credentials file C(~/.alibabacloud/credentials.ini)
        (or E(ALIBABA_CLOUD_CREDENTIALS_FILE)); the ECS instance RAM role; E(ALIBABA_CLOUD_CREDENTIALS_URI).
    type: str
  access_key_secret:
    description:
      - AccessKey secret matching O(access_key_id). Never logged or shown in errors.
    type: str
  security_token:
    description:
      - STS security token, for temporary AccessKeys.
    type: str
  role_arn:
    description:
      - ARN of a RAM role to assume (AssumeRole through STS) with the credentials found as above.
    type: str
  role_session_name:
    description:
      - Session name used with O(role_arn). Defaults to V(underlay-alicloud).
    type: str
  profile:
    description:
      - Named profile of the Aliyun CLI config file or of the credentials file, used instead of
        the default chain when no AccessKey is given.
    type: str
  ecs_endpoint:
    description:
      - ECS API endpoint override, either a URL (V(http://127.0.0.1:8080) selects plain HTTP) or a host name.
      - Falls back to E(ALIBABA_CLOUD_ECS_ENDPOINT); otherwise the public endpoint of the region is used
        (C(ecs.<region>.aliyuncs.com), C(ecs-cn-hangzhou.aliyuncs.com) in cn-hangzhou).
    type: str
  vpc_endpoint:
    description:
      - VPC API endpoint override, same forms as O(ecs_endpoint).
      - Falls back to E(ALIBABA_CLOUD_VPC_ENDPOINT); otherwise C(vpc.<region>.aliyuncs.com)
        (C(vpc.aliyuncs.com) in cn-hangzhou).
    type: str
  timeout:
    description:
      - Seconds to wait for one API response (the connection attempt itself waits at most 5 seconds).
    type: int
    default: 10
  max_retries:
    description:
      - How many times a throttled (C(Throttling*)), unavailable (C(ServiceUnavailable), HTTP 5xx) or
        failed connection request is retried, with jittered exponential backoff.
      - Connection failures are retried at most twice, and all attempts of one request stop after 60 seconds.
    type: int
    default: 8
requirements:
  - alibabacloud-tea-openapi
  - alibabacloud-credentials
notes:
  - The AccessKey secret and the security token never appear in results or error messages.
"""

    # Inventory and other plugins: the same options with env/ini sources.
    PLUGINS = r"""
options:
  access_key_id:
    description:
      - AccessKey id. Must be given together with O(access_key_secret).
      - When neither is set, the Alibaba Cloud default credential chain is used (environment
        E(ALIBABA_CLOUD_ACCESS_KEY_ID)/E(ALIBABA_CLOUD_ACCESS_KEY_SECRET)/E(ALIBABA_CLOUD_SECURITY_TOKEN),
        OIDC role, Aliyun CLI profile, credentials file, ECS instance RAM role, credentials URI).
    type: str
  access_key_secret:
    description:
      - AccessKey secret matching O(access_key_id). Never logged or shown in errors.
    type: str
  security_token:
    description:
      - STS security token, for temporary AccessKeys.
    type: str
  role_arn:
    description:
      - ARN of a RAM role to assume with the credentials found as above.
    type: str
  role_session_name:
    description:
      - Session name used with O(role_arn). Defaults to V(underlay-alicloud).
    type: str
  profile:
    description:
      - Named profile of the Aliyun CLI config file or of the credentials file.
    type: str
    env:
      - name: ALIBABA_CLOUD_PROFILE
  ecs_endpoint:
    description:
      - ECS API endpoint override, a URL (V(http://127.0.0.1:8080) selects plain HTTP) or a host name.
      - Defaults to the public endpoint of each region.
    type: str
    env:
      - name: ALIBABA_CLOUD_ECS_ENDPOINT
  vpc_endpoint:
    description:
      - VPC API endpoint override, same forms as O(ecs_endpoint).
    type: str
    env:
      - name: ALIBABA_CLOUD_VPC_ENDPOINT
  timeout:
    description:
      - Seconds to wait for one API response.
    type: int
    default: 10
  max_retries:
    description:
      - How many times a throttled, unavailable or failed connection request is retried
        (jittered exponential backoff; connection failures at most twice; 60 seconds per request at most).
    type: int
    default: 8
requirements:
  - alibabacloud-tea-openapi
  - alibabacloud-credentials
"""
