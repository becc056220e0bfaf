"""`encoder/media.py` + `encoder/fetch.py`: every limit on an untrusted image, against images built here.

The http tests run a tiny server on 127.0.0.1; `fetch.is_public_address` is patched so that only 127.0.0.1
counts as public (every other loopback address, such as 127.0.0.2, stays private), and `fetch.resolve_host` so
that test host names resolve to the addresses each test needs. A redirect target on 127.0.0.2 is a bare
listening socket: after the refusal it must have no pending connection.
"""

from __future__ import annotations

import base64
import io
import ipaddress
import socket
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from PIL import Image

from encoder import fetch
from encoder.errors import ImageRejectedError, ImageTooLargeError, InvalidInputError
from encoder.inputs import ImagePart
from encoder.media import ImageLimits, load_image

LOOPBACK = ipaddress.ip_address("127.0.0.1")


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _data_url(data: bytes, media_type: str = "image/png") -> str:
    return f"data:{media_type};base64,{base64.b64encode(data).decode()}"


def _bomb_png(width: int, height: int) -> bytes:
    """A valid 1-bit greyscale PNG of `width` x `height` zero pixels: a few KB that inflate to width*height/8."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return len(body).to_bytes(4, "big") + kind + body + zlib.crc32(kind + body).to_bytes(4, "big")

    header = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([1, 0, 0, 0, 0])
    row = b"\x00" * (1 + (width + 7) // 8)
    squeezer = zlib.compressobj(9)
    block, rest = divmod(height, 1000)
    body = b"".join(squeezer.compress(row * 1000) for _ in range(block)) + squeezer.compress(row * rest)
    body += squeezer.flush()
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")


def _reject(url: str, limits: ImageLimits | None = None) -> ImageRejectedError:
    with pytest.raises(ImageRejectedError) as info:
        load_image(ImagePart(url), limits or ImageLimits())
    assert info.value.param == "image_url" and info.value.allowed is not None
    return info.value


# ---- data: URLs and decoding -------------------------------------------------------------------------------


def test_a_data_url_png_decodes_to_the_same_pixels() -> None:
    img = Image.new("RGB", (3, 2))
    img.putdata([(i * 40, 255 - i * 40, 7) for i in range(6)])
    out = load_image(ImagePart(_data_url(_png(img))), ImageLimits())
    assert out.mode == "RGB" and out.size == (3, 2)
    assert list(out.getdata()) == [(i * 40, 255 - i * 40, 7) for i in range(6)]


def test_the_errors_are_invalid_input_with_the_size_caps_as_their_own_class() -> None:
    assert issubclass(ImageRejectedError, InvalidInputError) and issubclass(ImageTooLargeError, ImageRejectedError)


def test_a_decompression_bomb_png_is_refused_before_decoding() -> None:
    bomb = _bomb_png(30_000, 30_000)  # 900 M pixels in a few hundred KB
    assert len(bomb) < 200_000
    with pytest.raises(ImageTooLargeError) as info:
        load_image(ImagePart(_data_url(bomb)), ImageLimits())
    assert "image_max_pixels" in info.value.message


def test_pillows_bomb_warning_is_an_error_even_under_a_high_pixel_limit() -> None:
    over_warning = _bomb_png(10_000, 10_000)  # 100 M: over Pillow's warning threshold (89 M), under its error
    with pytest.raises(ImageTooLargeError) as info:
        load_image(ImagePart(_data_url(over_warning)), ImageLimits(max_pixels=10**9))
    assert info.value.allowed == Image.MAX_IMAGE_PIXELS


def test_the_pixel_limit_is_checked_on_the_header_dimensions() -> None:
    img = _png(Image.new("RGB", (101, 100)))
    with pytest.raises(ImageTooLargeError) as info:
        load_image(ImagePart(_data_url(img)), ImageLimits(max_pixels=10_000))
    assert (info.value.received, info.value.allowed) == (10_100, 10_000)
    assert load_image(ImagePart(_data_url(img)), ImageLimits(max_pixels=10_100)).size == (101, 100)


def test_a_non_image_data_url_is_refused() -> None:
    err = _reject(_data_url(b"hello", "text/plain"))
    assert err.received == "text/plain"


def test_a_data_url_that_lies_about_its_type_is_refused() -> None:
    err = _reject(_data_url(b"<svg xmlns='http://www.w3.org/2000/svg'/>", "image/png"))
    assert "not an image" in err.message
    jpeg = io.BytesIO()
    Image.new("RGB", (4, 4)).save(jpeg, format="JPEG")
    err = _reject(_data_url(jpeg.getvalue(), "image/png"))
    assert (err.received, err.allowed) == ("JPEG", "PNG")


def test_a_format_off_the_list_is_refused_even_when_declared_truthfully() -> None:
    gif = io.BytesIO()
    Image.new("P", (4, 4)).save(gif, format="GIF")
    _reject(_data_url(gif.getvalue(), "image/gif"), ImageLimits(formats=frozenset({"PNG"})))
    assert load_image(ImagePart(_data_url(gif.getvalue(), "image/gif")), ImageLimits()).size == (4, 4)


@pytest.mark.parametrize(
    "payload",
    ["iVBORw0KGgo!!!!", "iVBO Rw0K", "iVBORw0KGg", "iVBORw0KGgo=\n", "aGk=aGk="],
    ids=["alphabet", "space", "padding", "newline", "inner-padding"],
)
def test_bad_base64_is_refused(payload: str) -> None:
    err = _reject(f"data:image/png;base64,{payload}")
    assert "base64" in err.message


def test_a_data_url_without_base64_is_refused() -> None:
    assert "base64" in _reject("data:image/png,%89PNG").message


def test_an_oversize_payload_is_refused_from_its_encoded_length_before_decoding() -> None:
    limits = ImageLimits(max_bytes=1000)
    # 1,336 characters of invalid base64 would fail to decode: the size error proves nothing was decoded
    with pytest.raises(ImageTooLargeError) as info:
        load_image(ImagePart("data:image/png;base64," + "*" * 1336), limits)
    assert (info.value.received, info.value.allowed) == (1002, 1000)
    exact = base64.b64encode(b"\0" * 1001).decode()
    with pytest.raises(ImageTooLargeError) as info:
        load_image(ImagePart("data:image/png;base64," + exact), limits)
    assert (info.value.received, info.value.allowed) == (1001, 1000)
    assert "image_max_bytes" in info.value.message


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/a.png", "", "/tmp/a.png"])
def test_other_schemes_are_refused(url: str) -> None:
    _reject(url)


def _exif_png(orientation: int) -> bytes:
    img = Image.new("RGB", (4, 2), (0, 0, 0))
    img.putpixel((0, 0), (255, 0, 0))  # red top-left
    exif = Image.Exif()
    exif[0x0112] = orientation
    buf = io.BytesIO()
    img.save(buf, format="PNG", exif=exif.tobytes())
    return buf.getvalue()


def test_exif_orientation_is_applied() -> None:
    rotated = load_image(ImagePart(_data_url(_exif_png(6))), ImageLimits())  # 6: rotate 90 degrees clockwise
    assert rotated.size == (2, 4)
    assert rotated.getpixel((1, 0)) == (255, 0, 0)  # the top-left pixel moved to the top-right
    upright = load_image(ImagePart(_data_url(_exif_png(1))), ImageLimits())
    assert upright.size == (4, 2) and upright.getpixel((0, 0)) == (255, 0, 0)


def test_rgba_p_and_l_become_rgb() -> None:
    rgba = Image.new("RGBA", (2, 1))
    rgba.putdata([(10, 20, 30, 255), (10, 20, 30, 0)])  # opaque, fully transparent (-> white)
    assert list(load_image(ImagePart(_data_url(_png(rgba))), ImageLimits()).getdata()) == [
        (10, 20, 30),
        (255, 255, 255),
    ]
    pal = Image.new("P", (2, 1))
    pal.putpalette([200, 100, 50, 1, 2, 3] + [0] * 762)
    pal.putdata([0, 1])
    assert list(load_image(ImagePart(_data_url(_png(pal))), ImageLimits()).getdata()) == [(200, 100, 50), (1, 2, 3)]
    grey = Image.new("L", (2, 1))
    grey.putdata([0, 77])
    out = load_image(ImagePart(_data_url(_png(grey))), ImageLimits())
    assert out.mode == "RGB" and list(out.getdata()) == [(0, 0, 0), (77, 77, 77)]


def test_a_trusted_image_is_only_converted() -> None:
    grey = Image.new("L", (3, 3), 9)
    out = load_image(ImagePart(image=grey), ImageLimits(fetch_hosts=()))
    assert out.mode == "RGB" and out.getpixel((1, 1)) == (9, 9, 9)


def test_a_truncated_image_is_refused() -> None:
    data = _png(Image.effect_noise((64, 64), 50).convert("RGB"))
    _reject(_data_url(data[: len(data) // 2]))


# ---- http(s) ---------------------------------------------------------------------------------------------


def test_http_is_refused_when_fetching_is_off() -> None:
    err = _reject("http://example.com/a.png")
    assert "image_fetch_hosts" in err.message


def test_a_host_off_the_allow_list_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fetch, "resolve_host", _no_dns)
    err = _reject("https://evil.example/a.png", ImageLimits(fetch_hosts=("images.example",)))
    assert err.received == "evil.example" and err.allowed == ["images.example"]


def _no_dns(host: str, port: int) -> list[fetch.IPAddress]:
    raise AssertionError(f"resolved {host}: a refused host must not be looked up")


@pytest.mark.parametrize("address", ["127.0.0.1", "10.1.2.3", "169.254.169.254", "192.168.0.1", "::1", "fd00::1"])
def test_a_host_resolving_to_a_non_public_address_is_refused_before_connecting(
    monkeypatch: pytest.MonkeyPatch, address: str
) -> None:
    monkeypatch.setattr(fetch, "resolve_host", lambda host, port: [ipaddress.ip_address(address)])
    monkeypatch.setattr(fetch.httpx.Client, "stream", _no_connection)
    err = _reject("http://images.example/a.png", ImageLimits(fetch_hosts=("images.example",)))
    assert err.received == [address]


def test_one_private_address_among_public_ones_is_enough_to_refuse(monkeypatch: pytest.MonkeyPatch) -> None:
    answers = [ipaddress.ip_address("93.184.216.34"), ipaddress.ip_address("10.0.0.7")]
    monkeypatch.setattr(fetch, "resolve_host", lambda host, port: answers)
    monkeypatch.setattr(fetch.httpx.Client, "stream", _no_connection)
    assert _reject("http://images.example/a.png", ImageLimits(fetch_hosts=("images.example",))).received == ["10.0.0.7"]


def _no_connection(*args: object, **kwargs: object) -> None:
    raise AssertionError("a refused address must not be connected to")


Route = Callable[[BaseHTTPRequestHandler], None]


@pytest.fixture
def image_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, dict[str, Route]]]:
    """A server on 127.0.0.1 answering from `routes` (path -> handler); 127.0.0.1 alone counts as public."""
    routes: dict[str, Route] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            routes[self.path](self)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    monkeypatch.setattr(fetch, "is_public_address", lambda ip: ip == LOOPBACK)
    monkeypatch.setattr(fetch, "resolve_host", _test_dns)
    try:
        yield f"http://images.test:{server.server_port}", routes
    finally:
        server.shutdown()
        server.server_close()


def _test_dns(host: str, port: int) -> list[fetch.IPAddress]:
    names = {"images.test": "127.0.0.1", "metadata.test": "169.254.169.254", "inside.test": "127.0.0.2"}
    return [ipaddress.ip_address(names.get(host, host))]


def _send(body: bytes, status: int = 200, length: bool = True) -> Route:
    def handle(h: BaseHTTPRequestHandler) -> None:
        h.send_response(status)
        h.send_header("Content-Type", "image/png")
        if length:
            h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    return handle


def _redirect(location: str) -> Route:
    def handle(h: BaseHTTPRequestHandler) -> None:
        h.send_response(302)
        h.send_header("Location", location)
        h.send_header("Content-Length", "0")
        h.end_headers()

    return handle


RED = Image.new("RGB", (5, 4), (255, 0, 0))
HOSTS = ("images.test", "metadata.test", "inside.test")


def test_an_allowed_host_is_fetched_and_a_relative_redirect_followed(
    image_server: tuple[str, dict[str, Route]],
) -> None:
    base, routes = image_server
    routes["/red.png"] = _send(_png(RED))
    routes["/moved"] = _redirect("/red.png")
    for path in ("/red.png", "/moved"):
        out = load_image(ImagePart(base + path), ImageLimits(fetch_hosts=HOSTS))
        assert out.size == (5, 4) and out.getpixel((0, 0)) == (255, 0, 0)


def test_a_redirect_to_a_private_address_is_refused_before_connecting(
    image_server: tuple[str, dict[str, Route]],
) -> None:
    base, routes = image_server
    with socket.socket() as inside:  # a listener on 127.0.0.2, which the patched check calls private
        inside.bind(("127.0.0.2", 0))
        inside.listen(1)
        inside.setblocking(False)
        routes["/to-inside"] = _redirect(f"http://inside.test:{inside.getsockname()[1]}/secret.png")
        routes["/to-metadata"] = _redirect("http://metadata.test/latest/meta-data/")
        for path, refused in (("/to-inside", "127.0.0.2"), ("/to-metadata", "169.254.169.254")):
            err = _reject(base + path, ImageLimits(fetch_hosts=HOSTS))
            assert err.received == [refused]
        time.sleep(0.05)
        with pytest.raises(BlockingIOError):
            inside.accept()  # nobody connected


def test_a_redirect_to_a_host_off_the_list_is_refused(image_server: tuple[str, dict[str, Route]]) -> None:
    base, routes = image_server
    routes["/away"] = _redirect("http://elsewhere.test/a.png")
    assert _reject(base + "/away", ImageLimits(fetch_hosts=HOSTS)).received == "elsewhere.test"


def test_redirects_are_capped(image_server: tuple[str, dict[str, Route]]) -> None:
    base, routes = image_server
    routes["/loop"] = _redirect("/loop")
    err = _reject(base + "/loop", ImageLimits(fetch_hosts=HOSTS, max_redirects=2))
    assert (err.received, err.allowed) == (3, 2)


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "streamed"])
def test_the_byte_cap_holds_while_streaming(image_server: tuple[str, dict[str, Route]], declared: bool) -> None:
    base, routes = image_server
    routes["/big"] = _send(b"\0" * 50_000, length=declared)
    with pytest.raises(ImageTooLargeError) as info:
        load_image(ImagePart(base + "/big"), ImageLimits(fetch_hosts=HOSTS, max_bytes=10_000))
    assert info.value.allowed == 10_000 and info.value.received > 10_000


def test_a_slow_server_times_out(image_server: tuple[str, dict[str, Route]]) -> None:
    base, routes = image_server

    def slow(h: BaseHTTPRequestHandler) -> None:
        time.sleep(1.0)
        _send(_png(RED))(h)

    routes["/slow"] = slow
    started = time.monotonic()
    err = _reject(base + "/slow", ImageLimits(fetch_hosts=HOSTS, fetch_timeout_s=0.2))
    assert "timeout" in err.message and time.monotonic() - started < 0.9


def test_an_error_status_is_refused(image_server: tuple[str, dict[str, Route]]) -> None:
    base, routes = image_server
    routes["/gone"] = _send(b"", status=404)
    assert _reject(base + "/gone", ImageLimits(fetch_hosts=HOSTS)).received == 404


def test_a_fetched_non_image_is_refused(image_server: tuple[str, dict[str, Route]]) -> None:
    base, routes = image_server
    routes["/page"] = _send(b"<html></html>")
    assert "not an image" in _reject(base + "/page", ImageLimits(fetch_hosts=HOSTS)).message
