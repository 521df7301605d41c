"""Shared by the bench report scripts: each owns one marked section of BENCHMARKS.md."""
import pathlib

BENCHMARKS = pathlib.Path(__file__).resolve().parent.parent / "BENCHMARKS.md"


def replace_section(name: str, title: str, lines: list[str]) -> str:
    """Replaces the section between `<!-- bench:NAME:begin/end -->` (appending it under
    `## TITLE` the first time) and returns the new section text."""
    begin, end = f"<!-- bench:{name}:begin -->", f"<!-- bench:{name}:end -->"
    section = "\n".join([begin, *lines, end])
    text = BENCHMARKS.read_text() if BENCHMARKS.exists() else "# Benchmarks\n\n"
    if begin in text:
        head, rest = text.split(begin, 1)
        text = head + section + rest.split(end, 1)[1]
    else:
        text += f"\n## {title}\n\n{section}\n"
    BENCHMARKS.write_text(text)
    return section
