"""Two instances behind nginx, sharing PostgreSQL and Redis: the deployment the README describes.

`bench/cluster.py` starts the topology (the same code as `make cluster`): Debian's nginx, two
`mipomersen-cds serve` instances, the local PostgreSQL in a database of its own and the local
Redis in a database number of its own. Authentication is on; every call carries a fresh JWT.

Needs nginx (`.ci/run` installs it), PostgreSQL (MIPOMERSEN_CDS_TEST_DATABASE_URL, as `.ci/run`
sets it; the cluster gets database `mipomersen_cluster_test` on that server) and Redis
(MIPOMERSEN_CDS_TEST_CLUSTER_REDIS_URL, default database 5 of the local Redis); skipped, saying
which is missing, otherwise. The fault figures are logged: run with `--log-cli-level=INFO`.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from sqlalchemy.engine import make_url

from bench.cluster import (
    DISCOVERY_PATH,
    FEEDBACK_PATH,
    SIGN_PATH,
    Cluster,
    ClusterSettings,
    Exchange,
    Traffic,
    feedback_body,
    find_nginx,
    hook_request_body,
    request,
    running_cluster,
)
from tests.databases import TEST_DATABASE_VARIABLE

pytestmark = [pytest.mark.cluster, pytest.mark.slow]  # nginx and two gunicorn instances
logger = logging.getLogger(__name__)
REDIS_VARIABLE = "MIPOMERSEN_CDS_TEST_CLUSTER_REDIS_URL"
CLUSTER_DATABASE = "mipomersen_cluster_test"


def _cluster_settings() -> ClusterSettings:
    """Return where the cluster's stores are, or skip saying what is missing."""
    if find_nginx() is None:
        pytest.skip("nginx is not installed (apt-get install nginx; .ci/run installs it)")
    server = os.environ.get(TEST_DATABASE_VARIABLE)
    if not server:
        pytest.skip(f"needs PostgreSQL: {TEST_DATABASE_VARIABLE} is not set (.ci/run sets it)")
    redis_url = os.environ.get(REDIS_VARIABLE, "redis://127.0.0.1:6379/5")
    try:
        redis.Redis.from_url(redis_url, socket_connect_timeout=0.5).ping()
    except redis.RedisError:
        pytest.skip(f"needs Redis: none answers at {redis_url} ({REDIS_VARIABLE})")
    database_url = make_url(server).set(drivername="postgresql+psycopg", database=CLUSTER_DATABASE)
    return ClusterSettings(
        database_url=database_url.render_as_string(hide_password=False),
        redis_url=redis_url,
        instances=2,
        workers=2,
        threads=4,
        drain_seconds=3,
        fresh=True,
    )


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with running_cluster(_cluster_settings()) as started:
        yield started


def _report_total(cluster: Cluster) -> dict[str, Any]:
    completed = cluster.cli("report", "--format", "json")
    assert completed.returncode == 0, completed.stderr
    total: dict[str, Any] = json.loads(completed.stdout)["total"]
    return total


def _statuses(exchanges: list[Exchange]) -> Counter[tuple[str, int]]:
    return Counter((exchange.kind, exchange.status) for exchange in exchanges)


def _assert_every_success_is_stored(cluster: Cluster, exchanges: list[Exchange]) -> None:
    stored = cluster.stored()
    for exchange in exchanges:
        if exchange.status != 200:
            continue
        if exchange.kind == "hook":
            assert stored.audited.get(exchange.key) == 200, f"hook call {exchange.key} unaudited"
        elif exchange.kind == "feedback":
            assert exchange.key in stored.feedback_cards, f"feedback on {exchange.key} lost"


def _failures(cluster: Cluster, exchanges: list[Exchange]) -> str:
    failed = [exchange for exchange in exchanges if exchange.status != 200]
    errors = [line for line in cluster.error_log().splitlines() if "[error]" in line]
    return f"{failed[:5]}; nginx: {errors[-5:]}"


def test_a_jwt_used_on_one_instance_is_refused_on_the_other(cluster: Cluster) -> None:
    first, second = cluster.instances
    token = cluster.ehr.token(cluster.base_url + DISCOVERY_PATH)
    assert request(first.port, "GET", DISCOVERY_PATH, token=token).status == 200
    assert request(second.port, "GET", DISCOVERY_PATH, token=token).status == 401
    assert request(cluster.nginx_port, "GET", DISCOVERY_PATH, token=token).status == 401
    assert cluster.call("GET", DISCOVERY_PATH).status == 200  # a fresh JWT passes


def test_one_report_counts_the_cards_of_both_instances(cluster: Cluster) -> None:
    before = _report_total(cluster)
    cards: dict[str, list[str]] = {}
    for instance in cluster.instances:
        for number in range(3):
            body = hook_request_body(f"report-{instance.name}-{number}")
            answer = cluster.call("POST", SIGN_PATH, body, port=instance.port)
            assert answer.status == 200
            cards.setdefault(instance.name, []).append(answer.json()["cards"][0]["uuid"])
    # Feedback on a card reaches the other instance: the card is known there too.
    first, second = cluster.instances
    for card, instance in ((cards[first.name][0], second), (cards[second.name][0], first)):
        answer = cluster.call("POST", FEEDBACK_PATH, feedback_body(card), port=instance.port)
        assert answer.status == 200
        assert answer.json()["feedback"][0]["cardStatus"] == "issued"
    after = _report_total(cluster)
    assert after["shown"] - before["shown"] == 6
    assert after["overridden"] - before["overridden"] == 2


def test_losing_an_instance_under_load_loses_no_answered_call(cluster: Cluster) -> None:
    victim, survivor = cluster.instances
    with Traffic(cluster, clients=4) as traffic:
        time.sleep(1.5)
        killed_at = time.monotonic()
        gone_at = cluster.kill(victim)  # its port refuses connections from here on
        time.sleep(3)
    exchanges = traffic.exchanges
    in_flight = [e for e in exchanges if e.started < gone_at and e.ended > killed_at]
    after = [e for e in exchanges if e.started > gone_at]
    stored = cluster.stored()
    unanswered_but_stored = [
        e
        for e in exchanges
        if e.status != 200
        and (e.key in stored.audited if e.kind == "hook" else e.key in stored.feedback_cards)
    ]
    logger.info(
        "instance loss: %d exchanges, %s; in flight at SIGKILL: %s; started after: %s; "
        "answered 502 yet stored: %s",
        len(exchanges),
        dict(_statuses(exchanges)),
        dict(_statuses(in_flight)),
        dict(_statuses(after)),
        dict(_statuses(unanswered_but_stored)),
    )
    # Calls in flight on the killed instance get nginx's 502 (a POST already sent is not resent),
    # a 401 for a GET nginx resent to the survivor with a JWT the dead instance had already
    # recorded (refused as a replay), or a closed connection (0) when the answer was cut off.
    assert {exchange.status for exchange in in_flight} <= {0, 200, 401, 502}
    assert all(e.kind == "discovery" for e in in_flight if e.status == 401)
    # nginx keeps answering: everything sent after the loss went to the survivor.
    assert after and {exchange.status for exchange in after} == {200}, _failures(cluster, after)
    assert {kind for kind, _ in _statuses(after)} == {"hook", "feedback", "discovery"}
    _assert_every_success_is_stored(cluster, exchanges)
    cluster.start_instance(victim)  # whole again for the next test
    assert survivor.process is not None and survivor.process.poll() is None


def test_a_rolling_restart_drains_each_instance_and_drops_no_request(cluster: Cluster) -> None:
    generations = [instance.generation for instance in cluster.instances]
    with Traffic(cluster, clients=4) as traffic:
        time.sleep(0.5)
        steps = cluster.rolling_restart()
        time.sleep(0.5)
    exchanges = traffic.exchanges
    logger.info(
        "rolling restart: %d exchanges, %s; steps: %s",
        len(exchanges),
        dict(_statuses(exchanges)),
        [(s.instance, s.exit_code, round(s.seconds_to_stop, 2)) for s in steps],
    )
    assert [step.instance for step in steps] == [instance.name for instance in cluster.instances]
    for step in steps:
        assert step.readyz_while_draining.status == 503
        assert step.readyz_while_draining.json()["checks"]["shutdown"] == "draining"
        assert step.exit_code == 0  # a graceful stop
        assert step.seconds_to_stop >= cluster.settings.drain_seconds
    assert [i.generation for i in cluster.instances] == [g + 1 for g in generations]
    assert {exchange.status for exchange in exchanges} == {200}, _failures(cluster, exchanges)
    assert traffic.count("hook") > 20
    _assert_every_success_is_stored(cluster, exchanges)
