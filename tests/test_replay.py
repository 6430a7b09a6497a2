"""The JWT replay store: a jti is refused until its token expires, across worker processes.

The Redis tests run against MIPOMERSEN_CDS_TEST_REDIS_URL: `.ci/run` sets it to the local
Redis, and then a Redis that does not answer fails them. Without the variable they try
redis://127.0.0.1:6379/0 and are skipped if nothing answers, so `make test` passes without Redis.
"""

from __future__ import annotations

import multiprocessing
import os
import sqlite3
import uuid
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import closing, contextmanager
from pathlib import Path

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis.backoff import NoBackoff
from redis.retry import Retry

from cds_service.auth.replay import (
    RedisReplayStore,
    ReplayStore,
    SqliteReplayStore,
    open_replay_store,
    token_key,
)
from cds_service.errors import ConfigurationError, ServiceUnavailable
from tests.sqlite_locks import LockWatchingConnection

REDIS_URL_VARIABLE = "MIPOMERSEN_CDS_TEST_REDIS_URL"
REDIS_URL = os.environ.get(REDIS_URL_VARIABLE, "redis://127.0.0.1:6379/0")


class FakeClock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def redis_client() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=0.5, socket_timeout=0.5)
    try:
        client.ping()
    except redis.RedisError as error:
        if REDIS_URL_VARIABLE in os.environ:  # CI names a Redis: it must be there
            pytest.fail(f"{REDIS_URL_VARIABLE} is set but Redis does not answer: {error}")
        pytest.skip(f"no Redis at {REDIS_URL}")
    yield client
    client.close()


@pytest.fixture(params=["sqlite", "redis"])
def store(
    request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock
) -> Iterator[ReplayStore]:
    if request.param == "sqlite":
        yield SqliteReplayStore(tmp_path / "replay.sqlite3", clock=clock)
        return
    client = request.getfixturevalue("redis_client")
    prefix = f"mipomersen-cds-test:{uuid.uuid4()}:"
    yield RedisReplayStore(client, prefix=prefix, clock=clock)
    for key in client.scan_iter(prefix + "*"):
        client.delete(key)


def test_first_use_is_accepted_and_a_replay_refused(store: ReplayStore, clock: FakeClock) -> None:
    key = token_key("https://sandbox.cds-hooks.org", "jti-1")
    assert store.first_use(key, clock.now + 300) is True
    assert store.first_use(key, clock.now + 300) is False
    assert store.first_use(token_key("https://sandbox.cds-hooks.org", "jti-2"), clock.now + 300)


def test_the_same_jti_from_another_issuer_is_another_token(store: ReplayStore) -> None:
    assert store.first_use(token_key("https://a.example", "1"), 2e9)
    assert store.first_use(token_key("https://b.example", "1"), 2e9)


def test_keys_are_bounded_digests() -> None:
    key = token_key("https://a.example", "x" * 10_000)
    assert len(key) == 64 and key != token_key("https://a.example", "x" * 9_999)
    assert token_key("a\nb", "c") != token_key("a", "b\nc")


def test_expired_entries_are_purged(tmp_path: Path, clock: FakeClock) -> None:
    store = SqliteReplayStore(tmp_path / "replay.sqlite3", clock=clock)
    for index in range(5):
        store.first_use(f"old-{index}", clock.now + 10)
    store.first_use("long-lived", clock.now + 1000)
    assert store.count() == 6
    clock.now += 11
    assert store.first_use("new", clock.now + 10)
    assert store.count() == 2  # long-lived and new


def test_redis_keys_expire_with_their_token(redis_client: redis.Redis, clock: FakeClock) -> None:
    prefix = f"mipomersen-cds-test:{uuid.uuid4()}:"
    store = RedisReplayStore(redis_client, prefix=prefix, clock=clock)
    assert store.first_use("k", clock.now + 300)
    ttl = redis_client.pttl(prefix + "k")
    redis_client.delete(prefix + "k")
    assert 299_000 < ttl <= 300_000


def test_an_expired_key_is_used_anew_even_before_the_next_purge(
    tmp_path: Path, clock: FakeClock
) -> None:
    store = SqliteReplayStore(tmp_path / "replay.sqlite3", clock=clock)
    assert store.first_use("k", clock.now + 10)
    clock.now += 10.5  # expired, and within a second of the last purge only from here on
    assert store.first_use("other", clock.now + 10)  # purges "k"
    assert store.first_use("k", clock.now + 0.2)  # stored again, until then
    assert not store.first_use("k", clock.now + 10)
    clock.now += 0.3  # expired again, and no purge since: the store still tells
    assert store.first_use("k", clock.now + 10)
    assert not store.first_use("k", clock.now + 10)


@pytest.mark.slow  # hypothesis: 60 sequences of claims, about 2 s
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    claims=st.lists(
        st.tuples(
            st.sampled_from(["a", "b", "c"]),  # the key
            st.sampled_from([0.0, 0.4, 1.0, 2.5]),  # seconds since the claim before
            st.sampled_from([0.5, 1.0, 3.0]),  # the token's remaining life
        ),
        max_size=25,
    )
)
def test_the_sqlite_store_judges_claims_as_a_table_of_expiry_times_would(
    tmp_path: Path, claims: list[tuple[str, float, float]]
) -> None:
    clock = FakeClock()
    store = SqliteReplayStore(tmp_path / f"replay-{uuid.uuid4()}.sqlite3", clock=clock)
    expiry: dict[str, float] = {}
    for key, pause, life in claims:
        clock.now += pause
        first = key not in expiry or expiry[key] <= clock.now
        if first:
            expiry[key] = clock.now + life
        assert store.first_use(key, clock.now + life) is first, (key, clock.now, expiry)


def test_a_sqlite_claim_holds_no_lock_once_each_statement_returns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clock: FakeClock
) -> None:
    path = tmp_path / "replay.sqlite3"
    store = SqliteReplayStore(path, clock=clock)
    watchers: list[LockWatchingConnection] = []

    @contextmanager
    def watched_connection() -> Iterator[LockWatchingConnection]:
        with closing(sqlite3.connect(path, isolation_level=None)) as connection:
            watchers.append(LockWatchingConnection(connection, str(path)))
            yield watchers[-1]
            watchers[-1].close_watcher()

    monkeypatch.setattr(store, "_connect", watched_connection)
    assert store.first_use("k", clock.now + 10)
    assert not store.first_use("k", clock.now + 10)
    assert [free for watcher in watchers for free in watcher.lock_free_after] == [True] * 3


def _claim_all(path: str, keys: list[str]) -> int:
    store = SqliteReplayStore(Path(path))
    return sum(store.first_use(key, 2e9) for key in keys)


@pytest.mark.slow  # four spawned processes
def test_sqlite_store_is_shared_by_processes(tmp_path: Path) -> None:
    path = tmp_path / "replay.sqlite3"
    SqliteReplayStore(path)
    keys = [f"jti-{index}" for index in range(40)]
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=4, mp_context=context) as pool:
        accepted = list(pool.map(_claim_all, [str(path)] * 4, [keys] * 4))
    assert sum(accepted) == len(keys)


def test_a_broken_sqlite_file_means_503(tmp_path: Path) -> None:
    path = tmp_path / "replay.sqlite3"
    store = SqliteReplayStore(path)
    path.unlink()
    path.mkdir()  # the file is now a directory: SQLite cannot open it
    with pytest.raises(ServiceUnavailable):
        store.first_use("k", 2e9)


def test_a_failure_inside_the_transaction_rolls_back_and_means_503(tmp_path: Path) -> None:
    path = tmp_path / "replay.sqlite3"
    store = SqliteReplayStore(path)
    with closing(sqlite3.connect(path)) as connection:
        connection.execute("DROP TABLE used_jti")
    with pytest.raises(ServiceUnavailable):
        store.first_use("k", 2e9)


def test_an_unreachable_redis_means_503() -> None:
    client = redis.Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
    with pytest.raises(ServiceUnavailable):
        RedisReplayStore(client).first_use("k", 2e9)


def test_open_replay_store_picks_the_backend(tmp_path: Path) -> None:
    assert isinstance(open_replay_store("sqlite", tmp_path / "d"), SqliteReplayStore)
    assert (tmp_path / "d" / "jwt-replay.sqlite3").is_file()
    assert isinstance(open_replay_store("redis://127.0.0.1:6379/0", tmp_path), RedisReplayStore)
    with pytest.raises(ConfigurationError, match="REPLAY_STORE") as raised:
        open_replay_store("redis://:s3cret@127.0.0.1:port/0", tmp_path)
    assert "s3cret" not in str(raised.value)


def test_a_reachable_store_is_ready(store: ReplayStore) -> None:
    assert store.problem() is None  # type: ignore[attr-defined]


def test_an_unreachable_redis_is_named() -> None:
    # No retries: the client's default retries with backoff only add seconds to the same answer.
    client = redis.Redis(
        port=1, socket_connect_timeout=0.5, socket_timeout=0.5, retry=Retry(NoBackoff(), 0)
    )
    gone = RedisReplayStore(client, prefix="x:")
    assert gone.problem() == "unreachable"
