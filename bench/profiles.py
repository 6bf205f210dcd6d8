"""Reading py-spy's raw output (collapsed stacks: `frame;frame;...;leaf count` a line)
into the few frames that use the CPU. Pure."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

# py-spy writes a frame as `function (path/to/file.py:123)`; the line changes with every
# call site, so frames are counted without it.
_FRAME = re.compile(r"^(?P<function>.*?) \((?P<path>[^()]*?)(?::\d+)?\)$")


def frame_name(frame: str) -> str:
    """`function (package/module.py)`, shortened to the last two parts of the path."""
    match = _FRAME.match(frame.strip())
    if match is None:
        return frame.strip()
    parts = match.group("path").replace("\\", "/").split("/")
    return f"{match.group('function')} ({'/'.join(parts[-2:])})"


def parse_collapsed(lines: Iterable[str]) -> list[tuple[list[str], int]]:
    stacks = []
    for line in lines:
        line = line.rstrip("\n")
        if not line.strip():
            continue
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        stacks.append(([frame_name(frame) for frame in stack.split(";")], int(count)))
    return stacks


# A sample whose innermost Python frame is the event loop's entry is time spent in the
# loop's C code (uvloop: waiting in epoll, or socket work py-spy cannot see into): idle
# or I/O, reported apart from the Python frames.
LOOP_ENTRIES = ("run_app", "run_until_complete", "run_forever", "run (asyncio/runners.py)")


def _is_loop(frame: str) -> bool:
    return any(frame.startswith(entry) for entry in LOOP_ENTRIES)


def top_frames(
    lines: Iterable[str], limit: int = 12, own_code: str = "humantask"
) -> dict[str, object]:
    """The frames with the most samples on top of the stack (self), and the project's
    own frames (those naming `own_code`) with the most samples anywhere in the stack
    (inclusive), as percentages of the samples in Python code (`python_samples`: those
    not sitting in the event loop's C code, counted as `loop_samples`)."""
    stacks = parse_collapsed(lines)
    all_samples = sum(count for _, count in stacks)
    loop = sum(count for frames, count in stacks if frames and _is_loop(frames[-1]))
    total = all_samples - loop
    self_counts: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    for frames, count in stacks:
        if not frames or _is_loop(frames[-1]):
            continue
        self_counts[frames[-1]] += count
        for frame in set(frames):
            if own_code in frame:
                inclusive[frame] += count

    def share(counter: Counter[str]) -> list[tuple[str, float]]:
        return [
            (frame, round(100 * count / total, 1)) for frame, count in counter.most_common(limit)
        ]

    return {
        "samples": all_samples,
        "loop_samples": loop,
        "python_samples": total,
        "self": share(self_counts) if total else [],
        "inclusive": share(inclusive) if total else [],
    }
