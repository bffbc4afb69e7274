"""`datapruner report OUT_DIR`: the summary of a finished run (counts by reason, top reasons, files)."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("report", help="summarise a finished run: counts by reason, top drop reasons, where the files are")
    p.add_argument("out_dir", metavar="OUT_DIR", help="the --out folder of a finished `datapruner run`")
    p.set_defaults(func=run)


def run(args) -> int:
    from datapruner.pipelines.report import run_summary

    s = run_summary(args.out_dir)
    print(f"run: {s.out_dir}")
    print(f"rows in: {s.rows_in}  kept: {s.kept}  dropped: {s.dropped}  (invalid: {s.invalid_rows})")
    print("dropped by reason:")
    for reason, count in sorted(s.dropped_by_reason.items()):
        print(f"  {count:>8}  {reason}")
    if not s.dropped_by_reason:
        print("  (none)")
    print("top drop reasons:")
    for i, (reason, count, share) in enumerate(s.top_reasons(), start=1):
        print(f"  {i}. {reason}: {count} rows ({100 * share:.1f} % of rows in)")
    print("files:")
    for name, path in s.files.items():
        print(f"  {name:9} {path}")
    return 0
