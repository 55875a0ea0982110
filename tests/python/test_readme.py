"""The README's Python example works as written."""

import asyncio
import os
import re
import subprocess
import sys

import pytest

import epode

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def readme_block():
    text = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    m = re.search(r"```python\n(.*?)```", text, re.S)
    assert m, "README.md has no python block"
    return m.group(1)


def test_the_block_compiles():
    compile(readme_block(), "README.md", "exec")


@pytest.mark.server
def test_the_readme_bot_echoes_and_stops(prosody, tmp_path):
    script = tmp_path / "bot.py"
    script.write_text(readme_block())
    jid, pw = prosody.account("readme")
    env = dict(os.environ, BOT_JID=jid, BOT_PASSWORD=pw, BOT_SERVER=prosody.host,
               BOT_PORT=str(prosody.port), BOT_CA_FILE=prosody.ca_file)
    bot = subprocess.Popen([sys.executable, str(script)], env=env, stderr=subprocess.PIPE,
                           text=True)
    try:
        pj, ppw = prosody.account("peer")

        async def talk():
            got = asyncio.Queue()
            async with epode.Client(pj, ppw, **prosody.kwargs()) as c:
                c.on_message(lambda m: got.put_nowait(m.body) if m.body else None)
                for _ in range(100):  # until the bot is online
                    c.send_message(jid, "hi")
                    try:
                        return await asyncio.wait_for(got.get(), 0.3), c.send_message(jid, "bye")
                    except asyncio.TimeoutError:
                        continue
            return None, None

        first, _ = asyncio.run(talk())
        assert first == "hi"
        assert bot.wait(timeout=20) == 0, bot.stderr.read()
    finally:
        if bot.poll() is None:
            bot.kill()
            bot.wait()
