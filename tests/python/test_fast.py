"""SASL2 and FAST options of epode.Client, and epode.FastTokenFile, without
a server (the logins themselves: tests/integration/test_sasl2.py)."""

import os
import stat

import pytest

import epode

UA = "d4b5a1a2-3c4d-4e5f-8a9b-0c1d2e3f4a5b"


def test_user_agent_given_or_made():
    c = epode.Client("a@localhost", "pw", user_agent=UA)
    assert c.user_agent_id == UA
    made = epode.Client("a@localhost", "pw").user_agent_id
    assert len(made) == 36 and made[14] == "4" and made[19] in "89ab"
    with pytest.raises(epode.Error):
        epode.Client("a@localhost", "pw", user_agent="not-a-uuid")
    epode.Client("a@localhost", "pw", sasl2=False)


def test_store_needs_load_and_store():
    with pytest.raises(TypeError):
        epode.Client("a@localhost", "pw", fast_token_store=object())


def test_fast_token_file_round_trip(tmp_path):
    path = str(tmp_path / "tok")
    f = epode.FastTokenFile(path)  # missing: empty
    assert f.user_agent_id is None and f.load("a@localhost") is None
    c = epode.Client("a@localhost", "pw", fast_token_store=f)
    assert f.user_agent_id == c.user_agent_id  # the id epode made, kept with the token
    f.store("a@localhost", {"jid": "a@localhost", "mechanism": "HT-SHA-256-NONE",
                            "token": "secret-token:x", "expiry": None})
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    g = epode.FastTokenFile(path)
    assert g.user_agent_id == c.user_agent_id
    assert g.load("a@localhost") == {"jid": "a@localhost", "mechanism": "HT-SHA-256-NONE",
                                     "token": "secret-token:x", "expiry": None}
    # a client given the file takes its user-agent id
    assert epode.Client("a@localhost", "pw", fast_token_store=g).user_agent_id == c.user_agent_id
    g.store("a@localhost", None)  # refused: forgotten, the id stays
    h = epode.FastTokenFile(path)
    assert h.load("a@localhost") is None and h.user_agent_id == c.user_agent_id
    assert [p for p in os.listdir(tmp_path) if p != "tok"] == []  # no temporary left


def test_fast_token_file_refuses_other_files(tmp_path):
    p = tmp_path / "x"
    p.write_text("hello world\nthis is not it\n")
    with pytest.raises(ValueError):
        epode.FastTokenFile(str(p))


def test_store_may_return_a_mapping_that_builds_its_values():
    """load() may return any Mapping, also one that makes a new str at each
    access (nothing else holds it): epode reads the values after the
    lookups, so the binding must hold them (issue-16 review: a
    use-after-free the ASan run of this suite catches)."""
    import asyncio
    from collections.abc import Mapping

    class Fresh(Mapping):  # type: ignore[type-arg]
        def __getitem__(self, k: str) -> str:
            if k == "jid":
                return "".join(["alice", "@", "example.test"])
            if k == "mechanism":
                return "".join(["HT-SHA-256-", "NONE"])
            if k == "token":
                # over 512 bytes: from malloc, not pymalloc (ASan sees it freed)
                return "".join(["secret-token:", "x" * 600])
            raise KeyError(k)

        def __iter__(self):  # type: ignore[no-untyped-def]
            return iter(("jid", "mechanism", "token"))

        def __len__(self) -> int:
            return 3

    loads = []

    class Store:
        def load(self, jid):  # type: ignore[no-untyped-def]
            loads.append(jid)
            return Fresh()

        def store(self, jid, token):  # type: ignore[no-untyped-def]
            pass

    async def main() -> None:
        async def hang_up(r, w):  # type: ignore[no-untyped-def]
            w.close()

        srv = await asyncio.start_server(hang_up, "127.0.0.1", 0)
        port = srv.sockets[0].getsockname()[1]
        c = epode.Client("alice@example.test", "pw", server="127.0.0.1", port=port,
                         tls="disabled", fast_token_store=Store())
        with pytest.raises(Exception):
            await c.connect(timeout=3)
        srv.close()
        await srv.wait_closed()

    asyncio.run(main())
    assert loads and loads[0] == "alice@example.test"


def test_fast_token_file_refuses_control_characters(tmp_path):
    """A newline in a value would add lines (keys) to the file: refused,
    the file as it was (issue-16 review)."""
    path = str(tmp_path / "tok")
    f = epode.FastTokenFile(path)
    good = {"jid": "a@localhost", "mechanism": "HT-SHA-256-NONE", "token": "secret-token:x",
            "expiry": None}
    f.store("a@localhost", good)
    for k, v in (("token", "abc\njid victim@elsewhere"), ("expiry", "x\rtoken y"),
                 ("jid", "a@localhost\x00"), ("mechanism", "HT\x7f")):
        with pytest.raises(ValueError):
            f.store("a@localhost", dict(good, **{k: v}))
    assert epode.FastTokenFile(path).load("a@localhost") == good
