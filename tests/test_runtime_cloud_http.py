"""The cloud stream's transport (`pdcore.runtime.cloud_http`): one keep-alive pool per event loop, closed
with its loop even when nobody closes it, a new one on the next loop, and a request body that is exact
JSON."""

from __future__ import annotations

import asyncio
import gc
import warnings

import pytest

pytest.importorskip("aiohttp", reason="the live runtime needs the `device` extra (aiohttp)")

from pdcore.runtime import CloudClient
from pdcore.runtime.cloud_http import StreamTransport
from pdcore.runtime.testing import CloudScript, FakeCloud, unused_url

PIECES = ["One", " two", " three."]


async def texts(client: CloudClient) -> list[str]:
    return [event.text async for event in client.stream("prompt", max_tokens=8)]


def test_a_client_never_closed_leaves_no_open_pool_when_its_loop_ends() -> None:
    """``asyncio.run`` closes the pool with its loop; the next loop opens its own; nothing warns."""
    with FakeCloud(CloudScript(PIECES, first_delay_s=0.0, gap_s=0.0)) as cloud:
        client = CloudClient(cloud.url)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            first = asyncio.run(texts(client))
            pool = client._stream._session  # reason: the pool's state is what is tested
            assert pool is not None
            assert pool.closed, "closed when its loop shut down"
            second = asyncio.run(texts(client))
            assert client._stream._session is not pool
            assert client._stream._session is not None
            assert client._stream._session.closed
            del client
            gc.collect()
    assert first == second == PIECES


def test_requests_on_one_loop_share_one_connection() -> None:
    with FakeCloud(CloudScript(PIECES, first_delay_s=0.0, gap_s=0.0)) as cloud:

        async def three() -> list[list[str]]:
            async with CloudClient(cloud.url) as client:
                answers = [await texts(client) for _ in range(3)]
                pools = {id(client._stream._session)}
                assert len(pools) == 1
                return answers

        assert asyncio.run(three()) == [PIECES] * 3
    assert len(cloud.requests) == 3


def test_aclose_closes_the_pool_and_a_later_request_opens_another() -> None:
    with FakeCloud(CloudScript(PIECES, first_delay_s=0.0, gap_s=0.0)) as cloud:

        async def closed_then_again() -> list[str]:
            client = CloudClient(cloud.url)
            await texts(client)
            pool = client._stream._session
            await client.aclose()
            assert pool is not None
            assert pool.closed
            again = await texts(client)
            await client.aclose()
            return again

        assert asyncio.run(closed_then_again()) == PIECES


def test_the_body_is_compact_json_and_nan_is_refused_before_sending() -> None:
    with FakeCloud(CloudScript(PIECES, first_delay_s=0.0, gap_s=0.0)) as cloud:
        client = CloudClient(cloud.url, extra_body={"note": "café"})
        asyncio.run(texts(client))
        assert cloud.requests[0].body["note"] == "café"
        bad = CloudClient(cloud.url, extra_body={"temperature": float("nan")})
        with pytest.raises(ValueError, match="JSON"):
            asyncio.run(texts(bad))
    assert len(cloud.requests) == 1


def test_an_https_endpoint_builds_its_tls_context_up_front() -> None:
    assert StreamTransport("https://cloud.example/v1/completions", **_TIMEOUTS)._tls is not None
    assert StreamTransport("http://127.0.0.1:1/v1/completions", **_TIMEOUTS)._tls is None


_TIMEOUTS = {"connect_timeout": 1.0, "read_timeout": 1.0, "headers": {}}


def test_warm_opens_the_pool_and_a_cloud_that_is_down_is_left_to_the_first_request() -> None:
    with FakeCloud(CloudScript(PIECES, first_delay_s=0.0, gap_s=0.0)) as cloud:

        async def warmed() -> list[str]:
            async with CloudClient(cloud.url) as client:
                await client.warm()
                pool = client._stream._session
                assert pool is not None
                assert not pool.closed
                answer = await texts(client)
                assert client._stream._session is pool
                return answer

        assert asyncio.run(warmed()) == PIECES

    async def down() -> None:
        async with CloudClient(unused_url(), info_timeout=0.5) as client:
            await client.warm()  # refused at once: nothing raised, nothing left open

    asyncio.run(down())
