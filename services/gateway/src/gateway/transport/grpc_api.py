"""gRPC fashionrec.recommend.v1 for internal services: the same search and similar-by-id."""

from __future__ import annotations

import grpc

from fashionrec.recommend.v1 import recommend_pb2 as pb
from fashionrec.recommend.v1 import recommend_pb2_grpc as pb_grpc
from fashionrec_common.grpc_auth import bind, token_auth
from fashionrec_common.grpc_server import build_server
from fashionrec_common.health import SERVING
from gateway.domain.principals import peer_address, principal
from gateway.domain.timing import Timings
from gateway.domain.types import Recommendations, RecommendQuery, normalise_filters
from gateway.errors import GatewayError
from gateway.transport.rest.errors import status_of
from gateway.wiring import Services

SERVICE = pb.DESCRIPTOR.services_by_name["Recommend"].full_name
_GRPC_STATUS = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    413: grpc.StatusCode.INVALID_ARGUMENT,
    415: grpc.StatusCode.INVALID_ARGUMENT,
    401: grpc.StatusCode.UNAUTHENTICATED,
    404: grpc.StatusCode.NOT_FOUND,
    429: grpc.StatusCode.RESOURCE_EXHAUSTED,
    503: grpc.StatusCode.UNAVAILABLE,
}


def _reply(result: Recommendations, image_base: str) -> pb.RecommendResponse:
    return pb.RecommendResponse(
        items=[
            pb.Recommendation(
                id=h.id,
                score=h.score,
                distance=h.distance,
                metadata=h.metadata,
                image_url=image_base + h.metadata["image"] if "image" in h.metadata else "",
            )
            for h in result.items
        ],
        provenance=pb.Provenance(
            model=result.model,
            model_version=result.model_version or "",
            index=result.index,
            index_generation=result.index_generation,
        ),
        cached=result.cached,
        partial=result.partial,
    )


class RecommendServicer(pb_grpc.RecommendServicer):
    def __init__(self, services: Services) -> None:
        self.services = services
        self.image_base = services.settings.public_url.rstrip("/") + "/v1/images/"

    async def _fail(self, context: grpc.aio.ServicerContext, exc: GatewayError) -> None:
        code = _GRPC_STATUS.get(status_of(exc), grpc.StatusCode.INTERNAL)
        await context.abort(code, exc.message)

    async def _limit(self, context: grpc.aio.ServicerContext) -> None:
        """The REST rate limit and buckets: a configured x-api-key's id, else the peer host."""
        services = self.services
        if services.limiter is None:
            return
        metadata = dict(context.invocation_metadata() or ())
        address = peer_address(context.peer())
        who = principal(metadata.get("x-api-key"), services.settings.api_keys, address)
        await services.limiter.hit(who)

    async def _recommend(self, context, method, target, request):  # type: ignore[no-untyped-def]
        """Run ``method(target, ...)`` with the request's shared fields; map errors once."""
        try:
            await self._limit(context)
            query = RecommendQuery(
                request.catalogue or None,
                request.model or None,
                request.k or 10,
                normalise_filters({f.key: list(f.values) for f in request.filters}),
            )
            result = await method(target, query, Timings())
        except GatewayError as exc:
            await self._fail(context, exc)
        return _reply(result, self.image_base)

    async def SearchByImage(self, request, context):  # noqa: N802 - gRPC method name
        recommender = self.services.recommender
        return await self._recommend(context, recommender.search_image, request.image, request)

    async def SimilarToItem(self, request, context):  # noqa: N802 - gRPC method name
        recommender = self.services.recommender
        return await self._recommend(context, recommender.similar, request.item_id, request)


async def start_grpc(services: Services, host: str, port: int) -> tuple[grpc.aio.Server, int]:
    """Start the server (port 0 picks a free one); returns it and the bound port."""
    settings = services.settings
    server, health = build_server([SERVICE], token_auth(settings.grpc_auth_tokens, "gateway gRPC"))
    pb_grpc.add_RecommendServicer_to_server(RecommendServicer(services), server)
    bound = bind(server, f"{host}:{port}", settings.grpc_tls)
    await server.start()
    await health.set(SERVICE, SERVING)
    await health.set("", SERVING)
    return server, bound
