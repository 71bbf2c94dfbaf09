"""GAN architectures (InfoGAN after the paper's Table 8.1, plain DCGAN) and embedding extractors."""

from embedder.models.common import GAN, embedding_extractor
from embedder.models.dcgan import build_dcgan
from embedder.models.infogan import build_infogan

__all__ = ["GAN", "build_dcgan", "build_infogan", "embedding_extractor", "build_gan"]


def build_gan(kind: str, **kwargs: object) -> GAN:
    """``kind`` is ``infogan`` or ``dcgan``; keyword settings go to the builder."""
    if kind == "infogan":
        return build_infogan(**kwargs)  # type: ignore[arg-type]
    if kind == "dcgan":
        kwargs.pop("categorical_dim", None)
        return build_dcgan(**kwargs)  # type: ignore[arg-type]
    raise ValueError(f"unknown model kind {kind!r} (infogan|dcgan)")
