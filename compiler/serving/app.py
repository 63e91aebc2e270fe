"""The HTTP API: Open Inference Protocol v2 REST paths, as a Starlette application."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from compiler import __version__
from compiler.serving.body import BODIES_IN_FLIGHT, BodyBudget, decode_json, max_json_values, read_body
from compiler.serving.feedback import parse_feedback, request_id
from compiler.serving.inference import InvalidInput, parse_request, response, shown
from compiler.serving.model import ServedModel

log = logging.getLogger("modelops.serve")
CLIENT_CLOSED = 499  # nginx's code for a client that left before the answer: not a server error


def create_app(served: ServedModel) -> Starlette:
    config = served.config
    metrics = served.metrics
    name = config.model.name
    budget = BodyBudget(BODIES_IN_FLIGHT * config.server.maxBodyBytes)

    def error(status: int, message: str) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status)

    async def live(request: Request) -> Response:
        return JSONResponse({"live": True})

    async def ready(request: Request) -> Response:
        if served.ready.is_set():
            return JSONResponse({"ready": True})
        return JSONResponse({"ready": False}, status_code=503)

    async def server_metadata(request: Request) -> Response:
        return JSONResponse({"name": "modelops", "version": __version__, "extensions": []})

    def known(request: Request) -> JSONResponse | None:
        asked = request.path_params["name"]
        if asked != name:
            return error(404, f"no model named {shown(asked)}; this runtime serves {name!r}")
        version = request.path_params.get("version")
        if version is not None and version != config.model.version:
            return error(
                404, f"model {name!r} has no version {shown(version)}; it serves {config.model.version}"
            )
        return None

    async def model_metadata(request: Request) -> Response:
        if (missing := known(request)) is not None:
            return missing
        return JSONResponse(
            {
                "name": name,
                "versions": [config.model.version],
                "platform": f"{config.model.framework}-skops",
                "inputs": [
                    {
                        "name": f.name,
                        "datatype": "FP64" if f.type == "float" else "INT64" if f.type == "int" else "BOOL",
                        "shape": [-1],
                    }
                    for f in config.model.features
                ],
                "outputs": [
                    {
                        "name": "predict",
                        "datatype": "INT64" if config.model.task == "classification" else "FP64",
                        "shape": [-1],
                    }
                ],
            }
        )

    async def model_ready(request: Request) -> Response:
        if (missing := known(request)) is not None:
            return missing
        return await ready(request)

    async def posted(
        request: Request,
        values_per_row: int,
        answer: Callable[[Any], Response],
        record: Callable[[int], None],
        rejected: Callable[[str], None] | None = None,
    ) -> Response:
        """The steps every POST path shares: the model known and loaded, the body read within
        the byte budget and decoded within its value limit, then `answer`. Every outcome's
        status goes to `record` (an unexpected exception as 500); client errors' reasons to
        `rejected`."""
        status = 500
        reply: Response
        try:
            if (missing := known(request)) is not None:
                reply = missing
            elif not served.ready.is_set():
                reply = error(503, "the model is still loading")
            else:
                raw = await read_body(request, config.server.maxBodyBytes, budget, config.server.bodySeconds)
                body = decode_json(raw, max_json_values(config.server.maxRows, values_per_row))
                del raw  # the parsed body is all that is needed from here on
                reply = answer(body)
            status = reply.status_code
            return reply
        except InvalidInput as invalid:
            status = invalid.status
            if rejected is not None:
                rejected(invalid.reason)
            return error(invalid.status, str(invalid))
        except ClientDisconnect:
            status = CLIENT_CLOSED  # nobody is left to answer
            return Response(status_code=CLIENT_CLOSED)
        finally:
            record(status)

    def predict(body: Any) -> Response:
        batch = parse_request(body, config, served.n_features)
        key = request_id(body)
        try:
            predictions = served.predict(batch)
        except InvalidInput:
            raise
        except Exception:
            log.exception("prediction failed")
            return error(500, "the model failed to predict; see the runtime's log")
        served.observe(batch, key, predictions)
        metrics.predicted(predictions)
        answer = JSONResponse(response(config, predictions, key))
        if served.shadow is not None:  # after the answer is made: the candidate never shapes it
            served.shadow.submit(batch, predictions)
        return answer

    async def infer(request: Request) -> Response:
        started = time.perf_counter()
        return await posted(
            request,
            served.width,
            predict,
            lambda status: metrics.request(status, time.perf_counter() - started),
            metrics.invalid_input,
        )

    def judge(body: Any) -> Response:
        return JSONResponse(served.judge(parse_feedback(body, config.model.task, config.server.maxRows)))

    async def feedback(request: Request) -> Response:
        """True labels for earlier predictions, by the id their answer carried."""
        return await posted(request, 2, judge, metrics.feedback_request)

    return Starlette(
        routes=[
            Route("/v2", server_metadata),
            Route("/v2/health/live", live),
            Route("/v2/health/ready", ready),
            Route("/v2/models/{name}", model_metadata),
            Route("/v2/models/{name}/ready", model_ready),
            Route("/v2/models/{name}/infer", infer, methods=["POST"]),
            Route("/v2/models/{name}/versions/{version}", model_metadata),
            Route("/v2/models/{name}/versions/{version}/infer", infer, methods=["POST"]),
            Route("/v2/models/{name}/feedback", feedback, methods=["POST"]),
            Route("/v2/models/{name}/versions/{version}/feedback", feedback, methods=["POST"]),
        ]
    )
