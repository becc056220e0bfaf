"""Decoding untrusted images under limits: `data:` URLs, allow-listed http(s) URLs, Pillow with a pixel cap.

`load_image` is the one way an :class:`~encoder.inputs.ImagePart` becomes pixels. A `data:` URL must be base64
(strict alphabet, no whitespace) with an `image/*` media type; its decoded size is computed from the encoded
length and checked before anything is decoded. The decoded bytes are opened with only the allowed Pillow
formats, and the real format must be the one the media type declares. Dimensions are checked against the pixel
cap before `load()` decodes a pixel, and Pillow's own decompression-bomb warning is turned into an error. EXIF
orientation is applied and the result is RGB (transparency composited onto white). http(s) fetching lives in
:mod:`encoder.fetch`. Every rejection is an `ImageRejectedError` (or `ImageTooLargeError` for a size cap) whose
message names the limit's setting.
"""

from __future__ import annotations

import base64
import binascii
import io
import struct
import warnings
from dataclasses import dataclass

from PIL import Image, ImageOps

from encoder.errors import ImageRejectedError, ImageTooLargeError
from encoder.fetch import fetch_bytes
from encoder.inputs import ImagePart

__all__ = ["DEFAULT_FORMATS", "ImageLimits", "decode_data_url", "decode_image", "load_image"]

DEFAULT_FORMATS = frozenset({"PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF"})
_PARAM = "image_url"  # the request field every rejection names
# media subtypes whose Pillow format name is not the subtype upper-cased
_SUBTYPE_FORMAT = {"jpg": "JPEG", "pjpeg": "JPEG", "x-ms-bmp": "BMP", "x-bmp": "BMP", "tif": "TIFF"}
# what Pillow raises on a malformed file (it converts most, not all, into OSError / UnidentifiedImageError)
_DECODE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, IndexError, struct.error)


@dataclass(frozen=True, slots=True)
class ImageLimits:
    """What an untrusted image may be; the service builds it from `ServiceConfig` (`image_*` fields)."""

    max_bytes: int = 20 * 2**20  # encoded bytes (data: payload after base64 decode, or fetched body)
    max_pixels: int = 40_000_000  # decoded width*height; over it (and Pillow bomb warnings) -> error
    formats: frozenset[str] = DEFAULT_FORMATS  # Pillow format names accepted
    fetch_hosts: tuple[str, ...] = ()  # http(s) fetching allow-list (host names); empty = fetching off
    fetch_timeout_s: float = 10.0  # per network operation and for the whole fetch, redirects included
    max_redirects: int = 3  # redirects followed, each target checked again


def load_image(part: ImagePart, limits: ImageLimits) -> Image.Image:
    """`part` as an RGB image with EXIF orientation applied; `part.image` (trusted) is only converted."""
    if part.image is not None:
        return _to_rgb(part.image)
    url = part.url
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    if scheme == "data":
        data, declared = decode_data_url(url, limits)
        return decode_image(data, limits, declared)
    if scheme in ("http", "https"):
        body = fetch_bytes(
            url,
            hosts=limits.fetch_hosts,
            max_bytes=limits.max_bytes,
            timeout_s=limits.fetch_timeout_s,
            max_redirects=limits.max_redirects,
        )
        return decode_image(body, limits)
    raise ImageRejectedError(
        f"an image URL must be a data: URL or an http(s) URL, not {scheme or 'empty'!r}",
        param=_PARAM,
        received=scheme,
        allowed="data:, http:, https:",
    )


def _declared_format(media_type: str, formats: frozenset[str]) -> str:
    """The Pillow format an `image/<subtype>` media type declares; refused unless it is one of `formats`."""
    kind, _, subtype = media_type.partition("/")
    fmt = _SUBTYPE_FORMAT.get(subtype, subtype.upper())
    if kind != "image" or fmt not in formats:
        raise ImageRejectedError(
            f"a data: URL's media type must be an allowed image type, not {media_type or 'empty'!r}",
            param=_PARAM,
            received=media_type,
            allowed=sorted(f"image/{f.lower()}" for f in formats),
        )
    return fmt


def _decoded_size(payload: str) -> int:
    """Bytes that a base64 `payload` decodes to, from its length alone.

    >>> _decoded_size("aGVsbG8="), _decoded_size("aGk="), _decoded_size("")
    (5, 2, 0)
    """
    return len(payload) // 4 * 3 - payload[-2:].count("=")


def decode_data_url(url: str, limits: ImageLimits) -> tuple[bytes, str]:
    """A `data:image/...;base64,...` URL -> (its bytes, the Pillow format it declares); size checked first."""
    header, comma, payload = url[len("data:") :].partition(",")
    params = [p.strip().lower() for p in header.split(";")]
    if not comma or params[-1] != "base64":
        raise ImageRejectedError(
            "an image data: URL must be base64-encoded (data:image/png;base64,...)",
            param=_PARAM,
            received=f"data:{header[:64]}",
            allowed="data:image/<type>;base64,<payload>",
        )
    fmt = _declared_format(params[0], limits.formats)
    size = _decoded_size(payload)
    if size > limits.max_bytes:
        raise ImageTooLargeError(
            f"the image is {size} bytes, over the limit of {limits.max_bytes} (image_max_bytes)",
            param=_PARAM,
            received=size,
            allowed=limits.max_bytes,
        )
    try:
        return base64.b64decode(payload, validate=True), fmt
    except (binascii.Error, ValueError) as exc:
        raise ImageRejectedError(
            f"the data: URL's payload is not valid base64: {exc}",
            param=_PARAM,
            received=f"{len(payload)} characters",
            allowed="standard base64 (A-Z a-z 0-9 + /, '=' padding, no whitespace)",
        ) from exc


def _pixel_error(width: int, height: int, allowed: int) -> ImageTooLargeError:
    return ImageTooLargeError(
        f"the image is {width}x{height} = {width * height} pixels, over the limit of {allowed} (image_max_pixels)",
        param=_PARAM,
        received=width * height,
        allowed=allowed,
    )


def _open(data: bytes, limits: ImageLimits) -> Image.Image:
    """Pillow's lazy open with only the allowed formats tried; a bomb warning is an error here."""
    try:
        return Image.open(io.BytesIO(data), formats=sorted(limits.formats))
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
        allowed = min(limits.max_pixels, Image.MAX_IMAGE_PIXELS or limits.max_pixels)
        raise ImageTooLargeError(
            f"the image's dimensions are over the pixel limit of {allowed} (image_max_pixels): {exc}",
            param=_PARAM,
            received=str(exc)[:120],
            allowed=allowed,
        ) from exc
    except _DECODE_ERRORS as exc:
        raise ImageRejectedError(
            f"the bytes are not an image in an allowed format ({', '.join(sorted(limits.formats))})",
            param=_PARAM,
            received=f"{len(data)} bytes",
            allowed=sorted(limits.formats),
        ) from exc


def decode_image(data: bytes, limits: ImageLimits, declared: str | None = None) -> Image.Image:
    """Encoded image bytes -> an RGB image, dimensions checked before decoding, EXIF orientation applied.

    `declared`: the Pillow format a data: URL's media type names; the real format must match it.
    """
    if len(data) > limits.max_bytes:
        raise ImageTooLargeError(
            f"the image is {len(data)} bytes, over the limit of {limits.max_bytes} (image_max_bytes)",
            param=_PARAM,
            received=len(data),
            allowed=limits.max_bytes,
        )
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        img = _open(data, limits)
        if declared is not None and img.format != declared:
            raise ImageRejectedError(
                f"the data: URL declares image/{declared.lower()} but holds {img.format}",
                param=_PARAM,
                received=img.format,
                allowed=declared,
            )
        width, height = img.size
        cap = min(limits.max_pixels, Image.MAX_IMAGE_PIXELS or limits.max_pixels)  # bomb-safe even if unwarned
        if width * height > cap:
            raise _pixel_error(width, height, cap)
        try:
            img.load()
            return _to_rgb(ImageOps.exif_transpose(img))
        except _DECODE_ERRORS as exc:
            raise ImageRejectedError(
                f"the {img.format} image is corrupt or truncated: {exc}",
                param=_PARAM,
                received=f"{len(data)} bytes",
                allowed="a complete image",
            ) from exc


def _to_rgb(img: Image.Image) -> Image.Image:
    """RGB; transparency (RGBA, LA, P with a transparent index) composited onto white."""
    if img.mode == "RGB":
        return img
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return img.convert("RGB")
