"""heareval's probe model, and G of them of one shape stacked and trained as one.

    model = StackedMLP.build(nfeatures, nlabels, confs, "cpu", member_seeds(42, len(confs)))
    logits = model.forward(x)                            # x [N, D] -> [G, N, C]

`FullyConnectedPrediction` is heareval's (Linear, norm, Dropout, ReLU per hidden layer,
then a Linear projection; xavier init with the gain of the preceding activation).
`StackedMLP` holds G of them as stacked tensors (weights [G, in, out], batched matmuls,
per-member BatchNorm/LayerNorm/dropout/loss), `StackedOptimizer` is Adam (or SGD) with one
learning rate per member. On the CPU a seeded member multiplies through oneDNN and draws
its dropout masks from `bernoulli_keep` (hearflow.probe.kernels).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from hearflow.probe import kernels

# The torch objects behind the names of hearflow.probe.protocol.GRID_CHOICES (optimisers:
# StackedOptimizer).
HIDDEN_NORMS = {
    "batchnorm": torch.nn.BatchNorm1d,
    "layernorm": torch.nn.LayerNorm,
    "identity": torch.nn.Identity,
}
INITIALIZATIONS = {
    "xavier_uniform": torch.nn.init.xavier_uniform_,
    "xavier_normal": torch.nn.init.xavier_normal_,
}
EVAL_CHUNK = 65536  # rows per forward pass at validation/test; eval mode is row-wise


class FullyConnectedPrediction(torch.nn.Module):
    """heareval's predictor; `forward` returns logits. Initialises the members of StackedMLP."""

    def __init__(self, nfeatures: int, nlabels: int, conf: dict):
        super().__init__()
        init = INITIALIZATIONS[conf["initialization"]]
        norm = HIDDEN_NORMS[conf["hidden_norm"]]
        modules: list[torch.nn.Module] = []
        curdim, last_activation = nfeatures, "linear"
        for _ in range(conf["hidden_layers"]):
            linear = torch.nn.Linear(curdim, conf["hidden_dim"])
            init(linear.weight, gain=torch.nn.init.calculate_gain(last_activation))
            modules.append(linear)
            if not conf["norm_after_activation"]:
                modules.append(norm(conf["hidden_dim"]))
            modules.append(torch.nn.Dropout(conf["dropout"]))
            modules.append(torch.nn.ReLU())
            if conf["norm_after_activation"]:
                modules.append(norm(conf["hidden_dim"]))
            curdim, last_activation = conf["hidden_dim"], "relu"
        self.hidden = torch.nn.Sequential(*modules) if modules else torch.nn.Identity()
        self.projection = torch.nn.Linear(curdim, nlabels)
        init(self.projection.weight, gain=torch.nn.init.calculate_gain(last_activation))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.projection(self.hidden(x))


# Grid keys that fix a network's shape and its batches: points that share them train
# together in one StackedMLP. The others (lr, initialization, patience, max_epochs,
# check_val_every_n_epoch) may differ between the members of one stack.
STACK_KEYS = (
    "hidden_layers",
    "hidden_dim",
    "hidden_norm",
    "norm_after_activation",
    "dropout",
    "batch_size",
    "optim",
    "shuffle_train",
    "embedding_norm",
)


def member_seeds(seed: int, count: int, *, stage: int = 0) -> list[tuple[int, int]]:
    """(initialisation seed, dropout seed) of members 0 .. count-1 of a run seeded `seed`:
    stage 0 the grid points, stage k the re-training on split k."""
    states = [np.random.SeedSequence([seed, stage, i]).generate_state(2) for i in range(count)]
    return [(int(init), int(drop)) for init, drop in states]


class StackedMLP:
    """G FullyConnectedPredictions of one shape as stacked tensors, trained as one model.

    Member g is built (and so initialised) by FullyConnectedPrediction from its own conf,
    then its weights are stacked: linear weights [G, in, out], biases and norm parameters
    [G, out]. `forward(x [N, D])` -> logits [G, N, C]. Members share only the input batch:
    BatchNorm statistics, LayerNorm, dropout masks and the loss are per member, so the
    gradient of the summed member losses is each member's own gradient.

    Random draws: `build(..., seeds=None)` makes one member that draws the global torch
    RNG where heareval does (torch's dropout). With `seeds` [(init, dropout)] per member,
    each member is initialised under its init seed and draws its dropout masks
    (bernoulli_keep) from a generator of its own: a member then trains the same whichever
    members share its stack, up to float rounding (which Adam amplifies on a bias right
    before BatchNorm: its gradient is zero up to rounding, and so are heareval's).
    """

    def __init__(
        self,
        params: dict[str, torch.Tensor],
        buffers: dict[str, torch.Tensor],
        conf: dict,
        *,
        generators: list[torch.Generator] | None = None,
    ):
        self.params, self.buffers, self.conf = params, buffers, conf
        self.generators = generators  # None: the global RNG (one member); else per member
        self.training = True

    @classmethod
    def build(
        cls,
        nfeatures: int,
        nlabels: int,
        confs: list[dict],
        device,
        seeds: list[tuple[int, int]] | None = None,
    ) -> "StackedMLP":
        if seeds is None and len(confs) != 1:
            raise ValueError("a stack of several members needs member seeds (see member_seeds)")
        if seeds is not None and len(seeds) != len(confs):
            raise ValueError(f"{len(seeds)} member seeds for {len(confs)} members")
        params: dict[str, list] = {}
        buffers: dict[str, list] = {}
        for j, conf in enumerate(confs):
            if seeds is None:
                member = FullyConnectedPrediction(nfeatures, nlabels, conf)
                torch.rand(64, nfeatures)  # heareval's torchinfo.summary input (see train.draw_seed)
            else:
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(seeds[j][0])
                    member = FullyConnectedPrediction(nfeatures, nlabels, conf)
            hidden = list(member.hidden.modules())
            linears = [m for m in hidden if isinstance(m, torch.nn.Linear)] + [member.projection]
            norms = [m for m in hidden if isinstance(m, torch.nn.BatchNorm1d | torch.nn.LayerNorm)]
            for i, linear in enumerate(linears):
                params.setdefault(f"w{i}", []).append(linear.weight.detach().T)
                params.setdefault(f"b{i}", []).append(linear.bias.detach())
            for i, norm in enumerate(norms):
                params.setdefault(f"g{i}", []).append(norm.weight.detach())
                params.setdefault(f"beta{i}", []).append(norm.bias.detach())
                if isinstance(norm, torch.nn.BatchNorm1d):
                    buffers.setdefault(f"mean{i}", []).append(norm.running_mean)
                    buffers.setdefault(f"var{i}", []).append(norm.running_var)
        stack = lambda ts: torch.stack(ts).contiguous().to(device)  # noqa: E731
        return cls(
            {k: stack(v).requires_grad_() for k, v in params.items()},
            {k: stack(v) for k, v in buffers.items()},
            confs[0],
            generators=None
            if seeds is None
            else [torch.Generator(device=device).manual_seed(drop) for _, drop in seeds],
        )

    @property
    def size(self) -> int:
        return len(self.params["w0"])

    def select(self, members: list[int]) -> "StackedMLP":
        """A copy holding only `members` (positions in this stack)."""
        idx = torch.as_tensor(members, device=self.params["w0"].device)
        return StackedMLP(
            {k: v.detach()[idx].clone().requires_grad_() for k, v in self.params.items()},
            {k: v[idx].clone() for k, v in self.buffers.items()},
            self.conf,
            generators=None if self.generators is None else [self.generators[m] for m in members],
        )

    def _norm(self, h: torch.Tensor, i: int) -> torch.Tensor:
        g, beta = self.params[f"g{i}"], self.params[f"beta{i}"]
        if self.conf["hidden_norm"] == "layernorm":
            return torch.nn.functional.layer_norm(h, h.shape[-1:]) * g[:, None, :] + beta[:, None, :]
        size, n, dim = h.shape
        flat = h.transpose(0, 1).reshape(n, size * dim)  # [N, G*H]: one BatchNorm feature per member unit
        out = torch.nn.functional.batch_norm(
            flat,
            self.buffers[f"mean{i}"].view(-1),  # views: running statistics update in place
            self.buffers[f"var{i}"].view(-1),
            g.view(-1),  # the affine step in the kernel, as BatchNorm1d
            beta.view(-1),
            training=self.training,
        )
        return out.reshape(n, size, dim).transpose(0, 1)

    def _dropout_relu(self, h: torch.Tensor) -> torch.Tensor:
        p = self.conf["dropout"]
        if self.generators is None or not self.training or p == 0:
            return torch.relu(torch.nn.functional.dropout(h, p, self.training))
        keep = torch.stack([kernels.bernoulli_keep(tuple(h.shape[1:]), p, g) for g in self.generators])
        return kernels.DropoutReLU.apply(h, keep, 1.0 / (1.0 - p))

    def _linear(self, h: torch.Tensor, i: int) -> torch.Tensor:
        """h [G, N, I] (or [N, I]) times layer i's weights plus its bias: [G, N, O]."""
        w, b = self.params[f"w{i}"], self.params[f"b{i}"]
        if self.generators is not None and self.size == 1 and h.device.type == "cpu" and kernels.onednn_linear():
            # A seeded member on the CPU (a grid point of its own): oneDNN's products. A
            # one-point grid keeps torch.matmul, the kernels of heareval's nn.Linear.
            return kernels.OneDNNLinear.apply(h.reshape(-1, h.shape[-1]), w[0], b[0])[None]
        return torch.matmul(h, w) + b[:, None, :]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        conf, norm = self.conf, self.conf["hidden_norm"] != "identity"
        h = x
        for i in range(conf["hidden_layers"]):
            h = self._linear(h, i)  # [G, N, H]
            if norm and not conf["norm_after_activation"]:
                h = self._norm(h, i)
            h = self._dropout_relu(h)
            if norm and conf["norm_after_activation"]:
                h = self._norm(h, i)
        last = conf["hidden_layers"]
        if h.dim() == 2 and self.size > 1:  # no hidden layer: every member sees the input
            h = h.expand(self.size, *h.shape)
        return self._linear(h, last)

    @torch.no_grad()
    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Evaluation-mode logits [G, N, C], in chunks of rows (evaluation is row-wise)."""
        self.training = False
        out = torch.cat([self.forward(x[i : i + EVAL_CHUNK]) for i in range(0, len(x), EVAL_CHUNK)], 1)
        self.training = True
        return out


class StackedOptimizer:
    """torch.optim.Adam / SGD (defaults: betas 0.9/0.999, eps 1e-8, no weight decay, no
    momentum) with one learning rate per member: the update of torch's single-tensor
    implementations, with lr a [G] tensor broadcast over each member's slice."""

    def __init__(self, model: StackedMLP, lrs: list[float], optim: str):
        self.model, self.optim, self.step_count = model, optim, 0
        self.lr = torch.tensor(lrs, dtype=torch.float32, device=model.params["w0"].device)
        self.state = (
            {k: (torch.zeros_like(p), torch.zeros_like(p)) for k, p in model.params.items()} if optim == "adam" else {}
        )

    def select(self, model: StackedMLP, members: list[int]) -> None:
        idx = torch.as_tensor(members, device=self.lr.device)
        self.model, self.lr = model, self.lr[idx]
        self.state = {k: (m[idx].clone(), v[idx].clone()) for k, (m, v) in self.state.items()}

    @torch.no_grad()
    def step(self) -> None:
        self.step_count += 1
        beta1, beta2, eps = 0.9, 0.999, 1e-8
        for k, p in self.model.params.items():
            lr = self.lr.view(-1, *[1] * (p.dim() - 1))
            if self.optim == "sgd":
                p.sub_(lr * p.grad)
            else:
                exp_avg, exp_avg_sq = self.state[k]
                exp_avg.lerp_(p.grad, 1 - beta1)
                exp_avg_sq.mul_(beta2).addcmul_(p.grad, p.grad, value=1 - beta2)
                step_size = lr / (1 - beta1**self.step_count)
                denom = (exp_avg_sq.sqrt() / math.sqrt(1 - beta2**self.step_count)).add_(eps)
                p.sub_(step_size * exp_avg / denom)
            p.grad = None
