"""Fetching an image over http(s) for the encoder, safely: allow-listed hosts only, public addresses only.

Every hop (the first URL and each redirect target, followed by hand up to `max_redirects`) is checked before
any connection is made: the scheme is http or https, the host is on the allow-list, and every address the host
resolves to is public (`ipaddress` `.is_global`; never loopback, link-local, private, reserved or multicast).
The request is then sent to the address that was checked (the URL's host is kept for `Host` and TLS SNI), so a
second DNS answer cannot swap in another address. The body is read in chunks under a byte cap and a deadline.
Proxies from the environment are ignored: a proxy would connect on our behalf to an unchecked address.
"""

from __future__ import annotations

import ipaddress
import socket
import time

import httpx

from encoder.errors import ImageRejectedError, ImageTooLargeError

__all__ = ["IPAddress", "fetch_bytes", "is_public_address", "resolve_host"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_PARAM = "image_url"  # the request field every rejection names
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


def is_public_address(ip: IPAddress) -> bool:
    """True for a globally routable unicast address; an IPv4-mapped IPv6 address is judged as its IPv4 form.

    >>> [is_public_address(ipaddress.ip_address(a)) for a in ("93.184.216.34", "127.0.0.1", "10.1.2.3")]
    [True, False, False]
    >>> [is_public_address(ipaddress.ip_address(a)) for a in ("169.254.169.254", "::ffff:10.0.0.1", "224.0.0.1")]
    [False, False, False]
    """
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def resolve_host(host: str, port: int) -> list[IPAddress]:
    """Every address `host` resolves to (an IP literal resolves to itself), in resolver order."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise ImageRejectedError(
            f"image URL host {host!r} does not resolve", param=_PARAM, received=host, allowed="a resolvable host"
        ) from exc
    return [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]


def _checked_address(url: httpx.URL, hosts: tuple[str, ...]) -> IPAddress:
    """The address to connect to for `url`, after the scheme, allow-list and address checks; else an error."""
    if url.scheme not in ("http", "https"):
        raise ImageRejectedError(
            f"image URL scheme {url.scheme!r} is not allowed", param=_PARAM, received=url.scheme, allowed="http, https"
        )
    host = url.host.lower().rstrip(".")
    if host not in {h.lower().rstrip(".") for h in hosts}:
        raise ImageRejectedError(
            f"image URL host {host!r} is not on the fetch allow-list (image_fetch_hosts: {list(hosts)})",
            param=_PARAM,
            received=host,
            allowed=list(hosts),
        )
    port = url.port or (443 if url.scheme == "https" else 80)
    addresses = resolve_host(host, port)
    refused = [str(a) for a in addresses if not is_public_address(a)]
    if refused or not addresses:
        raise ImageRejectedError(
            f"image URL host {host!r} resolves to non-public address(es) {refused}; only public addresses are fetched",
            param=_PARAM,
            received=refused,
            allowed="public (globally routable) addresses",
        )
    return addresses[0]


def _read_body(resp: httpx.Response, max_bytes: int, deadline: float) -> bytes:
    """The body of `resp`, refused as soon as it passes `max_bytes` or the deadline."""
    declared = resp.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise _too_large(int(declared), max_bytes)
    chunks: list[bytes] = []
    size = 0
    for chunk in resp.iter_bytes():
        size += len(chunk)
        if size > max_bytes:
            raise _too_large(size, max_bytes)
        if time.monotonic() > deadline:
            raise httpx.ReadTimeout("the image fetch took longer than its timeout")
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(received: int, allowed: int) -> ImageTooLargeError:
    return ImageTooLargeError(
        f"the fetched image is over {allowed} bytes (image_max_bytes); received at least {received}",
        param=_PARAM,
        received=received,
        allowed=allowed,
    )


def _hop(client: httpx.Client, url: httpx.URL, hosts: tuple[str, ...], max_bytes: int, deadline: float) -> bytes | str:
    """One GET of `url` pinned to its checked address: the body, or the redirect's Location."""
    address = _checked_address(url, hosts)
    pinned = url.copy_with(host=str(address))
    extensions = {"sni_hostname": url.host} if url.scheme == "https" else {}
    headers = {"Host": url.netloc.decode("ascii"), "Accept": "image/*"}
    with client.stream("GET", pinned, headers=headers, extensions=extensions) as resp:
        if resp.status_code in _REDIRECTS and "location" in resp.headers:
            return resp.headers["location"]
        if resp.status_code != 200:
            raise ImageRejectedError(
                f"fetching the image URL answered HTTP {resp.status_code}",
                param=_PARAM,
                received=resp.status_code,
                allowed=200,
            )
        return _read_body(resp, max_bytes, deadline)


def _parse(url: str, base: httpx.URL | None = None) -> httpx.URL:
    """`url` (relative to `base` when given, as a redirect's Location is) parsed; a malformed one is refused."""
    try:
        return base.join(url) if base is not None else httpx.URL(url)
    except (httpx.InvalidURL, ValueError) as exc:
        raise ImageRejectedError(
            f"malformed image URL: {exc}", param=_PARAM, received=url[:200], allowed="an http(s) URL"
        ) from exc


def fetch_bytes(url: str, *, hosts: tuple[str, ...], max_bytes: int, timeout_s: float, max_redirects: int) -> bytes:
    """GET `url` under the checks above; redirects followed by hand, each target checked before connecting.

    `hosts` empty means fetching is off. `timeout_s` bounds each network operation and the whole fetch.
    """
    if not hosts:
        raise ImageRejectedError(
            "fetching image URLs is off on this server (image_fetch_hosts is empty); send the image as a data: URL",
            param=_PARAM,
            received=url.split(":", 1)[0],
            allowed="data:",
        )
    deadline = time.monotonic() + timeout_s
    current = _parse(url)
    with httpx.Client(timeout=timeout_s, follow_redirects=False, trust_env=False) as client:
        for _ in range(max_redirects + 1):
            try:
                got = _hop(client, current, hosts, max_bytes, deadline)
            except httpx.HTTPError as exc:
                raise ImageRejectedError(
                    f"the image URL could not be fetched within {timeout_s} s (image fetch timeout): {exc}",
                    param=_PARAM,
                    received=str(current),
                    allowed=f"a reachable image within {timeout_s} s",
                ) from exc
            if isinstance(got, bytes):
                return got
            current = _parse(got, base=current)
    raise ImageRejectedError(
        f"the image URL redirected more than {max_redirects} times (max_redirects)",
        param=_PARAM,
        received=max_redirects + 1,
        allowed=max_redirects,
    )
