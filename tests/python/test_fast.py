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
