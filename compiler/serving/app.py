"""The HTTP API: Open Inference Protocol v2 REST paths, as a Starlette application."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from compiler import __version__
from compiler.serving.inference import InvalidInput, parse_request, response
from compiler.serving.model import ServedModel

log = logging.getLogger("modelops.serve")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def create_app(served: ServedModel) -> Starlette:
    config = served.config
    metrics = served.metrics
    name = config.model.name

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
            return error(404, f"no model named {asked!r}; this runtime serves {name!r}")
        version = request.path_params.get("version")
        if version is not None and version != config.model.version:
            return error(404, f"model {name!r} has no version {version!r}; it serves {config.model.version}")
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

    async def infer(request: Request) -> Response:
        started = time.perf_counter()
        status = 500
        try:
            if (missing := known(request)) is not None:
                status = 404
                return missing
            if not served.ready.is_set():
                status = 503
                return error(503, "the model is still loading")
            try:
                body = json.loads(await request.body(), parse_constant=_reject_constant)
            except (ValueError, UnicodeDecodeError) as err:
                raise InvalidInput("json", f"the body is not valid JSON: {err}") from None
            batch = parse_request(body, config, served.n_features)
            try:
                predictions = served.predict(batch)
            except Exception:
                log.exception("prediction failed")
                status = 500
                return error(500, "the model failed to predict; see the runtime's log")
            served.observe_inputs(batch)
            metrics.predicted(predictions)
            status = 200
            request_id = body.get("id") if isinstance(body.get("id"), str) else None
            return JSONResponse(response(config, predictions, request_id))
        except InvalidInput as invalid:
            status = 400
            metrics.invalid_input(invalid.reason)
            return error(400, str(invalid))
        finally:
            metrics.request(status, time.perf_counter() - started)

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
        ]
    )
