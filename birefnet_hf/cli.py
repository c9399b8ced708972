"""The ``birefnet-hf`` command line: one entry point, one sub-command per job.

Each sub-command lives in its own module, which exposes ``main(argv)`` with its own argparse parser,
so ``birefnet-hf convert ...`` is the same as ``python -m birefnet_hf.convert_birefnet_original_to_hf ...``.
"""

import importlib
import sys

SUBCOMMANDS = {
    "convert": ("birefnet_hf.convert_birefnet_original_to_hf", "convert an authors' checkpoint to a save_pretrained folder"),
    "segment": ("birefnet_hf.segment", "segment images / remove backgrounds (files, folders, globs)"),
    "synthetic": ("birefnet_hf.data.synthetic", "write a synthetic DIS5K-layout dataset"),
    "publish": ("birefnet_hf.publish", "build model folders + model cards and push them to the Hub"),
    "export": ("birefnet_hf.onnx_export", "export to ONNX (standard operators, checked against PyTorch)"),
    "video": ("birefnet_hf.video", "remove the background of a video (alpha WebM/ProRes, matte, composite, PNGs)"),
}


def _usage() -> str:
    lines = ["usage: birefnet-hf <command> [options]", "", "commands:"]
    lines += [f"  {name:<10} {help_}" for name, (_, help_) in SUBCOMMANDS.items()]
    lines += ["", "Run `birefnet-hf <command> --help` for the options of a command."]
    return "\n".join(lines)


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command not in SUBCOMMANDS:
        print(f"birefnet-hf: unknown command {command!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(SUBCOMMANDS[command][0])
    result = module.main(rest)
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
