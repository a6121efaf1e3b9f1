"""Data-parallel training over the processes `torchrun --nproc_per_node=N -m train NAME` starts.

genlab.training calls into this module only when torchrun's environment is set (RANK, WORLD_SIZE, ...); a plain
`python -m train` never reaches it, so the one-process path stays bit for bit what it was. What it does:

- one process group from torchrun's variables: gloo on the CPU, nccl on CUDA (one GPU per process, LOCAL_RANK);
- every rank builds the same Trainer from the same seed and draws the same global batch from `batches()` (the
  data order is seeded as in one process: a random stream shared by all ranks), then keeps rows rank, rank + N,
  ... of it (equal shards: a ragged remainder of fewer than N rows is dropped);
- the step itself runs on a stream of its own per rank (noise, dropout, replay buffer), so N ranks draw N
  different noise batches, not one batch N times;
- before every optimiser step, that optimiser's gradients are averaged over the ranks (one all_reduce):
  plain gradient averaging, as DistributedDataParallel does, but after the whole backward. Not the DDP wrapper,
  because the GAN steps here do what it does not support: the WGAN-GP penalty differentiates through
  autograd.grad(create_graph=True) (DDP does not reduce such gradients correctly: pytorch#47562, #63929), the
  G steps run D with frozen weights, D runs several forwards per backward, and the CycleGAN steps two
  generators through one optimiser. Averaging at the optimiser works for any step and keeps model files as
  they are; the price is no overlap of communication with backward (fine for these small nets, slower for
  large ones);
- BatchNorm normalises with each rank's own batch statistics (as DDP does by default, no SyncBatchNorm);
  after each step rank 0's buffers (running statistics) are broadcast, as DDP's broadcast_buffers does, so all
  ranks hold identical weights and buffers;
- the losses shown are averaged over ranks; a stop (Ctrl-C, time cap) is agreed by all ranks at the same
  step; scores are computed on rank 0 and broadcast, so EarlyStop decides the same everywhere; rank 0 alone
  writes previews, the run state (from the plain modules, so it resumes under any number of processes)
  and the checkpoint.

On CUDA also: bf16 autocast around the step for families whose Spec says it is safe (`bf16`; never in the
gradient penalty, which turns autocast off itself), channels_last weights, pinned host batches copied
without blocking. Not measured on a GPU yet.
"""
from __future__ import annotations

import contextlib
import hashlib
import os

import torch
import torch.distributed as dist
from torch import nn


_owned = False  # this module made the process group (close() ends it)


def from_env(device: str) -> "Parallel | None":
    """A Parallel when torchrun started this process (WORLD_SIZE set), else None: the one-process path."""
    if "WORLD_SIZE" not in os.environ or "RANK" not in os.environ:
        return None
    return Parallel(device)


def close() -> None:
    """End the process group this module started (the CLI calls it when the run is over)."""
    global _owned
    if _owned and dist.is_initialized():
        # All ranks tear down together: a rank that destroyed its gloo group while rank 0 was still writing the
        # checkpoint sometimes aborted at exit ("terminate called without an active exception", 1 run in 3).
        dist.barrier()
        dist.destroy_process_group()
    _owned = False


class Parallel:
    def __init__(self, device: str):
        self.rank, self.world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
        self.cuda = device.startswith("cuda")
        if self.cuda:  # one GPU per process
            local = int(os.environ.get("LOCAL_RANK", 0))
            torch.cuda.set_device(local)
            device = f"cuda:{local}"
        self.device = device
        global _owned
        if not dist.is_initialized():  # a caller (a test) may have set the group up already
            dist.init_process_group("nccl" if self.cuda else "gloo")  # env://: torchrun's MASTER_ADDR/PORT
            _owned = True
        self.main = self.rank == 0
        self.stopped = False  # True on every rank at the same step once any rank was asked to stop
        self.autocast = False
        self.capped = False  # every rank's time cap, agreed: any rank past it ends the run for all
        self._data_rng = None
        self._buffers: list[torch.Tensor] = []

    # ---- set-up --------------------------------------------------------------------------------------

    def attach(self, trainer, seed: int, step: int, bf16: bool = False) -> None:
        """Hook the trainer's optimisers and split the random streams; call once it is built (and restored)."""
        nets = _unique(m for m in vars(trainer).values() if isinstance(m, nn.Module))
        opts = _unique(o for o in vars(trainer).values() if isinstance(o, torch.optim.Optimizer))
        if not opts:
            raise TypeError(f"{type(trainer).__name__} holds no optimiser as an attribute: nothing to synchronise")
        if self.cuda:
            for net in nets:
                net.to(memory_format=torch.channels_last)  # 4-D weights only; Linear layers stay as they are
            for opt in opts:  # resumed Adam moments must match their weights' layout
                for p, st in opt.state.items():
                    for k, v in st.items():
                        if torch.is_tensor(v) and v.shape == p.shape and p.dim() == 4:
                            st[k] = v.contiguous(memory_format=torch.channels_last)
            self.autocast = bf16
        self._buffers = _unique(b for net in nets for b in net.buffers())
        for opt in opts:
            opt.register_step_pre_hook(self._average_grads)
        self._data_rng = self._rng()  # what batches() draws from: the same on every rank
        digest = hashlib.sha256(f"{seed}/{self.rank}/{step}".encode()).digest()
        torch.manual_seed(int.from_bytes(digest[:8], "little") >> 1)  # this rank's own step stream

    # ---- the loop's hooks ----------------------------------------------------------------------------

    def batches(self, batches):
        """This rank's shard of each global batch; the global batches are drawn from the shared stream."""
        it = iter(batches)
        while True:
            mine = self._rng()
            self._set_rng(self._data_rng)
            try:
                batch = next(it)
            except StopIteration:
                return
            finally:
                self._data_rng = self._rng()
                self._set_rng(mine)
            yield self.shard(batch)

    def shard(self, batch):
        """Rows rank, rank + N, ... of every tensor in a batch (a tensor, or a tuple / list / dict of them)."""
        if isinstance(batch, (tuple, list)):
            return type(batch)(self.shard(b) for b in batch)
        if isinstance(batch, dict):
            return {k: self.shard(v) for k, v in batch.items()}
        per = len(batch) // self.world
        if per == 0:
            raise ValueError(f"a batch of {len(batch)} cannot be split over {self.world} processes: raise --batch-size")
        rows = batch[self.rank::self.world][:per]
        if self.cuda and rows.device.type == "cpu":
            return rows.pin_memory().to(self.device, non_blocking=True)  # the copy overlaps the step's work
        return rows

    def step_context(self):
        """bf16 autocast on CUDA where the family allows it; nothing otherwise."""
        if self.autocast:
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def after_step(self, losses: dict, stop_requested: bool, capped: bool) -> dict:
        """Broadcast rank 0's buffers; average the losses; agree on a stop and on the time cap (any rank's
        request counts, so all ranks leave the loop at the same step). Returns the averaged losses."""
        if self._buffers:
            _broadcast_flat(self._buffers, 0)
        vals = torch.tensor([*losses.values(), float(stop_requested), float(capped)], dtype=torch.float64,
                            device=self.device)
        dist.all_reduce(vals)
        vals = vals.cpu()
        self.stopped = bool(vals[-2] > 0)
        self.capped = bool(vals[-1] > 0)
        return {k: (v / self.world).item() for k, v in zip(losses, vals[:-2])}

    def score(self, trainer) -> dict:
        """Rank 0's score, the same dict on every rank (EarlyStop then decides alike everywhere)."""
        box = [trainer.score() if self.main else None]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    # ---- internals -----------------------------------------------------------------------------------

    def _average_grads(self, opt, args, kwargs):
        """Optimizer step pre-hook: replace each gradient by its mean over the ranks (one all_reduce)."""
        grads = [p.grad for group in opt.param_groups for p in group["params"] if p.grad is not None]
        if not grads:
            return
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat)
        flat /= self.world
        i = 0
        for g in grads:
            g.copy_(flat[i:i + g.numel()].view_as(g))
            i += g.numel()

    def _rng(self):
        return torch.get_rng_state(), torch.cuda.get_rng_state() if self.cuda else None

    def _set_rng(self, state) -> None:
        torch.set_rng_state(state[0])
        if self.cuda:
            torch.cuda.set_rng_state(state[1])

    def data_rng(self) -> torch.Tensor:
        """The shared stream's CPU state: what the run state saves as "rng" (resume restores it as the data stream)."""
        return self._data_rng[0]


def _unique(xs) -> list:
    seen, out = set(), []
    for x in xs:
        if id(x) not in seen:
            seen.add(id(x))
            out.append(x)
    return out


def _broadcast_flat(tensors: list[torch.Tensor], src: int) -> None:
    """Broadcast many small tensors as one per dtype (BatchNorm buffers: float statistics, int64 counters)."""
    by_dtype: dict = {}
    for t in tensors:
        by_dtype.setdefault(t.dtype, []).append(t)
    for group in by_dtype.values():
        flat = torch.cat([t.reshape(-1) for t in group])
        dist.broadcast(flat, src)
        i = 0
        for t in group:
            t.copy_(flat[i:i + t.numel()].view_as(t))
            i += t.numel()
