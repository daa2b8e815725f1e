"""POST /vision/predict: probabilities in the saved class order; bad uploads refused clearly."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from PIL import Image

from api.main import create_app
from recsys.settings import Settings
from recsys.vision.vision_learner import vision_learner
from tests.api.conftest import file_model_settings
from tests.vision.test_vision import COLOURS, colour_folder, data_for


def image_bytes(colour: tuple[int, int, int], size=(24, 20), kind: str = "PNG") -> bytes:
    rng = np.random.default_rng(0)
    pixels = np.clip(np.array(colour) + rng.normal(0, 20, (size[1], size[0], 3)), 0, 255)
    pixels[:, :4] = 255
    buffer = io.BytesIO()
    Image.fromarray(pixels.astype(np.uint8)).save(buffer, format=kind)
    return buffer.getvalue()


def train_vision(folder: Path, path: Path) -> Path:
    """A small classifier of red, green and blue images (see colour_folder), saved at ``path``."""
    torch.manual_seed(0)
    learn = vision_learner(
        data_for(colour_folder(folder)), widths=(8, 16), blocks=(1, 1), progress=False
    )
    learn.fit_one_cycle(4, 1e-2)
    return learn.save(path)


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_vision(
        tmp_path_factory.mktemp("colours"), tmp_path_factory.mktemp("model") / "vision.pt"
    )


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return file_model_settings(tmp_path, vision_max_upload_bytes=20_000)


@pytest.fixture
def client(settings: Settings, model_file: Path) -> Iterator[TestClient]:
    settings.vision_model_path.parent.mkdir(parents=True)
    settings.vision_model_path.write_bytes(model_file.read_bytes())
    with TestClient(create_app(settings)) as client:
        yield client


def post(client: TestClient, data: bytes, name: str = "x.png"):
    return client.post("/vision/predict", files={"image": (name, data, "image/png")})


def test_an_image_gets_probabilities_in_the_saved_class_order(client: TestClient) -> None:
    for name, colour in COLOURS.items():
        body = post(client, image_bytes(colour)).json()
        assert body["classes"] == ["blue", "green", "red"]
        assert body["prediction"] == name
        assert sum(body["probabilities"]) == pytest.approx(1.0, abs=1e-5)
        assert body["probability"] == max(body["probabilities"])
    jpeg = post(client, image_bytes(COLOURS["green"], kind="JPEG"), "x.jpg")
    assert jpeg.json()["prediction"] == "green"

    def chunked() -> Iterator[bytes]:  # no Content-Length: read and handed on
        yield b'--b\r\nContent-Disposition: form-data; name="image"; filename="x.png"\r\n\r\n'
        yield image_bytes(COLOURS["blue"])
        yield b"\r\n--b--\r\n"

    streamed = client.post(
        "/vision/predict",
        content=chunked(),
        headers={"content-type": "multipart/form-data; boundary=b"},
    )
    assert streamed.status_code == 200, streamed.text
    assert streamed.json()["prediction"] == "blue"


def test_non_images_and_broken_images_are_422(client: TestClient) -> None:
    for data, expected in (
        (b"hello, not an image", "not an image"),
        (b"", "empty"),
        (image_bytes(COLOURS["red"])[:80], "does not decode"),
    ):
        response = post(client, data)
        assert response.status_code == 422, response.text
        assert response.json()["error"]["code"] == "not_an_image"
        assert expected in response.json()["error"]["message"]
    missing = client.post("/vision/predict", data={"other": "field"})
    assert missing.status_code == 422


def test_oversize_uploads_and_decompression_bombs_are_413(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Over the limit: caught by the endpoint (within the multipart allowance) or, far
    # over it, by the middleware from Content-Length before the body is read.
    for size in ((100, 100), (300, 300)):
        big = image_bytes(COLOURS["red"], size=size)
        assert len(big) > 20_000
        response = post(client, big)
        assert response.status_code == 413
        assert response.json()["error"] == {
            "code": "upload_too_large",
            "message": "the upload is larger than the limit of 20,000 bytes",
        }

    # Without a Content-Length (a chunked upload) reading stops at the limit.
    def chunks() -> Iterator[bytes]:
        yield b'--b\r\nContent-Disposition: form-data; name="image"; filename="x"\r\n\r\n'
        for _ in range(64):
            yield bytes(64 * 1024)
        yield b"\r\n--b--\r\n"

    streamed = client.post(
        "/vision/predict",
        content=chunks(),
        headers={"content-type": "multipart/form-data; boundary=b"},
    )
    assert streamed.status_code == 413
    assert streamed.json()["error"]["code"] == "upload_too_large"

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # a 24x20 image is now a "bomb"
    response = post(client, image_bytes(COLOURS["red"]))
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "image_too_large"


def test_without_a_model_the_endpoint_says_how_to_train_one(tmp_path: Path) -> None:
    settings = file_model_settings(tmp_path)
    with TestClient(create_app(settings)) as client:
        response = post(client, image_bytes(COLOURS["red"]))
    assert response.status_code == 503
    assert "recsys vision train" in response.json()["error"]["message"]
