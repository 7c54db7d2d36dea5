"""The HTTP API against a real server on 127.0.0.1, real code servers and a real instance."""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec
import pytest

from tests.web.web_helpers import LOCATION, sse_events, wait_for_file, web_server

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

pytestmark = pytest.mark.anyio


async def test_locations_list_the_loaded_one_and_the_broken_one_with_its_error(
    tmp_path: Path,
) -> None:
    async with web_server(tmp_path, broken=True) as srv:
        reply = await srv.client.get("/api/locations")
        assert reply.status_code == 200
        rows = {row["name"]: row for row in reply.json()}
        good = rows[LOCATION]
        assert good["status"] == "loaded"
        assert good["error"] is None
        assert good["pid"] == srv.workspace.locations[LOCATION].pid
        assert good["server_id"] == srv.workspace.locations[LOCATION].server_id
        assert {"diamond", "configured", "blocked", "__ASSET_JOB"} <= set(good["jobs"])
        assert good["assets"] == ["numbers", "doubled"]
        assert good["schedules"] == ["hourly"]
        assert good["sensors"] == ["watcher"]
        assert good["load_time"] > 0
        bad = rows["broken_orders"]
        assert bad["status"] == "error"
        assert bad["error"]["type"] == "ZeroDivisionError"
        assert "the orders table is empty" in bad["error"]["message"]
        assert "broken_orders.py" in bad["error"]["traceback"]
        assert bad["jobs"] == [] and bad["pid"] is None


async def test_a_job_has_its_steps_and_edges(tmp_path: Path) -> None:
    async with web_server(tmp_path, broken=True) as srv:
        job = (await srv.client.get(f"/api/locations/{LOCATION}/jobs/diamond")).json()
        assert job["name"] == "diamond" and job["location"] == LOCATION
        assert {s["key"] for s in job["steps"]} == {"one", "add_one", "add_one_2", "total"}
        edges = {(e["source"], e["target"]) for e in job["edges"]}
        assert edges == {
            ("one", "add_one"),
            ("one", "add_one_2"),
            ("add_one", "total"),
            ("add_one_2", "total"),
        }
        steps = {s["key"]: s for s in job["steps"]}
        assert sorted(steps["total"]["upstream"]) == ["add_one", "add_one_2"]
        assert steps["add_one"]["is_async"] is True
        configured = (await srv.client.get(f"/api/locations/{LOCATION}/jobs/configured")).json()
        schema = configured["steps"][0]["config_schema"]
        assert "Greeting" in schema["$defs"]

        missing = await srv.client.get(f"/api/locations/{LOCATION}/jobs/nope")
        assert missing.status_code == 404
        error = missing.json()["error"]
        assert error["type"] == "UnknownJobError"
        assert "'nope'" in error["message"] and "diamond" in error["message"]
        nowhere = await srv.client.get("/api/locations/atlantis/jobs/diamond")
        assert nowhere.status_code == 404
        assert nowhere.json()["error"]["type"] == "CodeLocationError"
        assert LOCATION in nowhere.json()["error"]["message"]
        broken = await srv.client.get("/api/locations/broken_orders/jobs/diamond")
        assert broken.status_code == 409
        assert "the orders table is empty" in broken.json()["error"]["message"]


async def test_a_launched_run_streams_every_event_then_the_stream_ends(tmp_path: Path) -> None:
    async with web_server(tmp_path) as srv:
        run_id = await srv.launch("diamond", location=LOCATION, tags={"team": "web"})
        messages = await sse_events(srv.client, f"/api/runs/{run_id}/events")
        assert messages[-1]["event"] == "end"
        events = [m["data"] for m in messages if "event" not in m]
        assert [e["sequence"] for e in events] == list(range(1, len(events) + 1))
        assert [int(m["id"]) for m in messages if "event" not in m] == [
            e["sequence"] for e in events
        ]
        assert events[0]["event_type"] == "RUN_STARTING"
        assert events[-1]["event_type"] == "RUN_SUCCESS"
        assert all(e["run_id"] == run_id for e in events)
        assert all(isinstance(e["message"], str) and e["message"] for e in events)
        successes = [e for e in events if e["event_type"] == "STEP_SUCCESS"]
        assert {e["step_key"] for e in successes} == {"one", "add_one", "add_one_2", "total"}
        assert successes[0]["payload"]["kind"] == "success"

        # Resuming after sequence 5 replays only what came after.
        resumed = await sse_events(
            srv.client, f"/api/runs/{run_id}/events", headers={"last-event-id": "5"}
        )
        tail = [m["data"]["sequence"] for m in resumed if "event" not in m]
        assert tail == list(range(6, len(events) + 1))
        done = await sse_events(
            srv.client, f"/api/runs/{run_id}/events", headers={"last-event-id": str(len(events))}
        )
        assert [m.get("event") for m in done] == ["end"]

        run = (await srv.client.get(f"/api/runs/{run_id}")).json()
        assert run["status"] == "SUCCESS"
        assert run["job"] == "diamond" and run["location"] == LOCATION
        assert run["tags"] == {"team": "web"}
        assert run["event_count"] == len(events)
        assert {s["step_key"]: s["status"] for s in run["steps"]} == dict.fromkeys(
            ["one", "add_one", "add_one_2", "total"], "SUCCESS"
        )


async def test_bad_launches_are_4xx_naming_the_problem(tmp_path: Path) -> None:
    async with web_server(tmp_path, broken=True) as srv:
        post = srv.client.post
        reply = await post("/api/runs", json={"job": "nope"})
        assert reply.status_code == 404
        assert reply.json()["error"]["type"] == "UnknownJobError"
        assert "diamond" in reply.json()["error"]["message"]

        reply = await post("/api/runs", json={"job": "diamond", "location": "atlantis"})
        assert reply.status_code == 404
        assert reply.json()["error"]["type"] == "CodeLocationError"

        reply = await post("/api/runs", json={"job": "diamond", "location": "broken_orders"})
        assert reply.status_code == 409
        assert reply.json()["error"]["type"] == "CodeLocationError"
        assert "broken_orders" in reply.json()["error"]["message"]

        bad_config = {"ops": {"greet": {"config": {"name": 3}}}}
        reply = await post("/api/runs", json={"job": "configured", "run_config": bad_config})
        assert reply.status_code == 422
        error = reply.json()["error"]
        assert error["type"] == "RunConfigError"
        assert "$.ops.greet.config.name" in error["message"]

        reply = await post("/api/runs", json={"job": "configured", "run_config": "ops: [a\nb: 1"})
        assert reply.status_code == 422
        assert reply.json()["error"]["type"] == "RunConfigError"
        assert "line" in reply.json()["error"]["message"]

        reply = await post("/api/runs", json={"job": "diamond", "step_selection": ["nope"]})
        assert reply.status_code == 422
        assert reply.json()["error"]["type"] == "StepSelectionError"
        # Nothing was stored for any of them.
        assert (await srv.client.get("/api/runs")).json() == []

        yaml_config = "ops:\n  greet:\n    config:\n      name: web\n      times: 2\n"
        run_id = await srv.launch("configured", run_config=yaml_config)
        run = await srv.wait_for_status(run_id, {"SUCCESS", "FAILURE"})
        assert run["status"] == "SUCCESS"
        assert run["run_config"] == {"ops": {"greet": {"config": {"name": "web", "times": 2}}}}


async def test_hostile_requests_get_clear_4xx_answers(tmp_path: Path) -> None:
    async with web_server(tmp_path) as srv:
        client = srv.client
        json_header = {"content-type": "application/json"}

        reply = await client.post("/api/runs", content=b'{"job": ', headers=json_header)
        assert reply.status_code == 400
        assert "not valid JSON" in reply.json()["error"]["message"]

        reply = await client.post("/api/runs", json={"job": 12})
        assert reply.status_code == 422
        assert "$.job" in reply.json()["error"]["message"]

        reply = await client.post("/api/runs", json={"job": "diamond", "jobb": 1})
        assert reply.status_code == 422
        assert "jobb" in reply.json()["error"]["message"]

        reply = await client.post(
            "/api/runs", content=b'{"job": "diamond"}', headers={"content-type": "text/plain"}
        )
        assert reply.status_code == 415

        huge = b'{"job": "' + b"x" * (2 * 1024 * 1024) + b'"}'
        reply = await client.post("/api/runs", content=huge, headers=json_header)
        assert reply.status_code == 413

        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(40):
                yield b"x" * 65536

        reply = await client.post("/api/runs", content=chunks(), headers=json_header)
        assert reply.status_code == 413

        alias_bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
            f"{n}: &{n} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
            for p, n in zip("abcdefg", "bcdefgh", strict=True)
        )
        reply = await client.post("/api/runs", json={"job": "diamond", "run_config": alias_bomb})
        assert reply.status_code == 422
        assert "more than" in reply.json()["error"]["message"]

        for path in ("/static/..%2F..%2Fhttp.py", "/static/../app.py", "/static/%2e%2e/app.py"):
            reply = await client.get(path)
            assert reply.status_code == 404, path
        reply = await client.get("/api/runs/" + "a" * 500)
        assert reply.status_code == 404
        assert reply.json()["error"]["type"] == "RunNotFoundError"
        reply = await client.get("/api/runs/not-a-run")
        assert reply.status_code == 404
        assert reply.json()["error"]["type"] == "RunNotFoundError"
        reply = await client.get("/api/runs/not-a-run/events")
        assert reply.status_code == 404

        for query, words in (
            ("limit=0", "limit"),
            ("limit=abc", "limit"),
            ("status=DONE", "DONE"),
            ("tag=novalue", "key=value"),
            ("colour=red", "colour"),
            ("cursor=nope", "cursor"),
        ):
            reply = await client.get(f"/api/runs?{query}")
            assert reply.status_code == 400, query
            assert words in reply.json()["error"]["message"], query

        reply = await client.get("/api/nothing-here")
        assert reply.status_code == 404 and reply.json()["error"]["type"] == "NotFound"
        reply = await client.delete("/api/runs")
        assert reply.status_code == 405
        reply = await client.get("/api/runs/x/events", headers={"last-event-id": "-1"})
        assert reply.status_code in (400, 404)


async def test_runs_filter_by_status_job_location_and_tag_and_page_with_a_cursor(
    tmp_path: Path,
) -> None:
    async with web_server(tmp_path) as srv:
        ids = [await srv.launch("diamond", tags={"n": str(i), "team": "a"}) for i in range(4)]
        ids.append(await srv.launch("recoverable", tags={"team": "b"}))
        for run_id in ids:
            await srv.wait_for_status(run_id, {"SUCCESS", "FAILURE"})
        client = srv.client

        everything = await client.get("/api/runs")
        assert [r["run_id"] for r in everything.json()] == ids[::-1]
        assert everything.headers["x-total-count"] == "5"
        failed = (await client.get("/api/runs?status=FAILURE")).json()
        assert [r["run_id"] for r in failed] == [ids[4]]
        both = (await client.get("/api/runs?status=failure,success")).json()
        assert len(both) == 5
        diamonds = (await client.get("/api/runs", params={"job": "diamond"})).json()
        assert {r["run_id"] for r in diamonds} == set(ids[:4])
        tagged = (await client.get("/api/runs", params=[("tag", "team=a"), ("tag", "n=2")])).json()
        assert [r["run_id"] for r in tagged] == [ids[2]]
        here = (await client.get("/api/runs", params={"location": LOCATION})).json()
        assert len(here) == 5
        assert (await client.get("/api/runs", params={"location": "elsewhere"})).json() == []

        first = await client.get("/api/runs?limit=2")
        assert [r["run_id"] for r in first.json()] == [ids[4], ids[3]]
        cursor = first.headers["x-next-cursor"]
        assert cursor == ids[3]
        second = await client.get(f"/api/runs?limit=2&cursor={cursor}")
        assert [r["run_id"] for r in second.json()] == [ids[2], ids[1]]
        last = await client.get(f"/api/runs?limit=2&cursor={second.headers['x-next-cursor']}")
        assert [r["run_id"] for r in last.json()] == [ids[0]]
        assert "x-next-cursor" not in last.headers


async def test_a_long_run_is_cancelled_and_its_stream_ends_with_run_canceled(
    tmp_path: Path,
) -> None:
    async with web_server(tmp_path) as srv:
        run_id = await srv.launch("slow_async")
        await wait_for_file(srv.control / "async_started")
        reply = await srv.client.post(f"/api/runs/{run_id}/cancel")
        assert reply.status_code == 200
        assert reply.json()["run_id"] == run_id
        assert reply.json()["status"] in ("CANCELING", "CANCELED")
        messages = await sse_events(srv.client, f"/api/runs/{run_id}/events")
        kinds = [m["data"]["event_type"] for m in messages if "event" not in m]
        assert kinds[-1] == "RUN_CANCELED"
        run = await srv.wait_for_status(run_id, {"CANCELED"})
        assert run["status"] == "CANCELED"
        # Cancelling a finished run changes nothing.
        again = await srv.client.post(f"/api/runs/{run_id}/cancel")
        assert again.status_code == 200 and again.json()["status"] == "CANCELED"


async def test_reexecute_from_failure_runs_only_what_failed(tmp_path: Path) -> None:
    async with web_server(tmp_path) as srv:
        run_id = await srv.launch("recoverable")
        failed = await srv.wait_for_status(run_id, {"SUCCESS", "FAILURE"})
        assert failed["status"] == "FAILURE"
        assert {s["step_key"]: s["status"] for s in failed["steps"]}["flaky"] == "FAILURE"
        (srv.control / "fixed").write_text("")
        reply = await srv.client.post(f"/api/runs/{run_id}/reexecute", json={"from_failure": True})
        assert reply.status_code == 200
        child_id = reply.json()["run_id"]
        child = await srv.wait_for_status(child_id, {"SUCCESS", "FAILURE"})
        assert child["status"] == "SUCCESS"
        assert child["parent_run_id"] == run_id and child["root_run_id"] == run_id
        ran = {s["step_key"] for s in child["steps"] if s["attempts"] > 0}
        assert "first_value" not in ran and "flaky" in ran

        # Without a body: from failure, as the Python API defaults to.
        reply = await srv.client.post(f"/api/runs/{child_id}/reexecute")
        assert reply.status_code == 200
        missing = await srv.client.post("/api/runs/no-such-run/reexecute")
        assert missing.status_code == 404
        assert missing.json()["error"]["type"] == "RunNotFoundError"


async def test_assets_show_their_deps_and_latest_materialization(tmp_path: Path) -> None:
    async with web_server(tmp_path) as srv:
        before = {a["key"]: a for a in (await srv.client.get("/api/assets")).json()}
        assert before["doubled"]["deps"] == ["numbers"]
        assert before["numbers"]["location"] == LOCATION
        assert before["numbers"]["latest_materialization"] is None
        assert "__ASSET_JOB" in before["numbers"]["job_names"]
        run_id = await srv.launch("__ASSET_JOB")
        await srv.wait_for_status(run_id, {"SUCCESS"})
        after = {a["key"]: a for a in (await srv.client.get("/api/assets")).json()}
        for key in ("numbers", "doubled"):
            latest = after[key]["latest_materialization"]
            assert latest["run_id"] == run_id
            assert latest["step_key"] == key
        second = await srv.launch("__ASSET_JOB", step_selection=["numbers"])
        await srv.wait_for_status(second, {"SUCCESS"})
        newest = {a["key"]: a for a in (await srv.client.get("/api/assets")).json()}
        assert newest["numbers"]["latest_materialization"]["run_id"] == second
        assert newest["doubled"]["latest_materialization"]["run_id"] == run_id


async def test_schedules_and_sensors_start_stop_and_show_their_ticks(tmp_path: Path) -> None:
    from runtime.instance.daemon_records import TickStatus, instigator_id

    async with web_server(tmp_path) as srv:
        schedules = (await srv.client.get("/api/schedules")).json()
        assert [(s["name"], s["location"], s["status"], s["state_stored"]) for s in schedules] == [
            ("hourly", LOCATION, "running", False)
        ]
        assert schedules[0]["cron_schedule"] == "0 * * * *"
        assert schedules[0]["job_name"] == "diamond"
        sensors = (await srv.client.get("/api/sensors")).json()
        assert [(s["name"], s["status"], s["minimum_interval_seconds"]) for s in sensors] == [
            ("watcher", "stopped", 45)
        ]

        started = await srv.client.post("/api/sensors/watcher/start")
        assert started.status_code == 200
        assert started.json()["status"] == "running" and started.json()["state_stored"]
        stopped = await srv.client.post("/api/schedules/hourly/stop", json={"location": LOCATION})
        assert stopped.json()["status"] == "stopped"
        instance = srv.workspace.instance
        state = await instance.get_instigator_state(instigator_id("sensor", LOCATION, "watcher"))
        assert state is not None and state.status == "running"
        assert (await srv.client.get("/api/sensors")).json()[0]["status"] == "running"
        assert (await srv.client.get("/api/schedules")).json()[0]["status"] == "stopped"
        # The daemon sees the same choices: the web starts and stops through its rules.
        from runtime.daemon.instigators import effective_status, find_instigator

        locations = srv.workspace.locations
        for kind, name, expected in (
            ("sensor", "watcher", "running"),
            ("schedule", "hourly", "stopped"),
        ):
            instigator = find_instigator(locations, kind, name)
            stored = await instance.get_instigator_state(instigator.id)
            assert str(effective_status(instigator, stored)) == expected

        # Ticks the daemon stores appear with their sensor, newest first.
        key = instigator_id("sensor", LOCATION, "watcher")
        first = await instance.create_tick(key, 1000.0)
        await instance.update_tick(
            msgspec.structs.replace(first, status=TickStatus.SKIPPED, skip_reason="nothing new")
        )
        second = await instance.create_tick(key, 2000.0)
        await instance.update_tick(
            msgspec.structs.replace(second, status=TickStatus.SUCCESS, run_ids=["r1"])
        )
        ticks = (await srv.client.get("/api/sensors")).json()[0]["ticks"]
        assert [(t["tick_time"], t["status"]) for t in ticks] == [
            (2000.0, "success"),
            (1000.0, "skipped"),
        ]
        assert ticks[0]["run_ids"] == ["r1"] and ticks[1]["skip_reason"] == "nothing new"

        reply = await srv.client.post("/api/schedules/nope/stop")
        assert reply.status_code == 404
        assert reply.json()["error"]["type"] == "UnknownDefinitionError"
        assert "hourly" in reply.json()["error"]["message"]
        reply = await srv.client.post("/api/sensors/watcher/start", json={"location": "atlantis"})
        assert reply.status_code == 404
        assert reply.json()["error"]["type"] == "CodeLocationError"


async def test_reload_gives_a_new_server_and_the_live_stream_reports_it(tmp_path: Path) -> None:
    async with web_server(tmp_path) as srv:
        old = srv.workspace.locations[LOCATION].server_id
        seen: list[dict[str, object]] = []

        async def watch() -> None:
            async with srv.client.stream("GET", "/api/watch/locations") as response:
                event = None
                async for line in response.aiter_lines():
                    if line.startswith("event: "):
                        event = line.removeprefix("event: ")
                    elif line.startswith("data: "):
                        import json

                        seen.append({"event": event, "data": json.loads(line[6:])})
                        statuses = [
                            m["data"]["location"]["status"]  # type: ignore[index]
                            for m in seen
                            if m["event"] == "change"
                        ]
                        if "loaded" in statuses:
                            return

        import anyio

        with anyio.fail_after(30):
            async with anyio.create_task_group() as tg:
                tg.start_soon(watch)
                while not seen:
                    await anyio.sleep(0.02)
                reply = await srv.client.post(f"/api/locations/{LOCATION}/reload")
        assert reply.status_code == 200
        assert reply.json()["status"] == "loaded"
        assert reply.json()["server_id"] != old
        assert seen[0]["event"] == "locations"
        changes = [m["data"] for m in seen[1:]]
        assert [c["old_status"] for c in changes][:1] == ["loaded"]  # type: ignore[index]
        assert changes[-1]["location"]["server_id"] == reply.json()["server_id"]  # type: ignore[index]
        missing = await srv.client.post("/api/locations/atlantis/reload")
        assert missing.status_code == 404


async def test_the_openapi_description_covers_the_contract(tmp_path: Path) -> None:
    async with web_server(tmp_path) as srv:
        doc = (await srv.client.get("/api/openapi.json")).json()
        assert doc["openapi"].startswith("3.")
        contract = {
            ("get", "/api/locations"),
            ("post", "/api/locations/{name}/reload"),
            ("get", "/api/locations/{name}/jobs/{job}"),
            ("get", "/api/assets"),
            ("post", "/api/runs"),
            ("get", "/api/runs"),
            ("get", "/api/runs/{run_id}"),
            ("post", "/api/runs/{run_id}/cancel"),
            ("post", "/api/runs/{run_id}/reexecute"),
            ("get", "/api/runs/{run_id}/events"),
            ("get", "/api/schedules"),
            ("get", "/api/sensors"),
        }
        have = {(method, path) for path, ops in doc["paths"].items() for method in ops}
        assert contract <= have
        launch = doc["paths"]["/api/runs"]["post"]
        ref = launch["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        name = ref.rsplit("/", 1)[1]
        assert set(doc["components"]["schemas"][name]["properties"]) >= {
            "job",
            "location",
            "run_config",
            "tags",
        }

        def refs(value: object) -> list[str]:
            if isinstance(value, dict):
                found = [value["$ref"]] if "$ref" in value else []
                return found + [r for v in value.values() for r in refs(v)]
            if isinstance(value, list):
                return [r for v in value for r in refs(v)]
            return []

        for reference in refs(doc):
            assert reference.rsplit("/", 1)[1] in doc["components"]["schemas"], reference
