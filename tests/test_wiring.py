"""handlers.REACTIONS is the wiring: what runs on the bus is exactly the table."""

from __future__ import annotations

import asyncio
import inspect

from events import LOG_STREAM, Event
from events.streams import GAMES_STREAM, WORK_STREAM
from events.subjects import subject_filters
from handlers import DAEMONS, REACTIONS
from ops.app import App
from ops.wiring import PROJECTIONS, reactions, run_stages, stages


def test_every_reaction_is_a_handler_of_its_event_with_bindable_parameters() -> None:
    known = {"settings", "producer", "workspace", "seats", "worker", "leases", "tasks"}
    for event, handles in REACTIONS.items():
        assert issubclass(event, Event) and handles
        assert len({h.__module__ for h in handles}) == len(handles)  # one per stage and event
        for handle in handles:
            parameters = list(inspect.signature(handle).parameters.values())[1:]
            required = {p.name for p in parameters if p.default is inspect.Parameter.empty}
            assert required <= known | set(PROJECTIONS), (handle.__qualname__, required)
    assert set(stages()) == {r.stage for r in reactions()} | set(DAEMONS)


async def test_what_runs_is_exactly_the_table(app: App) -> None:
    expected = {
        (r.durable, subject_filters(r.event)) for r in reactions() if not _per_process(app, r.stage)
    }
    built = {
        (spec.name, spec.subjects)
        for stage in stages()
        for spec in app.stage(stage, views_db=":memory:").specs()
        if not spec.per_process
    }
    assert built == expected
    stop = asyncio.Event()
    running = asyncio.create_task(
        run_stages(app, [s for s in stages() if s != "selfplay"], stop, views_db=":memory:")
    )
    try:

        async def consumers() -> set[tuple[str, tuple[str, ...]]]:
            while True:
                found = set()
                for stream in (LOG_STREAM, GAMES_STREAM, WORK_STREAM):
                    for info in await app.store.js.consumers_info(stream):
                        config = info.config
                        if not config.durable_name:
                            continue  # a read model's ordered consumer, not a reaction
                        subjects = tuple(config.filter_subjects or [config.filter_subject])
                        found.add((info.name, subjects))
                if len(found) >= len(expected):
                    return found
                await asyncio.sleep(0.05)

        on_server = await asyncio.wait_for(consumers(), 30)
    finally:
        stop.set()
        await running
    assert on_server == expected


def _per_process(app: App, stage: str) -> bool:
    return app.stage(stage, views_db=":memory:").consumer.per_process
