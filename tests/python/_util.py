"""Helpers shared by the Python binding's tests."""

import asyncio


async def until(pred, timeout=10.0, what="the condition"):
    """Waits (running the loop) until pred() is true."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not pred():
        if loop.time() > end:
            raise AssertionError("timed out waiting for %s" % what)
        await asyncio.sleep(0.02)
