"""Image classification from the model `recsys vision train` wrote, on CPU."""

from __future__ import annotations

import io
from typing import Annotated, Any

from fastapi import APIRouter, File, UploadFile
from fastapi.concurrency import run_in_threadpool
from PIL import Image, UnidentifiedImageError

from api.deps import SettingsDep, VisionDep
from api.errors import ServiceError
from api.schemas import VisionPrediction
from recsys.vision.vision_learner import ImagePredictor

router = APIRouter(tags=["vision"])
READ_CHUNK = 1 << 16


async def read_limited(upload: UploadFile, limit: int) -> bytes:
    """The upload's bytes; 413 as soon as it passes ``limit``, before reading the rest."""
    data = bytearray()
    while chunk := await upload.read(READ_CHUNK):
        data += chunk
        if len(data) > limit:
            raise ServiceError(
                413, "upload_too_large", f"the upload is larger than the limit of {limit:,} bytes"
            )
    return bytes(data)


def decode(data: bytes) -> Image.Image:
    """Decode fully, refusing images above Pillow's decompression-bomb pixel limit
    (``Image.MAX_IMAGE_PIXELS``) before their pixels are decompressed."""
    if not data:
        raise ServiceError(422, "not_an_image", "the upload is empty")
    try:
        image = Image.open(io.BytesIO(data))  # the header only; a bomb warning is refused below
        limit = Image.MAX_IMAGE_PIXELS
        if limit is not None and image.width * image.height > limit:
            raise Image.DecompressionBombError(
                f"{image.width}x{image.height} pixels is more than the limit of {limit:,}"
            )
        image.load()
    except Image.DecompressionBombError as error:
        raise ServiceError(413, "image_too_large", f"refused: {error}") from None
    except UnidentifiedImageError:
        raise ServiceError(
            422, "not_an_image", "the upload is not an image Pillow can read"
        ) from None
    except (OSError, SyntaxError, ValueError) as error:
        raise ServiceError(422, "not_an_image", f"the image does not decode: {error}") from None
    return image


def classify(predictor: ImagePredictor, data: bytes) -> dict[str, Any]:
    probabilities = predictor.probabilities([decode(data)])[0]
    best = int(probabilities.argmax())
    return {
        "prediction": predictor.classes[best],
        "probability": float(probabilities[best]),
        "classes": predictor.classes,
        "probabilities": [float(p) for p in probabilities],
    }


@router.post("/vision/predict", response_model=VisionPrediction)
async def vision_predict(
    image: Annotated[UploadFile, File(description="An image file (PNG, JPEG, ...).")],
    predictor: VisionDep,
    settings: SettingsDep,
) -> dict[str, Any]:
    """Class probabilities for one uploaded image, in the model's saved class order.

    413 above ``RECSYS_VISION_MAX_UPLOAD_BYTES`` (5 MiB by default) or Pillow's pixel
    limit; 422 for anything that does not decode as an image. Decoding and the
    forward pass run in a worker thread.
    """
    data = await read_limited(image, settings.vision_max_upload_bytes)
    return await run_in_threadpool(classify, predictor, data)
