"""`vmb library add|list|search|remove|stats|calibrate`: the full (CLAP/CLIP) music library.

The library lives in ``<library_dir>/full``; the draft library (``draft.sqlite``) is separate.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from bridge.errors import InvalidRequest
from engine.commands.common import ProgressPrinter, add_model_dir_arg, print_json, settings


def _root() -> Path:
    from engine.retrieve.full.retriever import library_root

    return library_root(settings())


def _add(args: argparse.Namespace) -> int:
    from engine.retrieve.full.indexing import AddOptions, add_paths

    s = settings()
    options = AddOptions(
        reembed=args.reembed,
        batch_size=args.batch_size,
        ray_address=args.ray_address,
        runtime=args.runtime,
        device=s.models.device,
    )
    progress = None if args.json else ProgressPrinter(lines_off_tty=True)
    report = add_paths(_root(), s.model_dir, args.paths, options, progress=progress)
    if args.json:
        print_json(report.to_json())
        return 0
    print(
        f"added {len(report.added)}, updated {len(report.updated)}, unchanged "
        f"{len(report.unchanged)}, skipped {len(report.skipped)} "
        f"({report.audio_seconds:.0f} s of audio in {report.wall_seconds:.1f} s, {report.executor})"
    )
    for path, reason in report.skipped:
        print(f"  skipped {path}: {reason}")
    for note in report.notes:
        print(f"  note: {note}")
    for name, ran_on in report.encoders.items():
        print(f"  {name.upper()} ran on {ran_on}")
    if report.calibration:
        print(f"  tag thresholds calibrated ({report.calibration['method']})")
    if report.ann:
        print(f"  approximate index rebuilt (recall@10 {report.ann['recall_at_10']})")
    return 0


def _list(args: argparse.Namespace) -> int:
    from engine.retrieve.full.library import MusicLibrary
    from engine.retrieve.full.schema import parse_partition

    part = parse_partition(args.partition) if args.partition else None
    with MusicLibrary.open(_root()) as lib:
        records = lib.pieces(part, limit=args.limit)
    if args.json:
        print_json([r.to_json() for r in records])
    else:
        for r in records:
            bpm = f"{r.bpm:.0f} BPM" if r.bpm else "- BPM"
            key = f"{r.key} {r.mode}" if r.key else "-"
            print(f"{r.piece_id}  {r.title[:40]:<40} {bpm:>8} {key:<9} {r.genre or '-':<10} "
                  f"{r.mood or '-':<11} {r.path}")  # fmt: skip
    return 0


def _search(args: argparse.Namespace) -> int:
    from engine.retrieve.full.retriever import FullRetriever
    from engine.retrieve.full.schema import parse_partition

    parts = [parse_partition(p) for p in args.partition or []]
    retriever = FullRetriever(settings(), runtime=args.runtime)
    try:
        if args.text:
            refs = retriever.broad_text(args.text, args.top_k, parts)
        elif args.clip_text:
            refs = retriever.broad_clip_text(args.clip_text, args.top_k, parts)
        elif args.audio:
            from engine.retrieve.decode import decode_audio

            wave = decode_audio(Path(args.audio), retriever.clap.cfg.sample_rate)
            refs = retriever.broad_audio(wave, args.top_k, parts)
        elif args.image:
            refs = retriever.broad_image(_read_image(Path(args.image)), args.top_k, parts)
        elif len(parts) == 1:
            refs = retriever.targeted(parts[0], args.top_k, attribute=args.attribute)
        else:
            raise InvalidRequest(
                "give a query (--text, --clip-text, --audio or --image), or exactly one "
                "--partition for a targeted search"
            )
    finally:
        retriever.close()
    if args.json:
        print_json([r.to_json() for r in refs])
    else:
        for r in refs:
            print(
                f"{r.score:7.4f}  {r.piece_id}  {r.title[:40]:<40} {r.partition or '':<16} {r.path}"
            )
        if not refs:
            print("no match")
    return 0


def _read_image(path: Path) -> Any:
    import numpy as np
    from PIL import Image

    try:
        with Image.open(path) as img:
            return np.asarray(img.convert("RGB"))[None]
    except OSError as exc:
        raise InvalidRequest(f"cannot read image {path}: {exc}") from None


def _remove(args: argparse.Namespace) -> int:
    from engine.retrieve.full.library import MusicLibrary

    keys = [
        str(Path(k).expanduser().resolve()) if Path(k).expanduser().exists() else k
        for k in args.ids
    ]
    with MusicLibrary.open(_root()) as lib, lib.writer() as w:
        removed = w.remove(keys)
    missing = [k for k in keys if k not in removed]
    if args.json:
        print_json({"removed": removed, "not_found": missing})
    else:
        print(f"removed {len(removed)}")
        for k in missing:
            print(f"  not in the library: {k}")
    return 0 if not missing else 1


def _stats(args: argparse.Namespace) -> int:
    from engine.retrieve.full.library import MusicLibrary

    with MusicLibrary.open(_root()) as lib:
        stats = lib.stats()
    if args.json:
        print_json(stats)
    else:
        print(f"library: {stats['path']} (format {stats['schema_version']})")
        print(
            f"  pieces {stats['pieces']} ({stats['videos']} videos, {stats['audio_hours']} h, "
            f"{stats['key_frames']} key frames, {stats['removed_rows']} removed rows)"
        )
        for which, enc in stats["encoders"].items():
            if enc:
                print(f"  {which}: {enc['name']} ({enc['weights']} weights, {enc['dim']}-d, "
                      f"id {enc['identity']})")  # fmt: skip
        cal = stats["calibration"] or {}
        print(f"  tag thresholds: {cal.get('method', '-')} ({cal.get('pieces', 0)} pieces)")
        if stats["ann"]:
            print(
                f"  approximate index: {stats['ann']['rows']} rows, "
                f"recall@10 {stats['ann']['recall_at_10']}"
            )
        for name, n in sorted(stats["partitions"].items()):
            print(f"  {name:<28} {n}")
    return 0


def _calibrate(args: argparse.Namespace) -> int:
    from engine.retrieve.full.library import MusicLibrary

    labels = None
    if args.labels:
        try:
            labels = json.loads(Path(args.labels).read_text())
        except (OSError, ValueError) as exc:
            raise InvalidRequest(f"cannot read labels {args.labels}: {exc}") from None
        if not isinstance(labels, dict):
            raise InvalidRequest("labels must be a JSON object {piece id or path: [tags]}")
    with MusicLibrary.open(_root()) as lib, lib.writer() as w:
        record = w.calibrate(labels=labels, force=True)
    if args.json:
        print_json(record)
    else:
        print(
            f"calibrated: {record['method'] if record else 'nothing to calibrate (empty library)'}"
        )
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("library", help="the full music library")
    lsub = p.add_subparsers(dest="library_cmd", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="machine-readable output")
    add_model_dir_arg(common)
    common.add_argument("--runtime", choices=["auto", "torch", "onnx"], default="auto",
                        help="what runs the encoders (auto: ONNX when exported)")  # fmt: skip
    a = lsub.add_parser("add", parents=[common], help="add audio/video files or folders")
    a.add_argument("paths", nargs="+")
    a.add_argument("--reembed", action="store_true", help="analyse unchanged files again")
    a.add_argument("--batch-size", type=int, default=16)
    a.add_argument("--ray-address", default=None, help="run the embedding on Ray (or RAY_ADDRESS)")
    a.set_defaults(func=_add)
    li = lsub.add_parser("list", parents=[common], help="list pieces")
    li.add_argument("--partition", help="e.g. tempo:fast, genre:rock, mood:happy, instrument:piano")
    li.add_argument("--limit", type=int, default=None)
    li.set_defaults(func=_list)
    s = lsub.add_parser("search", parents=[common], help="broad or targeted search")
    q = s.add_mutually_exclusive_group()
    q.add_argument("--text", help="CLAP text -> audio")
    q.add_argument("--clip-text", help="CLIP text -> video key frames")
    q.add_argument("--audio", help="an audio file: CLAP audio -> audio")
    q.add_argument("--image", help="an image: CLIP image -> video key frames")
    s.add_argument("--partition", action="append", help="filter (repeatable); alone: targeted")
    s.add_argument("--attribute", help="targeted: the attribute text (default: the tag prompt)")
    s.add_argument("--top-k", type=int, default=5)
    s.set_defaults(func=_search)
    r = lsub.add_parser("remove", parents=[common], help="remove pieces by id or path")
    r.add_argument("ids", nargs="+")
    r.set_defaults(func=_remove)
    st = lsub.add_parser("stats", parents=[common], help="size, encoders, partitions, calibration")
    st.set_defaults(func=_stats)
    c = lsub.add_parser("calibrate", parents=[common], help="recalibrate the tag thresholds")
    c.add_argument("--labels", help="JSON {piece id or path: [tags]}: fit thresholds to labels")
    c.set_defaults(func=_calibrate)
