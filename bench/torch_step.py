#!/usr/bin/python3
"""One training step of the model bench/bench_step.c builds - PyTorch twin.

Harness only (never a dependency of lpsynth). Pre-LN Transformer encoder-decoder:
d 128, 4 heads, feed-forward 512, 3 encoder + 3 decoder layers, batch 32, source 64,
target 32, vocabulary 100; attention without biases, FFN with biases, GELU (tanh),
LayerNorm eps 1e-6, dropout 0.1 (residual branches, FFN hidden, attention
probabilities), sinusoidal positions, cross-entropy, global-norm clipping 1.0,
Adam (0.9, 0.98, eps 1e-9) with decoupled weight decay 0.1 (AdamW).

usage: OPENBLAS_NUM_THREADS=2 /usr/bin/python3 bench/torch_step.py [--steps N] [--warmup W] [--threads T] [--json]
"""
import argparse, json, math, statistics, time

import torch
import torch.nn as nn
import torch.nn.functional as F

B, S, T, V, D, H, FF, NENC, NDEC, P = 32, 64, 32, 100, 128, 4, 512, 3, 3, 0.1


def sinusoid(n, d):
    pe = torch.zeros(n, d)
    pos = torch.arange(n, dtype=torch.float64)[:, None]
    w = torch.exp(-torch.arange(0, d, 2, dtype=torch.float64) * math.log(10000.0) / d)
    pe[:, 0::2] = torch.sin(pos * w).float()
    pe[:, 1::2] = torch.cos(pos * w).float()
    return pe


class MHA(nn.Module):
    def __init__(self):
        super().__init__()
        self.q, self.k, self.v, self.o = (nn.Linear(D, D, bias=False) for _ in range(4))

    def forward(self, x, m, causal):
        b, tq, _ = x.shape
        tk = m.shape[1]
        q = self.q(x).view(b, tq, H, D // H).transpose(1, 2)
        k = self.k(m).view(b, tk, H, D // H).transpose(1, 2)
        v = self.v(m).view(b, tk, H, D // H).transpose(1, 2)
        a = q @ k.transpose(-1, -2) / math.sqrt(D // H)
        if causal:
            a = a.masked_fill(torch.ones(tq, tk, dtype=torch.bool).triu(1), float("-inf"))
        a = F.dropout(a.softmax(-1), P, self.training)
        return self.o((a @ v).transpose(1, 2).reshape(b, tq, D))


class FFN(nn.Module):
    def __init__(self):
        super().__init__()
        self.w1, self.w2 = nn.Linear(D, FF), nn.Linear(FF, D)

    def forward(self, x):
        h = F.dropout(F.gelu(self.w1(x), approximate="tanh"), P, self.training)
        return F.dropout(self.w2(h), P, self.training)


class EncBlock(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(D, eps=1e-6), nn.LayerNorm(D, eps=1e-6)
        self.attn, self.ffn = MHA(), FFN()

    def forward(self, x):
        z = self.ln1(x)
        x = x + F.dropout(self.attn(z, z, False), P, self.training)
        return x + self.ffn(self.ln2(x))


class DecBlock(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln1, self.ln2, self.ln3 = (nn.LayerNorm(D, eps=1e-6) for _ in range(3))
        self.self_attn, self.cross, self.ffn = MHA(), MHA(), FFN()

    def forward(self, x, mem):
        z = self.ln1(x)
        x = x + F.dropout(self.self_attn(z, z, True), P, self.training)
        x = x + F.dropout(self.cross(self.ln2(x), mem, False), P, self.training)
        return x + self.ffn(self.ln3(x))


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.src_emb, self.tgt_emb = nn.Embedding(V, D), nn.Embedding(V, D)
        self.enc = nn.ModuleList(EncBlock() for _ in range(NENC))
        self.dec = nn.ModuleList(DecBlock() for _ in range(NDEC))
        self.enc_ln, self.dec_ln = nn.LayerNorm(D, eps=1e-6), nn.LayerNorm(D, eps=1e-6)
        self.out = nn.Linear(D, V)
        self.register_buffer("pe", sinusoid(max(S, T), D))

    def forward(self, src, tin):
        x = self.src_emb(src) + self.pe[: src.shape[1]]
        for blk in self.enc:
            x = blk(x)
        mem = self.enc_ln(x)
        y = self.tgt_emb(tin) + self.pe[: tin.shape[1]]
        for blk in self.dec:
            y = blk(y, mem)
        return self.out(self.dec_ln(y))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    m = Model().train()
    opt = torch.optim.AdamW(m.parameters(), lr=1e-3, betas=(0.9, 0.98), eps=1e-9, weight_decay=0.1)
    src = torch.randint(1, V, (B, S))
    tout = torch.randint(1, V, (B, T))
    tin = torch.cat([torch.ones(B, 1, dtype=torch.long), tout[:, :-1]], 1)
    times = []
    for it in range(a.warmup + a.steps):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(m(src, tin).reshape(-1, V), tout.reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
        opt.step()
        el = (time.perf_counter() - t0) * 1e3
        if it >= a.warmup:
            times.append(el)
    n = sum(p.numel() for p in m.parameters())
    med, mean = statistics.median(times), statistics.mean(times)
    if a.json:
        print(json.dumps({"impl": "pytorch", "torch": torch.__version__, "threads": a.threads,
                          "steps": a.steps, "median_ms": round(med, 2), "mean_ms": round(mean, 2),
                          "params": n, "final_loss": round(loss.item(), 4)}))
    else:
        print(f"pytorch {torch.__version__}: {n} parameters, {a.steps} steps: median {med:.2f} ms/step, "
              f"mean {mean:.2f} ms (torch threads {a.threads}), loss {loss.item():.4f}")


if __name__ == "__main__":
    main()
