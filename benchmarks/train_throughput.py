"""Training throughput: a fixed-length PuffeRL run on the real simulator.

python benchmarks/train_throughput.py --json [--device cuda]
{"device": "cpu", "sps": ..., "num_envs": ..., "params": ...}
"""

import argparse
import json
import warnings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--steps", type=int, default=2_000_000, help="agent steps to train for")
    parser.add_argument("--num-envs", type=int, default=None)
    parser.add_argument("--json", action="store_true", help="print one JSON line")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")

    from rl.train import TrainConfig, train

    config = TrainConfig(total_steps=args.steps, device=args.device)
    if args.num_envs:
        config = TrainConfig(total_steps=args.steps, device=args.device, num_envs=args.num_envs)
    warmup = TrainConfig(**{**config.__dict__, "total_steps": config.batch_size})
    train(warmup, run_id="warmup")  # compiles the simulator and warms torch up
    result = train(config, run_id="benchmark")
    out = {
        "device": args.device,
        "sps": round(result.global_step / result.elapsed),
        "num_envs": config.num_envs,
        "params": sum(p.numel() for p in result.policy.parameters()),
    }
    print(json.dumps(out) if args.json else out)


if __name__ == "__main__":
    main()
