"""The client commands: each turns its arguments into client calls.

Output is for scripts first: ``ls`` prints one path per line (directories
end in ``/``), successful writes print nothing. Failures are one line on
stderr (the service's code, message and request id) and an exit status
from :mod:`.exits`.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import mimetypes
import os
import sys
from typing import Any, Callable, Iterator

from blobsvc.client import BlobsvcError, Client, NotFound
from blobsvc.clientcli import progress, transfer
from blobsvc.clientcli.exits import (
    EXIT_BROKEN_PIPE,
    EXIT_FAILURE,
    EXIT_INTERRUPTED,
    EXIT_NOT_FOUND,
    EXIT_OK,
    EXIT_USAGE,
    UsageError,
    describe,
    exit_status,
)
from blobsvc.clientcli.target import Target, checked, client, resolve, same_service
from blobsvc.storage.contract import ObjectInfo

#: Paths per bulk delete request (the service's maximum).
DELETE_BATCH = 1000


def run(args: argparse.Namespace) -> int:
    """Run one client command; every failure becomes a line and a status."""
    try:
        return HANDLERS[args.command](args)
    except UsageError as exc:
        return _fail(str(exc), EXIT_USAGE)
    except BlobsvcError as exc:
        return _fail(describe(exc), exit_status(exc))
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_BROKEN_PIPE
    except FileNotFoundError as exc:
        return _fail(f"{exc.filename}: {exc.strerror}", EXIT_NOT_FOUND)
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        return _fail(f"{where}{exc.strerror or exc}", EXIT_FAILURE)
    except KeyboardInterrupt:
        print(file=sys.stderr)  # end the line a progress bar left open
        return EXIT_INTERRUPTED


def _fail(message: str, status: int) -> int:
    print(f"blobsvc: {message}", file=sys.stderr)
    return status


def _silence_stdout() -> None:
    """The reader of stdout is gone: point it at /dev/null so that the
    interpreter's final flush does not fail again and print a traceback."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def _quiet(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "quiet", False))


def _open(targets: list[Target], args: argparse.Namespace) -> Client:
    return client(same_service(targets), args)


def _name(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[-1]


# -- ls and stat ---------------------------------------------------------------------


def ls(args: argparse.Namespace) -> int:
    """Full paths, so that each line can be a target again; an object path lists itself."""
    target = resolve(args.target, args)
    with _open([target], args) as blobs:
        entries: Iterator[ObjectInfo] = blobs.iter_list(target.clean, recursive=args.recursive)
        try:
            first = next(entries, None)
        except NotFound:
            if not target.clean or target.path.endswith("/"):
                raise
            first, entries = transfer.head(blobs, target.clean), iter(())  # an object: itself, as ls does
        if first is not None:
            _print_entry(first, args.long)
        for entry in entries:
            _print_entry(entry, args.long)
    return EXIT_OK


def _print_entry(entry: ObjectInfo, long: bool) -> None:
    name = entry.path + ("/" if entry.isdir else "")
    if not long:
        print(name)
        return
    size = "-" if entry.isdir or entry.size is None else str(entry.size)
    print(f"{size:>12}  {_time(entry.ctime)}  {entry.etag or '-':<32}  {name}")


def _time(ctime: float | None) -> str:
    if ctime is None:
        return "-" * 20
    moment = datetime.datetime.fromtimestamp(ctime, datetime.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def stat(args: argparse.Namespace) -> int:
    """One ``label: value`` a line for people and grep, or the API's JSON for programs."""
    target = resolve(args.target, args)
    path = _object_path(target)
    with _open([target], args) as blobs:
        info = transfer.head(blobs, path)
    if args.json:
        print(json.dumps(info.to_json(), ensure_ascii=False, sort_keys=True))
        return EXIT_OK
    lines = [("path", info.path), ("size", str(info.size)), ("modified", _time(info.ctime)),
             ("etag", info.etag or "-"), ("content-type", info.content_type or "-")]
    if info.expires_at is not None:
        lines.append(("expires", _time(info.expires_at)))
    lines += [(f"meta {key}", value) for key, value in sorted((info.metadata or {}).items())]
    lines += [(f"header {name}", value) for name, value in info.headers.items()]
    for label, value in lines:
        print(f"{label}: {value}")
    return EXIT_OK


def _object_path(target: Target) -> str:
    if target.is_dir_hint:
        raise UsageError(f"{target.path or 'the root'} names a directory, not an object")
    return target.clean


# -- get ---------------------------------------------------------------------------------


def get(args: argparse.Namespace) -> int:
    """One object to a file or stdout, or a tree (``-r``); resumable with ``-c``."""
    target = resolve(args.target, args)
    if args.dest == "-" and (args.recursive or args.resume):
        raise UsageError("stdout ('-') takes one object, without -r or -c")
    with _open([target], args) as blobs:
        if args.recursive:
            return _get_tree(blobs, target, args)
        path = _object_path(target)
        if args.dest == "-":  # no bar drawn into the very terminal the bytes go to
            meter = progress.bar(_name(path), None, _quiet(args) or sys.stdout.isatty())
            try:
                transfer.to_stream(blobs, path, sys.stdout.buffer, meter)
            finally:
                meter.close()
            return EXIT_OK
        dest = args.dest or _name(path)
        if dest.endswith(os.sep) or os.path.isdir(dest):
            dest = os.path.join(dest, _name(path))
        _require_directory(os.path.dirname(dest))
        meter = progress.bar(_name(path), None, _quiet(args))
        try:
            _download(blobs, path, dest, args.resume, meter)
        finally:
            meter.close()
    return EXIT_OK


def _require_directory(directory: str) -> None:
    """Name the missing directory, not the temporary file that could not be made in it."""
    if directory and not os.path.isdir(directory):
        raise FileNotFoundError(2, "no such directory", directory)


def _download(blobs: Client, path: str, dest: str, resume: bool,
              meter: progress.Progress) -> ObjectInfo:
    if resume:
        return transfer.resumable(blobs, path, dest, meter)
    return transfer.to_file(blobs, path, dest, meter)


def _get_tree(blobs: Client, target: Target, args: argparse.Namespace) -> int:
    """Every object below the target, into the local directory DEST (its
    contents, not the directory itself, as ``cp -rT`` does)."""
    prefix = target.clean
    root = args.dest or _name(prefix) or "."
    entries = list(blobs.iter_list(prefix, recursive=True))  # infos only, for the total
    meter = progress.bar(_name(prefix) or "/", sum(e.size or 0 for e in entries), _quiet(args))
    try:
        for entry in entries:
            local = os.path.join(root, *_relative_parts(entry.path, prefix))
            os.makedirs(os.path.dirname(local) or ".", exist_ok=True)
            meter.describe(entry.name)
            _download(blobs, entry.path, local, args.resume, meter)
    finally:
        meter.close()
    return EXIT_OK


def _relative_parts(path: str, prefix: str) -> list[str]:
    """The local path segments of ``path`` below ``prefix``: refused unless
    they stay below the destination, whatever a service answers."""
    if prefix and not path.startswith(prefix + "/"):
        raise BlobsvcError(f"the listing of {prefix} named {path!r}, which is not below it")
    parts = path[len(prefix) + 1:].split("/") if prefix else path.split("/")
    for part in parts:
        if part in ("", ".", "..") or os.sep in part or (os.altsep and os.altsep in part) \
                or "\0" in part:
            raise BlobsvcError(f"{path!r} cannot be a local file name")
    return parts


# -- put ---------------------------------------------------------------------------------


def put(args: argparse.Namespace) -> int:
    """A file, stdin or a tree (``-r``), with what ``-m``, ``-H`` and the conditions add."""
    options = _write_fields(args)
    if args.src == "-":
        if args.recursive or args.target is None:
            raise UsageError("stdin ('-') needs a TARGET to store it at, and takes no -r")
        target = resolve(args.target, args)
        with _open([target], args) as blobs:
            path = _object_path(target)
            meter = progress.bar(_name(path), None, _quiet(args))
            try:
                transfer.from_stream(blobs, path, sys.stdin.buffer, meter, **options)
            finally:
                meter.close()
        return EXIT_OK
    if not os.path.exists(args.src):
        raise FileNotFoundError(2, "No such file or directory", args.src)
    if os.path.isdir(args.src) and not args.recursive:
        raise UsageError(f"{args.src} is a directory: use put -r")
    source_name = os.path.basename(os.path.normpath(args.src))
    target = resolve(args.target if args.target is not None else source_name, args)
    with _open([target], args) as blobs:
        if args.recursive:
            return _put_tree(blobs, args.src, target.clean, args, options)
        path = target.clean + "/" + source_name if target.is_dir_hint else target.clean
        path = path.lstrip("/")
        meter = progress.bar(source_name, os.path.getsize(args.src), _quiet(args))
        try:
            transfer.from_file(blobs, path, args.src, meter, **_typed(options, args.src))
        finally:
            meter.close()
    return EXIT_OK


def _put_tree(blobs: Client, src: str, prefix: str, args: argparse.Namespace,
              options: dict[str, Any]) -> int:
    """Every regular file below ``src``, under ``prefix`` by relative path.
    Every name is checked before the first byte goes: a name the service
    would refuse stops the command before it has uploaded half a tree."""
    uploads = []
    for filename in _local_files(src):
        relative = os.path.relpath(filename, src).replace(os.sep, "/")
        uploads.append((filename, relative, checked(f"{prefix}/{relative}" if prefix else relative,
                                                    filename)))
    total = sum(os.path.getsize(filename) for filename, _, _ in uploads)
    meter = progress.bar(_name(src) or src, total, _quiet(args))
    try:
        for filename, relative, path in uploads:
            meter.describe(relative)
            transfer.from_file(blobs, path, filename, meter, **_typed(options, filename))
    finally:
        meter.close()
    return EXIT_OK


def _local_files(src: str) -> Iterator[str]:
    """Regular files below ``src``, in name order; symbolic links to
    directories are not followed (no loops, nothing outside the tree)."""
    for root, dirs, files in os.walk(src):
        dirs.sort()
        for name in sorted(files):
            filename = os.path.join(root, name)
            if os.path.isfile(filename):
                yield filename


def _write_fields(args: argparse.Namespace) -> dict[str, Any]:
    """Client keyword arguments from -m, -H, --content-type and the conditions."""
    fields: dict[str, Any] = {"if_none_match": args.if_none_match, "if_match": args.if_match}
    if not hasattr(args, "meta"):
        return fields
    metadata: dict[str, str] = {}
    for item in args.meta:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"-m takes KEY=VALUE, not {item!r}")
        metadata[key] = value
    headers: dict[str, str] = {}
    content_type = args.content_type
    for item in args.header:
        name, sep, value = item.partition(":")
        if not sep or not name.strip():
            raise UsageError(f"-H takes 'NAME: VALUE', not {item!r}")
        if name.strip().lower() == "content-type":
            content_type = content_type or value.strip()
        else:
            headers[name.strip()] = value.strip()
    fields.update(metadata=metadata or None, headers=headers or None, content_type=content_type)
    return fields


def _typed(options: dict[str, Any], filename: str) -> dict[str, Any]:
    """The options with a Content-Type guessed from the file name when none
    was given (a stored ``.gz`` keeps its bytes: no encoding is implied)."""
    if options.get("content_type") or "content_type" not in options:
        return options
    guessed, encoding = mimetypes.guess_type(filename)
    if guessed is None or encoding is not None:
        return options
    return {**options, "content_type": guessed}


# -- rm, mv, cp, cat ---------------------------------------------------------------------


def rm(args: argparse.Namespace) -> int:
    """Every target is tried, as rm does; the status is the worst of them."""
    targets = [resolve(text, args) for text in args.targets]
    status = EXIT_OK
    with _open(targets, args) as blobs:
        for target in targets:
            if not target.clean:
                raise UsageError("refusing to delete the whole store; name a directory")
            try:
                if args.recursive:
                    status = max(status, _rm_tree(blobs, target.clean))
                else:
                    blobs.delete(target.clean)
            except NotFound as exc:
                if not args.force:
                    status = max(status, _fail(describe(exc), EXIT_NOT_FOUND))
    return status


def _rm_tree(blobs: Client, path: str) -> int:
    """Delete every object below ``path`` (or ``path`` itself, an object),
    a thousand per request, as the listing pages come."""
    try:
        entries = iter(blobs.iter_list(path, recursive=True))
        first = next(entries, None)
    except NotFound:
        blobs.delete(path)  # not a directory: an object, or NotFound
        return EXIT_OK
    status = EXIT_OK
    batch = [] if first is None else [first.path]
    for entry in entries:
        batch.append(entry.path)
        if len(batch) == DELETE_BATCH:
            status = max(status, _delete_batch(blobs, batch))
            batch = []
    if batch:
        status = max(status, _delete_batch(blobs, batch))
    return status


def _delete_batch(blobs: Client, paths: list[str]) -> int:
    result = blobs.delete_many(paths)  # what vanished meanwhile is gone all the same
    for error in result.errors:
        _fail(f"{error['code']}: {error['message']} ({error['path']})", EXIT_FAILURE)
    return EXIT_FAILURE if result.errors else EXIT_OK


def _pair(args: argparse.Namespace) -> tuple[list[Target], str, str]:
    """Source and destination paths; a destination ending in ``/`` takes the source's name."""
    src, dst = resolve(args.src, args), resolve(args.target, args)
    source = _object_path(src)
    dest = dst.clean + "/" + _name(source) if dst.is_dir_hint else dst.clean
    return [src, dst], source, dest.lstrip("/")


def mv(args: argparse.Namespace) -> int:
    """A rename on the service: the bytes never travel through the client."""
    targets, source, dest = _pair(args)
    with _open(targets, args) as blobs:
        blobs.move(source, dest, **_write_fields(args))
    return EXIT_OK


def cp(args: argparse.Namespace) -> int:
    """A copy on the service, metadata replaced only when ``-m``/``-H`` give some."""
    targets, source, dest = _pair(args)
    with _open(targets, args) as blobs:
        blobs.copy(source, dest, **_write_fields(args))
    return EXIT_OK


def cat(args: argparse.Namespace) -> int:
    """The service's join: DEST appears whole, then the chunks are deleted."""
    dest = resolve(args.target, args)
    chunks = [resolve(chunk, args) for chunk in args.chunks]
    with _open([dest, *chunks], args) as blobs:
        blobs.cat(_object_path(dest), [_object_path(chunk) for chunk in chunks],
                  **_write_fields(args))
    return EXIT_OK


HANDLERS: dict[str, Callable[[argparse.Namespace], int]] = {
    "ls": ls, "stat": stat, "get": get, "put": put, "rm": rm, "mv": mv, "cp": cp, "cat": cat,
}
