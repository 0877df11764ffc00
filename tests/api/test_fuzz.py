"""Requests generated from the service's own /openapi.json (schemathesis): whatever a client
sends, with a valid admin token, the service answers without a 500 and keeps answering.

Bounded: a few examples per operation, so it runs in seconds; the schemathesis CLI can
run it longer against `bootvol serve` (``st run http://…/openapi.json -H 'X-Auth-Token: …'``).
"""

from __future__ import annotations

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .conftest import Service

EXAMPLES_PER_OPERATION = 4
# Glance's JSON Patch media type is JSON (Image API v2, "Update image").
schemathesis.serializer.alias("application/openstack-images-v2.1-json-patch", "application/json")


def test_no_request_from_the_schema_gets_a_500(service: Service) -> None:
    token, _ = service.token()
    schema = schemathesis.openapi.from_url(f"{service.base_url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 20
    server_errors: list[str] = []

    with httpx.Client(base_url=service.base_url, timeout=30) as client:
        for operation in operations:

            @settings(
                max_examples=EXAMPLES_PER_OPERATION,
                deadline=None,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            @given(case=operation.as_strategy(), data=st.data())
            def send(case, data) -> None:  # type: ignore[no-untyped-def]
                kwargs = case.as_transport_kwargs(base_url=service.base_url)
                headers = {**(kwargs.pop("headers", None) or {}), "X-Auth-Token": token}
                response = client.request(
                    kwargs.pop("method"), kwargs.pop("url"), headers=headers, **_body(kwargs)
                )
                if response.status_code >= 500:
                    server_errors.append(
                        f"{case.method} {case.formatted_path}: {response.status_code} "
                        f"{response.text[:200]}"
                    )

            send()
        # Still up, and the token still works.
        assert client.get("/volume/v3/", headers={"X-Auth-Token": token}).status_code < 500
    assert server_errors == []


def _body(kwargs: dict) -> dict:  # type: ignore[type-arg]
    allowed = ("params", "json", "content", "data", "files", "cookies")
    return {key: kwargs[key] for key in allowed if kwargs.get(key) is not None}


pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
