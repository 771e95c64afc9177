#!/usr/bin/env python3
"""Carries TCP across the dev node's network namespace boundary through unix
sockets, so that no address outside loopback and the namespace is ever used
(docs/development.md, "The node").

Each rule is one listener; one process serves all its rules:
  --tcp-to-unix ADDR:PORT=SOCKET   accept TCP here, pass it to SOCKET
  --unix-to-tcp SOCKET=ADDR:PORT   accept on SOCKET, connect to ADDR:PORT here
  --http-connect SOCKET            accept on SOCKET, answer HTTP CONNECT
                                   requests by connecting from here (the API
                                   server's egress to the kubelet)

The process that runs this decides which side it is on: hack/node.sh starts
one on the host (unix to loopback TCP) and one inside the namespace
(namespace TCP to unix, and the CONNECT proxy).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        try:
            writer.close()
        except OSError:
            pass


async def splice(client: tuple, upstream: tuple) -> None:
    (client_reader, client_writer), (upstream_reader, upstream_writer) = client, upstream
    await asyncio.gather(pipe(client_reader, upstream_writer), pipe(upstream_reader, client_writer))


def to_unix(socket_path: str):
    async def handle(reader, writer):
        try:
            upstream = await asyncio.open_unix_connection(socket_path)
        except OSError:
            writer.close()
            return
        await splice((reader, writer), upstream)
    return handle


def to_tcp(host: str, port: int):
    async def handle(reader, writer):
        try:
            upstream = await asyncio.open_connection(host, port)
        except OSError:
            writer.close()
            return
        await splice((reader, writer), upstream)
    return handle


async def http_connect(reader, writer):
    """One CONNECT host:port request, then bytes both ways."""
    try:
        request = await reader.readuntil(b"\r\n\r\n")
        method, target, _ = request.split(b"\r\n", 1)[0].decode().split(" ", 2)
        host, _, port = target.rpartition(":")
        if method != "CONNECT" or not port.isdigit():
            raise ValueError(target)
        upstream = await asyncio.open_connection(host.strip("[]"), int(port))
    except (OSError, ValueError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        writer.write(b"HTTP/1.1 502 Bad Gateway\r\n\r\n")
        writer.close()
        return
    writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
    await splice((reader, writer), upstream)


def split_address(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host, int(port)


async def serve(args) -> None:
    servers = []
    for rule in args.tcp_to_unix:
        address, _, socket_path = rule.partition("=")
        host, port = split_address(address)
        servers.append(await asyncio.start_server(to_unix(socket_path), host, port, reuse_address=True))
    for rule in args.unix_to_tcp:
        socket_path, _, address = rule.partition("=")
        if os.path.exists(socket_path):
            os.unlink(socket_path)
        servers.append(await asyncio.start_unix_server(to_tcp(*split_address(address)), socket_path))
    for socket_path in args.http_connect:
        if os.path.exists(socket_path):
            os.unlink(socket_path)
        servers.append(await asyncio.start_unix_server(http_connect, socket_path))
    print(f"[netns-bridge] serving {len(servers)} rule(s)", file=sys.stderr, flush=True)
    await asyncio.gather(*(server.serve_forever() for server in servers))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tcp-to-unix", action="append", default=[])
    parser.add_argument("--unix-to-tcp", action="append", default=[])
    parser.add_argument("--http-connect", action="append", default=[])
    try:
        asyncio.run(serve(parser.parse_args()))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
