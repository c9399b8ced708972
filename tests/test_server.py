# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""`birefnet-hf serve`: the HTTP API (FastAPI TestClient), the micro-batching queue, a bounded load test on
127.0.0.1, and the web page in a real headless Chromium (Playwright); a tiny random model at 64x64."""

from __future__ import annotations

import asyncio
import concurrent.futures
import io
import shutil
import socket
import threading
import time

import numpy as np
import PIL.Image
import pytest

from birefnet_hf import cutout
from birefnet_hf.segment import load_model_and_processor, remove_background
from birefnet_hf.server.batching import MicroBatcher, QueueFullError

fastapi = pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from birefnet_hf.server import ServerSettings, create_app  # noqa: E402
from birefnet_hf.server import serve as serve_cli  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def loaded(tiny_model_dir_64):
    return load_model_and_processor(tiny_model_dir_64, device="cpu")


def _photo(width: int = 40, height: int = 30, seed: int = 0) -> PIL.Image.Image:
    rng = np.random.default_rng(seed)
    coarse = PIL.Image.fromarray((rng.random((4, 5, 3)) * 255).astype(np.uint8))
    return coarse.resize((width, height), PIL.Image.BICUBIC)


def _encoded(image: PIL.Image.Image, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def client(loaded):
    model, processor = loaded
    settings = ServerSettings(
        max_upload_bytes=200_000, max_pixels=300 * 300, max_batch_size=4, max_wait_ms=50
    )
    with TestClient(create_app(model, processor, settings=settings)) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def reference(loaded):
    """The cut-out `remove_background` makes of `_photo()`: what the server must answer."""
    model, processor = loaded
    return remove_background(_photo(), model=model, processor=processor)


# ------------------------------------------------------------------------------------------------ the API
def test_raw_and_multipart_uploads_give_the_library_cutout(client, reference):
    raw = client.post(
        "/v1/remove-background", content=_encoded(_photo()), headers={"Content-Type": "image/png"}
    )
    assert raw.status_code == 200 and raw.headers["content-type"] == "image/png"
    cutout = PIL.Image.open(io.BytesIO(raw.content))
    assert cutout.mode == "RGBA" and cutout.size == (40, 30) and raw.headers["x-image-size"] == "40x30"
    np.testing.assert_array_equal(np.asarray(cutout), np.asarray(reference.cutout))

    files = {"file": ("holiday photo.jpg", _encoded(_photo(), "JPEG"), "image/jpeg")}
    multi = client.post("/v1/remove-background", files=files, params={"format": "alpha", "output": "webp"})
    assert multi.status_code == 200 and multi.headers["content-type"] == "image/webp"
    assert 'filename="holiday_photo-matte.webp"' in multi.headers["content-disposition"]
    matte = PIL.Image.open(io.BytesIO(multi.content))
    assert matte.size == (40, 30)
    jpeg_reference = remove_background(PIL.Image.open(io.BytesIO(files["file"][1])), model=client.app.state.model,
                                       processor=client.app.state.processor)  # fmt: skip
    difference = np.abs(
        np.asarray(matte.convert("L")).astype(int) - np.asarray(jpeg_reference.matte).astype(int)
    )
    assert difference.mean() < 3  # lossy WebP of the soft matte


def test_formats_threshold_and_background(client, reference):
    def post(**params):
        response = client.post("/v1/remove-background", content=_encoded(_photo()), params=params)
        assert response.status_code == 200, response.text
        return np.asarray(PIL.Image.open(io.BytesIO(response.content)))

    matte = np.asarray(reference.matte)
    np.testing.assert_array_equal(post(format="alpha"), matte)
    threshold = float(np.median(matte)) / 255
    mask = post(format="mask", threshold=threshold)
    assert set(np.unique(mask)) <= {0, 255}
    np.testing.assert_array_equal(mask, np.where(matte > 255 * threshold, 255, 0))
    assert post(format="overlay").shape == (30, 40, 3)
    np.testing.assert_array_equal(post(format="fg"), np.asarray(reference.foreground))  # blur-fusion colours
    np.testing.assert_array_equal(post(background="white"), np.asarray(reference.composite("white")))
    assert post(background="blur").shape == (30, 40, 3)
    raw = post(refine_foreground="false")  # the photo's own colours under the alpha
    np.testing.assert_array_equal(raw[..., :3], np.asarray(reference.image))
    np.testing.assert_array_equal(raw[..., 3], matte)
    assert np.abs(post()[..., :3].astype(int) - raw[..., :3]).max() > 0  # refinement changed the soft edges


def _post(client, params, **kwargs) -> tuple[np.ndarray, dict]:
    kwargs.setdefault("content", _encoded(_photo()))
    response = client.post("/v1/remove-background", params=params, **kwargs)
    assert response.status_code == 200, response.text
    return np.asarray(PIL.Image.open(io.BytesIO(response.content))), response.headers


def test_matte_options_like_the_cli(client, reference):
    """threshold, dilate, erode, feather as `birefnet-hf segment` applies them (cutout_options)."""
    binary, _ = _post(client, {"format": "alpha", "threshold": 0.5})
    np.testing.assert_array_equal(binary, np.where(np.asarray(reference.matte) > 127.5, 255, 0))
    rgba, _ = _post(client, {"threshold": 0.5})  # the threshold binarises the cut-out's alpha too, as in segment
    np.testing.assert_array_equal(rgba[..., 3], binary)
    assert 0 < (binary == 255).sum() < binary.size  # an edge to work on

    grown, _ = _post(client, {"format": "alpha", "threshold": 0.5, "dilate": 2})
    np.testing.assert_array_equal(grown, cutout.postprocess_matte(binary.astype(np.uint8), dilate=2))
    assert (grown == 255).sum() > (binary == 255).sum()  # dilate grows the foreground
    shrunk, _ = _post(client, {"format": "alpha", "threshold": 0.5, "erode": 1})
    assert (shrunk == 255).sum() < (binary == 255).sum()  # erode shrinks it

    feathered, _ = _post(client, {"format": "alpha", "threshold": 0.5, "feather": 3})
    np.testing.assert_array_equal(feathered, cutout.postprocess_matte(binary.astype(np.uint8), feather=3))
    assert ((feathered > 0) & (feathered < 255)).sum() > 0  # the hard edge became soft
    assert set(np.unique(binary)) <= {0, 255}


def test_max_side_gives_that_size(client, loaded):
    model, processor = loaded
    small, headers = _post(client, {"format": "alpha", "max_side": 20})
    assert small.shape == (15, 20) and headers["x-image-size"] == "20x15"
    expected = remove_background(_photo(), model=model, processor=processor, max_side=20)
    np.testing.assert_array_equal(small, np.asarray(expected.matte))
    unchanged, _ = _post(client, {"format": "alpha", "max_side": 500})  # never enlarges
    assert unchanged.shape == (30, 40)


def test_alpha_matting_and_refine_crops(client, loaded, reference, monkeypatch):
    pytest.importorskip("pymatting")
    model, processor = loaded
    matted, _ = _post(client, {"format": "alpha", "alpha_matting": "true"})
    expected = remove_background(_photo(), model=model, processor=processor, alpha_matting=True)
    np.testing.assert_array_equal(matted, np.asarray(expected.matte))

    before = client.get("/healthz").json()["items"]
    refined, _ = _post(client, {"format": "alpha", "refine_crops": "true", "crop_size": 32})
    assert client.get("/healthz").json()["items"] == before + 3  # the photo and its 2 crops, all through the batcher
    expected = remove_background(_photo(), model=model, processor=processor, refine_crops=True, crop_size=32)
    assert np.abs(refined.astype(int) - np.asarray(expected.matte)).max() <= 1  # crops batched differently
    assert np.abs(refined.astype(int) - np.asarray(reference.matte)).max() > 1  # the crops changed the matte

    monkeypatch.setattr(cutout, "import_pymatting", lambda: (_ for _ in ()).throw(ImportError("no pymatting")))
    response = client.post("/v1/remove-background", content=_encoded(_photo()), params={"alpha_matting": "true"})
    assert response.status_code == 501 and "alpha_matting" in response.json()["detail"]


def test_uploaded_background_image(client, reference):
    beach = PIL.Image.new("RGB", (20, 10), (0, 0, 255))
    files = {"file": ("p.png", _encoded(_photo()), "image/png"), "background": ("b.png", _encoded(beach), "image/png")}
    composite, _ = _post(client, {}, content=None, files=files)
    assert composite.shape == (30, 40, 3)
    np.testing.assert_array_equal(composite, np.asarray(reference.composite(beach)))
    matte = np.asarray(reference.matte).astype(float)[..., None] / 255
    expected = matte * np.asarray(reference.foreground) + (1 - matte) * [0, 0, 255]
    assert np.abs(composite - expected).max() <= 1


def test_health_reports_the_model_and_batching(client):
    health = client.get("/healthz").json()
    assert health["status"] == "ok" and health["device"] == "cpu" and health["dtype"] == "float32"
    assert health["input_size"] == {"height": 64, "width": 64} and health["max_batch_size"] == 4
    assert health["items"] >= health["batches"] >= 1


@pytest.mark.parametrize(
    "kwargs, status, message",
    [
        ({"content": b"hello", "headers": {"Content-Type": "text/plain"}}, 415, "unsupported Content-Type 'text/plain'"),
        ({"content": b"not an image at all", "headers": {"Content-Type": "image/png"}}, 415, "not an image"),
        ({"content": b"", "headers": {"Content-Type": "image/png"}}, 400, "empty"),
        ({"content": _encoded(_photo())[:200], "headers": {"Content-Type": "image/png"}}, 400, "cannot decode the PNG"),
        ({"content": b"x" * 200_001, "headers": {"Content-Type": "image/png"}}, 413, "at most 200000 bytes"),
        ({"content": _encoded(PIL.Image.new("RGB", (400, 300))), "headers": {"Content-Type": "image/png"}}, 413,
         "400x300"),
        ({"content": _encoded(_photo()), "params": {"format": "sepia"}}, 422, "rgba"),
        ({"content": _encoded(_photo()), "params": {"threshold": "1.5"}}, 422, "threshold"),
        ({"content": _encoded(_photo()), "params": {"background": "nope"}}, 400, "'nope' is not 'blur', a colour"),
        ({"content": _encoded(_photo()), "params": {"background": "white", "format": "mask"}}, 400, "format=rgba"),
        ({"files": {"other": ("a.png", _encoded(_photo()), "image/png")}}, 400, "no file field named 'file'"),
        ({"files": {"file": ("a.txt", b"hello", "text/plain")}}, 415, "'text/plain'"),
        ({"content": _encoded(_photo(), "ICO"), "headers": {"Content-Type": "image/png"}}, 415, "ICO images"),
        # the cut-out options of `birefnet-hf segment`
        ({"content": _encoded(_photo()), "params": {"threshold": "-0.1"}}, 422, "threshold"),
        ({"content": _encoded(_photo()), "params": {"dilate": "-1"}}, 422, "dilate"),
        ({"content": _encoded(_photo()), "params": {"erode": "two"}}, 422, "erode"),
        ({"content": _encoded(_photo()), "params": {"feather": "1.5"}}, 422, "feather"),
        ({"content": _encoded(_photo()), "params": {"max_side": "0"}}, 422, "max_side"),
        ({"content": _encoded(_photo()), "params": {"alpha_matting": "perhaps"}}, 422, "alpha_matting"),
        ({"content": _encoded(_photo()), "params": {"refine_crops": "perhaps"}}, 422, "refine_crops"),
        ({"content": _encoded(_photo()), "params": {"refine_crops": "true", "crop_size": "16"}}, 422, "crop_size"),
        ({"content": _encoded(_photo()), "params": {"crop_size": "64"}}, 400, "crop_size needs refine_crops"),
        ({"content": _encoded(_photo(300, 300)), "params": {"refine_crops": "true", "crop_size": "32"}}, 422,
         "takes up to 169 crops; this server segments at most 64"),
        ({"content": _encoded(_photo()), "params": {"background": "/etc/hostname"}}, 400, "is not 'blur', a colour"),
        ({"files": {"file": ("a.png", _encoded(_photo()), "image/png"), "background": ("b.png", b"junk", "image/png")}},
         415, "the background field: the upload is not an image"),
        ({"files": {"file": ("a.png", _encoded(_photo()), "image/png"), "background": ("b.txt", b"x", "text/plain")}},
         415, "the background field has Content-Type 'text/plain'"),
        ({"files": {"file": ("a.png", _encoded(_photo()), "image/png")}, "data": {"background": "white"}}, 400,
         "the multipart field 'background' takes an image file"),
        ({"files": {"file": ("a.png", _encoded(_photo()), "image/png"), "background": ("b.png", _encoded(_photo()),
          "image/png")}, "params": {"background": "white"}}, 400, "background is given twice"),
        ({"files": {"file": ("a.png", _encoded(_photo()), "image/png"), "background": ("b.png", _encoded(_photo()),
          "image/png")}, "params": {"format": "alpha"}}, 400, "background applies to format=rgba"),
    ],
)  # fmt: skip
def test_bad_requests_get_clear_4xx(client, kwargs, status, message):
    response = client.post("/v1/remove-background", **kwargs)
    assert response.status_code == status, response.text
    assert message in str(response.json()["detail"])


def test_page_is_served(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert 'id="drop"' in page.text and "/v1/remove-background" in page.text and "checker" in page.text


def test_serve_cli_usage_errors(capsys):
    assert serve_cli.main(["--model", "x", "--port", "70000"]) == 2
    assert "--port" in capsys.readouterr().err
    assert serve_cli.main(["--model", "/no/such/model/folder", "--device", "cpu"]) == 2
    assert "cannot load model '/no/such/model/folder'" in capsys.readouterr().err


def test_serve_cli_passes_the_crop_bound(monkeypatch):
    import uvicorn

    from birefnet_hf.server import app as app_module

    seen = {}
    monkeypatch.setattr(app_module, "create_app", lambda model, **kwargs: seen.update(kwargs) or "app")
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: seen.update(app=app))
    assert serve_cli.main(["--model", "m", "--max-refine-crops", "9"]) == 0
    assert seen["app"] == "app" and seen["settings"].max_refine_crops == 9
    with pytest.raises(SystemExit):
        serve_cli.main(["--model", "m", "--max-refine-crops", "0"])


# ------------------------------------------------------------------------------------- the micro-batcher
def test_micro_batcher_groups_concurrent_requests_and_keeps_order():
    calls = []

    def double(items):
        calls.append(list(items))
        time.sleep(0.05)
        return [2 * item for item in items]

    async def scenario():
        batcher = MicroBatcher(double, max_batch_size=4, max_wait_ms=100, max_queue=10)
        await batcher.start()
        try:
            results = await asyncio.gather(*(batcher.submit(i) for i in range(10)))
            flood = await asyncio.gather(*(batcher.submit(i) for i in range(20)), return_exceptions=True)
        finally:
            await batcher.stop()
        return results, flood, batcher.stats

    results, flood, stats = asyncio.run(scenario())
    assert results == [2 * i for i in range(10)]
    refused = [outcome for outcome in flood if isinstance(outcome, QueueFullError)]
    assert refused and all(
        outcome == 2 * i for i, outcome in enumerate(flood) if not isinstance(outcome, Exception)
    )
    assert [len(call) for call in calls[:3]] == [4, 4, 2]  # 10 concurrent requests -> 3 forward passes
    assert stats.largest_batch == 4


def test_micro_batcher_passes_errors_to_every_waiting_request():
    def broken(items):
        raise RuntimeError("out of memory")

    async def scenario():
        batcher = MicroBatcher(broken, max_batch_size=2, max_wait_ms=50)
        await batcher.start()
        try:
            return await asyncio.gather(batcher.submit(1), batcher.submit(2), return_exceptions=True)
        finally:
            await batcher.stop()

    errors = asyncio.run(scenario())
    assert all(isinstance(error, RuntimeError) and "out of memory" in str(error) for error in errors)


# ---------------------------------------------------------------------------------------- a real server
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def live_server(loaded):
    """uvicorn on 127.0.0.1 in a thread of this process (so its memory can be measured)."""
    uvicorn = pytest.importorskip("uvicorn")
    model, processor = loaded
    settings = ServerSettings(max_batch_size=8, max_wait_ms=30, max_queue=64)
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(model, processor, settings=settings), host="127.0.0.1", port=port, log_level="warning"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=30)


def _rss_bytes() -> int:
    psutil = pytest.importorskip("psutil")
    return psutil.Process().memory_info().rss


def test_load_concurrent_requests_all_answered_memory_stable(live_server):
    httpx = pytest.importorskip("httpx")
    concurrency, rounds = 16, 4
    body = _encoded(_photo(64, 48))

    def one(client: httpx.Client) -> tuple[int, int]:
        response = client.post(f"{live_server}/v1/remove-background", content=body,
                               headers={"Content-Type": "image/png"}, timeout=120)  # fmt: skip
        return response.status_code, len(response.content)

    memory = []
    with httpx.Client() as client, concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
        for _ in range(rounds):
            answers = list(pool.map(lambda _: one(client), range(concurrency)))
            assert all(status == 200 and size > 100 for status, size in answers), answers
            memory.append(_rss_bytes())
        health = client.get(f"{live_server}/healthz").json()
    assert health["items"] >= concurrency * rounds
    assert health["largest_batch"] > 1  # concurrent requests shared forward passes
    assert health["batches"] < health["items"]
    growth = memory[-1] - memory[0]
    assert growth < 64 * 2**20, f"memory grew by {growth / 2**20:.1f} MiB over {rounds - 1} rounds: {memory}"


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium executable (apt-get install chromium)")
def test_web_page_in_headless_chromium(live_server, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    photo = tmp_path / "portrait.png"
    _photo(48, 36).save(photo)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            page = browser.new_page(accept_downloads=True)
            page.goto(live_server + "/")
            assert "gradient" in page.eval_on_selector(".checker", "e => getComputedStyle(e).backgroundImage")

            page.set_input_files("#file", str(photo))  # upload with the file picker
            page.wait_for_function("document.getElementById('result').naturalWidth > 0", timeout=60_000)
            assert page.eval_on_selector("#result", "e => [e.naturalWidth, e.naturalHeight]") == [48, 36]
            assert "Done" in page.inner_text("#status")
            with page.expect_download() as download_info:
                page.click("#download")
            download = download_info.value
            assert download.suggested_filename == "portrait-rgba.png"
            saved = tmp_path / "downloaded.png"
            download.save_as(saved)
            with PIL.Image.open(saved) as cutout:
                assert cutout.mode == "RGBA" and cutout.size == (48, 36)

            # the page's settings: max side and feather go to the server as its query parameters
            page.fill("#max_side", "24")
            page.fill("#feather", "2")
            page.dispatch_event("#max_side", "change")
            page.wait_for_function("document.getElementById('result').naturalWidth === 24", timeout=60_000)
            assert page.eval_on_selector("#result", "e => e.naturalHeight") == 18
            page.fill("#max_side", "")
            page.dispatch_event("#max_side", "change")
            page.wait_for_function("document.getElementById('result').naturalWidth === 48", timeout=60_000)

            # a slow answer to an older setting must not replace the newer result: hold back every
            # answer for max side 24, change to 24 and at once back to the original size
            page.evaluate(
                """() => { const plain = window.fetch;
                   window.heldBack = 0;
                   window.fetch = async (url, options) => {  // not cancellable: only the page's order check helps
                     const response = await plain(url, { ...options, signal: undefined });
                     if (String(url).includes("max_side=24")) {
                       window.heldBack += 1;
                       await new Promise((done) => setTimeout(done, 1500));
                     }
                     return response;
                   }; }"""
            )
            page.fill("#max_side", "24")
            page.dispatch_event("#max_side", "change")
            page.fill("#max_side", "")
            page.dispatch_event("#max_side", "change")
            page.wait_for_function("document.getElementById('result').naturalWidth === 48", timeout=60_000)
            page.wait_for_timeout(2500)  # past the held-back answer's delay
            assert page.evaluate("window.heldBack") >= 1  # the older request was answered late...
            assert page.eval_on_selector("#result", "e => e.naturalWidth") == 48  # ...and ignored
            assert "Done" in page.inner_text("#status")

            # drag and drop a second image onto the drop zone, asking for the matte
            page.select_option("#format", "alpha")
            page.wait_for_function("document.getElementById('result').naturalWidth > 0", timeout=60_000)
            page.evaluate("document.getElementById('result').removeAttribute('src')")
            data = list(_encoded(_photo(30, 20, seed=3)))
            transfer = page.evaluate_handle(
                """bytes => { const t = new DataTransfer();
                   t.items.add(new File([new Uint8Array(bytes)], "dropped.png", {type: "image/png"})); return t; }""",
                data,
            )
            page.dispatch_event("#drop", "drop", {"dataTransfer": transfer})
            page.wait_for_function("document.getElementById('result').naturalWidth === 30", timeout=60_000)
            assert page.get_attribute("#download", "download") == "dropped-alpha.png"

            # a server-side error is shown, not swallowed
            bad = tmp_path / "bad.png"
            bad.write_bytes(b"not a png")
            page.set_input_files("#file", str(bad))
            page.wait_for_function("document.getElementById('status').className === 'error'", timeout=60_000)
            assert "415" in page.inner_text("#status")
        finally:
            browser.close()
