"""GET /metrics: the Prometheus text format (parsed with prometheus-client's own parser),
controller-runtime's names and labels, no8sd's own figures, and who may read them."""

from __future__ import annotations

from typing import Any

from authkit import admin_token, bearer, make_role, make_user, token_client
from conftest import create_widget, create_widget_type, get_json, wait_for, wait_ready
from no8sd_testplugins.widgets import WidgetReconciler
from prometheus_client.parser import text_string_to_metric_families


async def scrape(client: Any, headers: dict[str, str] | None = None) -> dict[str, Any]:
    """{(sample name, frozenset of labels): value} of one scrape."""
    resp = await client.get("/metrics", headers=headers)
    assert resp.status == 200, await resp.text()
    assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    samples: dict[Any, float] = {}
    for family in text_string_to_metric_families(await resp.text()):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: dict[Any, float], metric: str, /, **labels: str) -> float:
    return samples.get((metric, frozenset(labels.items())), 0.0)


async def test_reconciles_queue_and_resources_are_counted(make_client):
    client = await make_client(WidgetReconciler())
    await create_widget_type(client)
    ok = [await create_widget(client, f"ok-{i}") for i in range(3)]
    bad = await create_widget(client, "bad", {"size": 1, "fail": "no luck"})
    for widget in ok:
        await wait_ready(client, widget["id"])

    async def failed_once() -> bool:
        body = await get_json(client, f"/api/v1/resources/{bad['id']}")
        return body["status"] == "failed"

    await wait_for(failed_once)
    samples = await scrape(client)
    assert value(samples, "controller_runtime_reconcile_total", controller="widgets",
                 result="success") == 3
    assert value(samples, "controller_runtime_reconcile_total", controller="widgets",
                 result="error") == 1
    assert value(samples, "controller_runtime_reconcile_errors_total", controller="widgets") == 1
    assert value(samples, "workqueue_retries_total", name="widgets") == 1
    assert value(samples, "controller_runtime_reconcile_time_seconds_count",
                 controller="widgets") == 4
    assert value(samples, "workqueue_adds_total", name="widgets") == 4
    assert value(samples, "workqueue_queue_duration_seconds_count", name="widgets") == 4
    assert value(samples, "controller_runtime_max_concurrent_reconciles",
                 controller="widgets") == WidgetReconciler.max_concurrent_reconciles
    assert value(samples, "no8sd_resources", resource_type="Widget", status="ready") == 3
    assert value(samples, "no8sd_resources", resource_type="Widget", status="failed") == 1
    assert value(samples, "no8sd_plugin_state", plugin="widgets", state="running") == 1
    assert value(samples, "no8sd_plugin_state", plugin="widgets", state="crashed") == 0
    assert value(samples, "no8sd_db_commit_batch_units_count") > 0
    assert value(samples, "no8sd_db_size_bytes") > 0
    assert value(samples, "process_resident_memory_bytes") > 0
    head = value(samples, "no8sd_event_log_head_id")
    assert head > 0 and value(samples, "no8sd_event_log_events") == head
    # Each scrape reads the current state.
    await client.put(f"/api/v1/resources/{bad['id']}", json={"spec": {"size": 2}})
    await wait_ready(client, bad["id"], generation=2)
    again = await scrape(client)
    assert value(again, "no8sd_resources", resource_type="Widget", status="ready") == 4
    assert value(again, "no8sd_resources", resource_type="Widget", status="failed") == 0


async def test_queue_depth_and_running_workers(make_client):
    client = await make_client(WidgetReconciler())
    await create_widget_type(client)
    slots = WidgetReconciler.max_concurrent_reconciles
    for i in range(slots + 2):
        await create_widget(client, f"slow-{i}", {"size": 1, "sleep": 30})

    async def saturated() -> dict[Any, float] | None:
        samples = await scrape(client)
        running = value(samples, "controller_runtime_active_workers", controller="widgets")
        return samples if running == slots else None

    samples = await wait_for(saturated)
    assert value(samples, "workqueue_depth", name="widgets") == 2
    assert value(samples, "workqueue_longest_running_processor_seconds", name="widgets") > 0
    assert value(samples, "no8sd_workqueue_oldest_due_seconds", name="widgets") >= 0


async def test_http_requests_by_route_template_with_bounded_labels(make_client):
    client = await make_client(WidgetReconciler())
    await create_widget_type(client)
    widget = await create_widget(client, "one")
    for _ in range(3):
        await get_json(client, f"/api/v1/resources/{widget['id']}")
    await get_json(client, "/api/v1/resources/999999", status=404)
    for i in range(5):  # invented paths and unusual methods do not each add a series
        assert (await client.get(f"/no/such/path/{i}")).status == 404
    for method in ("PROPFIND", "MKCOL", "PURGE", "LOCK", "SEARCH"):
        assert (await client.request(method, "/health")).status == 405
    samples = await scrape(client)
    route = "/api/v1/resources/{resource_id}"
    assert value(samples, "no8sd_http_requests_total", method="GET", route=route,
                 code="200") == 3
    assert value(samples, "no8sd_http_requests_total", method="GET", route=route,
                 code="404") == 1
    assert value(samples, "no8sd_http_request_duration_seconds_count", method="GET",
                 route=route) == 4
    assert value(samples, "no8sd_http_requests_total", method="GET", route="unmatched",
                 code="404") == 5
    assert value(samples, "no8sd_http_requests_total", method="other", route="unmatched",
                 code="405") == 5
    routes = {dict(labels).get("route") for name, labels in samples
              if name == "no8sd_http_requests_total"}
    assert not any(r and r.startswith("/no/such") for r in routes)


async def test_event_streams_are_counted_as_clients(make_client):
    client = await make_client()
    stream = await client.get("/api/v1/events")
    assert stream.status == 200

    async def one_client() -> bool:
        return value(await scrape(client), "no8sd_sse_clients") == 1

    await wait_for(one_client)
    stream.close()


async def test_metrics_need_view_metrics_in_token_mode(make_client):
    client = await token_client(make_client)
    admin = await admin_token(client)
    assert (await client.get("/metrics")).status == 401
    _, nobody = await make_user(client, admin, "nobody")
    resp = await client.get("/metrics", headers=bearer(nobody))
    assert resp.status == 403
    assert (await resp.json())["detail"] == "Insufficient permissions"
    role = await make_role(client, admin, "scraper", [], ["view_metrics"])
    _, scraper = await make_user(client, admin, "prometheus", role_id=role["id"])
    samples = await scrape(client, bearer(scraper))
    assert value(samples, "no8sd_build_info", version=__import__("no8sd").__version__) == 1
    await scrape(client, bearer(admin))


async def test_metrics_public_needs_no_token(make_client):
    client = await token_client(make_client, metrics_public=True)
    await scrape(client)
    # Only /metrics: everything else still needs a token.
    assert (await client.get("/api/v1/resources")).status == 401


async def test_no_metrics_turns_them_off(make_client):
    client = await make_client(metrics=False)
    resp = await client.get("/metrics")
    assert resp.status == 404
    assert "--no-metrics" in (await resp.json())["detail"]
