"""Train the processing fingerprint: ``python -m training.fingerprint --out runs/fp [--minutes 70]``.

A small fully-convolutional network maps a photo's luminance to a dense 16-dimensional embedding
of its processing history (Noiseprint / Noiseprint++'s idea, trained from scratch on our own
pristine photos, self-supervised: no manipulation label, no manipulated photo). The runtime's
``fingerprint`` evidence fits the embeddings of one photo and marks where they depart from its
dominant history.

Input: luminance ``Y / 255 - 0.5`` (BT.601 weights), one channel. Why luminance: the histories
learned here (resampling, JPEG's luminance quantization, blur, sharpening, denoising, noise) live
in the fine structure of luminance, which JPEG keeps at full resolution while it subsamples and
quantizes chroma harder; one channel is a third of the first layer's cost, and the embedding does
not follow colour edits, which are content, not history. (Noiseprint reads luminance too.)

Network: space-to-depth by 4 (lossless: the 4x4 pixel phases become 16 channels, so every
high-frequency trace reaches the first layer), ``layers - 1`` 3x3 convolutions of ``channels``
with BatchNorm and ReLU, a 1x1 convolution to ``dim`` (``layers`` = 8, ``channels`` = 32, ``dim`` =
16 by default: 61 k weights). Output stride 4; receptive field ``4 * (2 * (layers - 1) + 1)`` pixels
(60 px by default). Sized by measurement on the 2-core machine with one torch thread: 8 x 32
trains at about 430 patches/s on 64 px patches (6 x 48: 300; 6 x 64: 190) and infers a 1 MP
photo in 0.16 s. The cost per pixel is 1/16 of a
full-resolution net of the same width, which is what makes the 1 MP stage budget reachable.

Loss: supervised-contrastive InfoNCE (Khosla et al. 2020; temperature ``--temperature``) on
L2-normalized embeddings, each the dense output averaged over one ``split x split`` quarter of a
64 px patch (32 px, 8 x 8 positions: close to the window the runtime averages over). A batch
(:func:`training.fingerprint_data.make_batch`) takes 16 photos in sets of ``share`` = 2; each set
goes through 2 different random histories, each photo cut at one place for both; each processed
128 px crop gives 4 non-overlapping tiles. Positives: everything under one history on one set
(other photos, other parts: only the history ties them, so content cannot). Negatives: other
sets, and the same photos under the set's other history, whose content is the same, so the
embedding must encode the history and not the content. With ``--tail`` (the chance per set, 0.5 by
default; 0 in the first shipped run) both histories of a set end in one shared platform tail, a
resize and a JPEG/WebP save (:func:`training.fingerprint_data.sample_tail`): the embedding must then
tell earlier histories apart under a common last one, as a spliced photo that a platform resized
and re-saved shows them. ``--init RUN_DIR`` starts a new run from another run's weights (a
fine-tune). (A first design with one photo per
history and overlapping patches learned to match content: val loss fell fast, maps were
content-driven; see the model card.) Batches are pure functions of ``(seed, step)``, prepared
ahead by ``--workers`` processes.

The run directory holds ``run.json`` (settings), ``last.pt`` (written atomically every
``--checkpoint-minutes``, and at the end: weights, optimizer state, step, patches seen, torch RNG),
``log.jsonl`` (the learning curve: training loss vs patches seen, validation loss and
nearest-neighbour history accuracy on held-out photos, patches/s). ``--resume RUN_DIR`` continues
exactly from ``last.pt`` with the saved settings (batch ``step`` is the same batch it would have
been). The same script runs on a GPU (``--device cuda``, chosen automatically when present).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from export.fingerprint_net import VERSION, FingerprintNet, build_net, load_checkpoint, load_net, receptive_field  # noqa: F401
from training import fingerprint_data as fd
from training.synth import default_data_root

DEFAULTS = dict(
    data=str(default_data_root()),  # $WSLOC_DATA, else ../shared/data beside the checkout
    seed=0,
    channels=32,
    layers=8,
    dim=16,
    space_to_depth=4,
    temperature=0.1,
    lr=1e-3,
    photos=16,
    histories=2,
    patches=4,
    patch=64,
    crop=128,
    share=2,
    split=2,
    tail=0.5,
    val_fraction=0.04,
    val_batches=8,
)


def patch_embeddings(net: nn.Module, patches: torch.Tensor, split: int = 1) -> torch.Tensor:
    """L2-normalized embeddings: the dense output averaged over each of the ``split x split``
    sub-squares of each patch, ``(N * split * split, dim)`` in patch order."""
    out = net(patches)
    n, dim, h, w = out.shape
    out = out.reshape(n, dim, split, h // split, split, w // split).mean(dim=(3, 5))
    return F.normalize(out.permute(0, 2, 3, 1).reshape(n * split * split, dim), dim=1)


def expand_groups(groups: torch.Tensor, split: int) -> torch.Tensor:
    return groups.repeat_interleave(split * split)


def supcon_loss(z: torch.Tensor, groups: torch.Tensor, temperature: float) -> torch.Tensor:
    """InfoNCE with several positives per anchor (Khosla et al. 2020): mean over anchors of the
    mean over its positives of ``-log softmax`` over all other patches of the batch."""
    n = z.shape[0]
    logits = z @ z.t() / temperature
    self_mask = torch.eye(n, dtype=torch.bool, device=z.device)
    logits = logits.masked_fill(self_mask, float("-inf"))
    log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    positives = (groups[:, None] == groups[None, :]) & ~self_mask
    per_anchor = -(log_prob.masked_fill(~positives, 0.0).sum(dim=1)) / positives.sum(dim=1).clamp(min=1)
    return per_anchor.mean()


def neighbour_accuracy(z: torch.Tensor, groups: torch.Tensor) -> float:
    """Share of patches whose nearest other patch has the same history (and photo)."""
    sim = z @ z.t()
    sim.fill_diagonal_(-2.0)
    return float((groups[sim.argmax(dim=1)] == groups).float().mean())


# --------------------------------------------------------------------------------------------
# batches, prepared ahead in worker processes


def _init_worker() -> None:
    import cv2

    cv2.setNumThreads(1)
    os.environ["OMP_NUM_THREADS"] = "1"


def _batch_job(args):
    sources, seed, step, shape = args
    return step, fd.make_batch(sources, seed, step, shape)


class BatchStream:
    """Batches ``start, start+1, ...`` in order, ``prefetch`` of them prepared ahead by ``workers``
    processes (``workers=0``: in this process)."""

    def __init__(self, sources, seed: int, shape: fd.BatchShape, start: int, workers: int, prefetch: int = 8):
        self.sources, self.seed, self.shape, self.next_step = [str(s) for s in sources], seed, shape, start
        self.workers = workers
        self.pending: collections.deque = collections.deque()
        self.pool = None
        if workers > 0:
            import multiprocessing as mp

            self.pool = mp.get_context("spawn").Pool(workers, initializer=_init_worker)
            for _ in range(prefetch):
                self._submit()

    def _submit(self) -> None:
        job = (self.sources, self.seed, self.next_step, self.shape)
        self.pending.append(self.pool.apply_async(_batch_job, (job,)))
        self.next_step += 1

    def get(self):
        if self.pool is None:
            step = self.next_step
            self.next_step += 1
            return _batch_job((self.sources, self.seed, step, self.shape))
        result = self.pending.popleft().get()
        self._submit()
        return result

    def close(self) -> None:
        if self.pool is not None:
            self.pool.terminate()
            self.pool.join()
            self.pool = None


# --------------------------------------------------------------------------------------------
# checkpoints


def save_checkpoint(path: Path, state: dict) -> None:
    """``torch.save`` to a temporary file then an atomic rename: a kill never leaves half a file."""
    tmp = path.with_name(path.name + ".part")
    torch.save(state, tmp)
    with open(tmp, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def _truncate_log(log_path: Path, step: int) -> None:
    """Drop log lines past the checkpoint's step, so a resumed run's curve has no duplicates."""
    if not log_path.is_file():
        return
    kept = [line for line in log_path.read_text().splitlines() if line and json.loads(line).get("step", 0) <= step]
    log_path.write_text("".join(line + "\n" for line in kept))


# --------------------------------------------------------------------------------------------
# training


def train(settings: dict, out: Path, *, resume: bool, minutes: float, threads: int, workers: int,
          device: str, checkpoint_minutes: float, log_every: int, val_every: int, max_steps: int | None,
          decay_last: float = 0.0, lr_override: float | None = None, sources=None, quiet: bool = False) -> dict:
    """One training invocation; returns the last log record. ``sources``: photo paths (default: the data root)."""
    torch.set_num_threads(threads)
    out.mkdir(parents=True, exist_ok=True)
    log_path = out / "log.jsonl"
    shape = fd.BatchShape(settings["photos"], settings["histories"], settings["patches"], settings["patch"],
                          settings["crop"], settings.get("share", 1), settings.get("tail", 0.0))
    settings.setdefault("split", 1)
    if sources is None:
        sources = fd.list_sources(settings["data"])
    train_sources, val_sources = fd.split_sources(list(map(Path, sources)), settings["val_fraction"])
    if not val_sources:
        val_sources = train_sources[:2]
    net = build_net(settings).to(device)
    optimizer = torch.optim.Adam(net.parameters(), lr=settings["lr"])
    step, patches_seen, train_seconds = 0, 0, 0.0
    if resume:
        ckpt = load_checkpoint(out)
        net.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        step, patches_seen, train_seconds = ckpt["step"], ckpt["patches_seen"], ckpt["train_seconds"]
        torch.set_rng_state(ckpt["torch_rng"])
        _truncate_log(log_path, step)
    else:
        torch.manual_seed(settings["seed"])
        net = build_net(settings).to(device)  # same init whatever happened before
        if settings.get("init"):  # a new run that starts from another run's weights (same net shape)
            net.load_state_dict(load_checkpoint(Path(settings["init"]))["model"])
        optimizer = torch.optim.Adam(net.parameters(), lr=settings["lr"])
        (out / "run.json").write_text(json.dumps({"settings": settings, "version": VERSION,
                                                  "sources": {"train": len(train_sources), "validation": len(val_sources)}}, indent=2))
        if log_path.exists():
            log_path.unlink()
    base_lr = lr_override if lr_override is not None else settings["lr"]
    for group in optimizer.param_groups:
        group["lr"] = base_lr

    val = [fd.make_batch([str(s) for s in val_sources], 10_000 + settings["seed"], i, shape) for i in range(settings["val_batches"])]

    def validate() -> tuple[float, float]:
        net.eval()
        losses, accs = [], []
        with torch.no_grad():
            for x, g in val:
                z = patch_embeddings(net, torch.from_numpy(x).to(device), settings["split"])
                g = expand_groups(torch.from_numpy(g).to(device), settings["split"])
                losses.append(float(supcon_loss(z, g, settings["temperature"])))
                accs.append(neighbour_accuracy(z, g))
        net.train()
        return float(np.mean(losses)), float(np.mean(accs))

    stream = BatchStream(train_sources, settings["seed"], shape, step, workers)
    started = time.time()
    last_ckpt = started
    window_loss: list[float] = []
    window_start, window_patches = time.time(), 0
    record: dict = {}

    def checkpoint() -> None:
        save_checkpoint(out / "last.pt", {
            "model": net.state_dict(), "optimizer": optimizer.state_dict(), "step": step,
            "patches_seen": patches_seen, "train_seconds": train_seconds + (time.time() - started),
            "torch_rng": torch.get_rng_state(), "settings": settings, "version": VERSION,
        })

    net.train()
    try:
        while True:
            elapsed = time.time() - started
            if max_steps is not None and step >= max_steps:
                break
            if minutes and elapsed >= minutes * 60:
                break
            if decay_last and minutes and elapsed >= (1 - decay_last) * minutes * 60:
                for group in optimizer.param_groups:
                    group["lr"] = base_lr * 0.1
            got_step, (x, g) = stream.get()
            assert got_step == step, (got_step, step)
            z = patch_embeddings(net, torch.from_numpy(x).to(device), settings["split"])
            loss = supcon_loss(z, expand_groups(torch.from_numpy(g).to(device), settings["split"]), settings["temperature"])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            patches_seen += len(x)
            window_patches += len(x)
            window_loss.append(loss.item())
            if step % log_every == 0 or (max_steps is not None and step >= max_steps):
                now = time.time()
                record = {"step": step, "patches_seen": patches_seen, "loss": float(np.mean(window_loss)),
                          "patches_per_s": window_patches / max(now - window_start, 1e-9),
                          "train_seconds": round(train_seconds + now - started, 1), "lr": optimizer.param_groups[0]["lr"]}
                if step % val_every == 0:
                    record["val_loss"], record["val_accuracy"] = validate()
                with open(log_path, "a") as handle:
                    handle.write(json.dumps(record) + "\n")
                if not quiet:
                    print(json.dumps(record), flush=True)
                window_loss, window_start, window_patches = [], time.time(), 0
            if time.time() - last_ckpt >= checkpoint_minutes * 60:
                checkpoint()
                last_ckpt = time.time()
    finally:
        stream.close()
    record = {"step": step, "patches_seen": patches_seen, "final": True}
    record["val_loss"], record["val_accuracy"] = validate()
    with open(log_path, "a") as handle:
        handle.write(json.dumps(record) + "\n")
    checkpoint()
    if not quiet:
        print(json.dumps(record), flush=True)
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, help="run directory (new run)")
    parser.add_argument("--resume", type=Path, help="run directory to continue from its last.pt")
    parser.add_argument("--minutes", type=float, default=0.0, help="stop after this many minutes (0: no limit)")
    parser.add_argument("--max-steps", type=int, default=None, help="stop at this step")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--workers", type=int, default=1, help="batch-preparing processes (0: inline)")
    parser.add_argument("--device", default="auto", help="cpu, cuda or auto")
    parser.add_argument("--checkpoint-minutes", type=float, default=10.0)
    parser.add_argument("--log-every", type=int, default=25, help="steps per log record")
    parser.add_argument("--val-every", type=int, default=100, help="steps per validation (a multiple of --log-every)")
    parser.add_argument("--decay-last", type=float, default=0.0,
                        help="divide the learning rate by 10 for this last fraction of --minutes")
    parser.add_argument("--lr", type=float, default=None, help="learning rate (on --resume: override the saved one)")
    parser.add_argument("--init", default=None, help="a new run starts from this run directory's last.pt weights")
    for key in ("data", "seed", "channels", "layers", "dim", "space_to_depth", "temperature", "photos",
                "histories", "patches", "patch", "crop", "share", "split", "tail"):
        parser.add_argument("--" + key.replace("_", "-"), type=type(DEFAULTS[key]), default=None)
    args = parser.parse_args(argv)
    if (args.out is None) == (args.resume is None):
        parser.error("give exactly one of --out and --resume")
    device = args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    if args.resume:
        out = args.resume
        settings = json.loads((out / "run.json").read_text())["settings"]
    else:
        out = args.out
        settings = dict(DEFAULTS)
        for key in DEFAULTS:
            value = getattr(args, key, None)
            if value is not None:
                settings[key] = value
        if args.lr is not None:
            settings["lr"] = args.lr
        if args.init:
            settings["init"] = str(args.init)
    if settings["patch"] % settings["space_to_depth"] or settings["crop"] < settings["patch"]:
        parser.error("--patch must be a multiple of --space-to-depth and at most --crop")
    print(f"fingerprint training on {device} ({platform.processor() or platform.machine()}), "
          f"threads={args.threads}, workers={args.workers}, out={out}", file=sys.stderr)
    train(settings, out, resume=bool(args.resume), minutes=args.minutes, threads=args.threads, workers=args.workers,
          device=device, checkpoint_minutes=args.checkpoint_minutes, log_every=args.log_every,
          val_every=args.val_every, max_steps=args.max_steps, decay_last=args.decay_last,
          lr_override=args.lr if args.resume else None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
