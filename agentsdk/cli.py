"""The ``agentsdk`` command line. Serve options forward to ServerConfig, the one home of defaults;
``train`` and ``evaluate`` forward to ``agentsdk_server.offline``."""

from __future__ import annotations

import argparse
import os
import sys

from agentsdk_server.config import ConfigError, ServerConfig, cli_flag, env_var, fields, kind_of, load_config

SERVE_EXAMPLE = """example:
  agentsdk serve --env CartPole-v1 --port 9900 --checkpoint-dir runs/cartpole --stop-return 450
"""

TRAIN_EXAMPLE = """example:
  agentsdk serve --env CartPole-v1 --record runs/rec        # or the client's Recorder
  agentsdk train --offline runs/rec --algo BC --out runs/bc
  agentsdk serve --env CartPole-v1 --init-from runs/bc/checkpoint
"""


def _add_config_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="JSON file of options (any option below, plus "
        "'training': AlgorithmConfig fields). [env AGENTSDK_CONFIG]",
    )
    defaults = ServerConfig()
    for f in fields():
        help_text = f"{f.metadata['help']} [default: {getattr(defaults, f.name)!r}; env {env_var(f.name)}]"
        if kind_of(f) == "bool":
            parser.add_argument(cli_flag(f.name), action="store_true", default=None, help=help_text)
        else:  # the value is parsed by the config's one parser, like the environment's
            metavar = "JSON" if kind_of(f) == "dict" else f.name.upper()
            parser.add_argument(cli_flag(f.name), metavar=metavar, default=None, help=help_text)


def config_from_args(args: argparse.Namespace) -> ServerConfig:
    return load_config(
        args.config or os.environ.get("AGENTSDK_CONFIG"), {f.name: getattr(args, f.name) for f in fields()}
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="agentsdk", description="Train RLlib agents inside apps that own their loop."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    serve_p = sub.add_parser(
        "serve",
        help="run a PolicyServer: HTTP front + RLlib learner",
        epilog=SERVE_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_config_options(serve_p)

    demo_p = sub.add_parser(
        "demo",
        help="train CartPole-v1 with a server and several client processes",
        epilog="example:\n  agentsdk demo --clients 3 --out runs/demo",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    demo_p.add_argument("--clients", type=int, default=3, help="client processes to start [default: 3]")
    demo_p.add_argument(
        "--local",
        type=int,
        default=None,
        help="how many of them use local (ONNX) inference [default: all but one]",
    )
    demo_p.add_argument("--target", type=float, default=450.0, help="mean return to stop at [default: 450]")
    demo_p.add_argument("--max-seconds", type=float, default=600.0, help="time cap [default: 600]")
    demo_p.add_argument("--port", type=int, default=9911, help="server port [default: 9911]")
    demo_p.add_argument(
        "--out", default="runs/demo", help="checkpoints and final policy.onnx [default: runs/demo]"
    )

    train_p = sub.add_parser(
        "train",
        help="train offline (BC, MARWIL, CQL) on a recording; writes a checkpoint and policy.onnx",
        epilog=TRAIN_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    train_p.add_argument(
        "--offline",
        metavar="DIR",
        required=True,
        help="the recording (serve --record, or the client's Recorder)",
    )
    train_p.add_argument("--algo", default="BC", help="BC, MARWIL or CQL [default: BC]")
    train_p.add_argument(
        "--out", metavar="OUT", required=True, help="writes OUT/checkpoint and OUT/policy.onnx"
    )
    train_p.add_argument("--iterations", type=int, default=200, help="training iterations [default: 200]")
    train_p.add_argument(
        "--training", metavar="JSON", help="AlgorithmConfig fields as JSON, e.g. '{\"lr\": 0.0003}'"
    )
    train_p.add_argument("--env", metavar="GYM_ID", help="refuse unless the recording has this env's spaces")
    train_p.add_argument("--seed", type=int, default=None, help="random seed for the learner")

    eval_p = sub.add_parser(
        "evaluate",
        help="estimate a policy's return on a recording (off-policy importance sampling)",
        epilog="example:\n  agentsdk evaluate --offline runs/rec --policy runs/bc/policy.onnx",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    eval_p.add_argument(
        "--offline", metavar="DIR", required=True, help="the recording (with behaviour log-probs)"
    )
    eval_p.add_argument("--policy", metavar="FILE", required=True, help="an exported policy (policy.onnx)")
    eval_p.add_argument(
        "--gamma", type=float, default=1.0, help="discount of the estimated return [default: 1]"
    )
    eval_p.add_argument("--json", action="store_true", help="print one JSON object instead of lines")

    args = parser.parse_args(argv)
    if args.command == "train":
        from agentsdk_server.offline.train import OfflineError, parse_training, run_offline_training

        try:
            return run_offline_training(
                args.offline,
                args.algo,
                args.out,
                args.iterations,
                parse_training(args.training),
                args.env,
                args.seed,
            )
        except OfflineError as exc:
            print(f"agentsdk train: {exc}", file=sys.stderr)
            return 2
    if args.command == "evaluate":
        from agentsdk_server.offline.train import OfflineError

        try:
            from agentsdk_server.offline.evaluate import run_offline_evaluation

            return run_offline_evaluation(args.offline, args.policy, args.gamma, args.json)
        except OfflineError as exc:
            print(f"agentsdk evaluate: {exc}", file=sys.stderr)
            return 2
    if args.command == "serve":
        from agentsdk_server.serve import serve

        try:
            cfg = config_from_args(args)
        except ConfigError as exc:
            print(f"agentsdk serve: {exc}", file=sys.stderr)
            return 2
        return serve(cfg)
    if args.command == "demo":
        from .demo import run_demo

        return run_demo(args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
