#!/usr/bin/python3
"""The real RobustFill training step of lpsynth, in PyTorch (issue 17, item 5).

Harness only (never a dependency of lpsynth). The model is the one that
core/model/robustfill.c builds from the blocks of core/engine/blocks.c, with the
sizes and the optimiser of a model config file (models/robustfill-string-1h.cfg):

  Ein  = LN(EncBlock^n(Embed_in(I) + PE))           per example input    [B*E,Ti,D]
  Eout = LN(XBlock^n(Embed_out(O) + PE, Ein))       per example output   [B*E,To,D]
         (self-attention not causal, masked to the output's characters;
          cross-attention to the same example's Ein, masked to its input's)
  h    = LN(DecBlock^n(Embed_prog(BOS y_1..y_{T-1}) + PE, Eout))
         for every example slot (causal self-attention, cross-attention to Eout)
  logits = MaxPool_examples(h) W + b                                       [B,T,V]
  loss = mean over non-pad targets of -log softmax(logits)[y_t]

Pre-LN blocks (x + Attn(LN(x)), x + FFN(LN(x))), attention without biases, FFN
with biases and GELU (tanh), LayerNorm eps 1e-6, sinusoidal positions (sin on
even, cos on odd features) added to every position, pad embeddings zero, a
key with a pad id masked, a query row without a visible key giving zeros (as
lpsynth's softmax), a missing example slot left out of the max-pool. Dropout
is applied where lpsynth applies it when the config asks for it (the 1h config
has none). Initialisation follows lpsynth's layout (embeddings N(0, 1), weights
Xavier-uniform, biases N(0, 1e-6), LN ones/zeros), from torch's RNG.

Vocabularies as the string domain (plugins/string/plugin.c): spec ids 0 PAD,
1..83 the characters "a-z A-Z 0-9 &,.?!@()[]%{}/:;$#\"' " in that order, 84 UNK
(one per code point outside the alphabet); program: the task line's "tokens"
(which end with EOS = 2), 312 ids, PAD 0, BOS 1.

Batches as lpsynth's file producer and lp_batch_fill (core/model/train.c,
core/model/batch.c): the file's tasks in order, cycling, batch_size at a time
(a batch may wrap around the end); B tasks x E example slots (E the most
examples of a task in the batch, absent slots all pad and masked); inputs,
outputs and programs each padded with 0 to the longest in the batch (at least
1 for specs), so both frameworks run on the same padded shapes.

Optimiser as lpsynth train: global-norm clipping (clip_norm), then Adam with
decoupled weight decay on every tensor (torch.optim.AdamW), lr(t) = lr *
min(1, t/warmup) * sqrt(warmup / max(t, warmup)) for Adam step t = 1, 2, ...

Timing as lpsynth train's "tasks_per_s": steps * batch_size over the wall time
of the whole loop (batch making included, model construction not), plus the
time of each step (batch, forward, backward, clip, Adam, loss read back) and
the CPU time of the loop, all threads ("tasks_per_cpu_s": on a machine shared
with other work, wall time measures the share the scheduler gave, CPU time
less so).

usage: OPENBLAS_NUM_THREADS=1 /usr/bin/python3 bench/torch_rf_step.py \
         --config models/robustfill-string-1h.cfg --data TASKS.jsonl --steps N \
         [--threads T] [--seed S] [--expect-params N] [--from-ckpt CKPT] [--json]
"""
import argparse
import json
import math
import os
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

# ---- string domain vocabularies (plugins/string/plugin.c, strdsl.c) ----------

SD_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789&,.?!@()[]%{}/:;$#\"' "
assert len(SD_CHARS) == 83
SPEC_VOCAB, SPEC_PAD, SPEC_UNK = 85, 0, 84
PROG_VOCAB, PROG_PAD, PROG_BOS, PROG_EOS = 312, 0, 1, 2
_CHAR_ID = {c: i + 1 for i, c in enumerate(SD_CHARS)}


def spec_encode(text):
    """One id per code point: 1 + its index in the alphabet, UNK outside it."""
    return [_CHAR_ID.get(c, SPEC_UNK) for c in text]


# ---- model config (models/CONFIG.md; robustfill's defaults) ------------------

DEFAULTS = dict(model="robustfill", d_model=128, d_ff=512, n_heads=4, enc_layers=3,
                dec_layers=3, dropout=0.1, attn_dropout=0.1, max_spec_len=128,
                max_program_len=128, batch_size=32, lr=1e-3, warmup=16000, beta1=0.9,
                beta2=0.98, adam_eps=1e-9, weight_decay=0.1, clip_norm=1.0,
                checkpoint_every=1000)


def read_config(path):
    cfg = dict(DEFAULTS)
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            if "=" not in line:
                sys.exit(f"{path}:{n}: expected key = value")
            k, v = (s.strip() for s in line.split("=", 1))
            if k not in cfg:
                sys.exit(f"{path}:{n}: key {k!r} is not one of the RobustFill config's")
            cfg[k] = v if k == "model" else type(DEFAULTS[k])(float(v))
    if cfg["model"] != "robustfill":
        sys.exit(f"{path}: model {cfg['model']!r}: this twin is RobustFill's only")
    return cfg


# ---- tasks and batches --------------------------------------------------------

def read_tasks(path, cfg):
    tasks = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            r = json.loads(line)
            prog = r["tokens"]
            if not prog or prog[-1] != PROG_EOS:
                sys.exit(f"{path}:{n}: \"tokens\" must end with EOS ({PROG_EOS})")
            if len(prog) > cfg["max_program_len"]:
                sys.exit(f"{path}:{n}: program longer than max_program_len")
            ins = [spec_encode(s) for s in r["inputs"]]
            outs = [spec_encode(s) for s in r["outputs"]]
            if len(ins) != len(outs) or not ins:
                sys.exit(f"{path}:{n}: want as many inputs as outputs, at least one")
            if max(len(s) for s in ins + outs) > cfg["max_spec_len"]:
                sys.exit(f"{path}:{n}: an example is longer than max_spec_len")
            tasks.append((ins, outs, prog))
    if not tasks:
        sys.exit(f"{path}: no tasks")
    return tasks


def pad_rows(rows, T):
    return torch.tensor([r + [0] * (T - len(r)) for r in rows], dtype=torch.long)


def make_batch(tasks, first, bs):
    """Tasks first .. first+bs-1 (cycling), padded as lp_batch_fill pads them."""
    sel = [tasks[(first + j) % len(tasks)] for j in range(bs)]
    E = max(len(t[0]) for t in sel)
    Ti = max([1] + [len(s) for t in sel for s in t[0]])
    To = max([1] + [len(s) for t in sel for s in t[1]])
    Tp = max(len(t[2]) for t in sel)
    ins, outs, emask = [], [], []
    for t in sel:
        for e in range(E):
            present = e < len(t[0])
            emask.append(present)
            ins.append(t[0][e] if present else [])
            outs.append(t[1][e] if present else [])
    prog = pad_rows([t[2] for t in sel], Tp)
    return dict(spec_in=pad_rows(ins, Ti), spec_out=pad_rows(outs, To), prog=prog,
                emask=torch.tensor(emask).view(bs, E), B=bs, E=E, Ti=Ti, To=To, Tp=Tp,
                full=all(emask))


# ---- model ----------------------------------------------------------------------

NEG = -1e9  # exp(NEG - max) is 0 in float: a masked key gets exactly 0, as in lpsynth


def sinusoid(n, d):
    i = torch.arange(d)
    w = torch.exp(-(i - i % 2).double() * (math.log(10000.0) / d))
    a = torch.arange(n, dtype=torch.float64)[:, None] * w[None, :]
    return torch.where(i % 2 == 1, torch.cos(a), torch.sin(a)).float()


def xavier_(w, fan_in, fan_out):
    a = math.sqrt(6.0 / (fan_in + fan_out))
    with torch.no_grad():
        w.uniform_(-a, a)


class Attention(nn.Module):
    """Multi-head attention without biases. Self-attention projects q, k, v in one
    product (the weights of three D x D maps side by side: same parameters)."""

    def __init__(self, D, H, p_attn, self_attn):
        super().__init__()
        self.D, self.H, self.p = D, H, p_attn
        self.self_attn = self_attn
        if self_attn:
            self.qkv = nn.Linear(D, 3 * D, bias=False)
            for j in range(3):
                xavier_(self.qkv.weight[j * D:(j + 1) * D], D, D)
        else:
            self.q = nn.Linear(D, D, bias=False)
            self.kv = nn.Linear(D, 2 * D, bias=False)
            xavier_(self.q.weight, D, D)
            for j in range(2):
                xavier_(self.kv.weight[j * D:(j + 1) * D], D, D)
        self.o = nn.Linear(D, D, bias=False)
        xavier_(self.o.weight, D, D)

    def forward(self, x, mem, bias, zero_rows):
        """bias: additive [N,1,Tq|1,Tk] (key mask, causal mask); zero_rows: None or a
        [N,1,1,Tk] float key mask that zeroes the rows with no visible key."""
        N, Tq, D = x.shape
        H, dh = self.H, self.D // self.H
        if self.self_attn:
            q, k, v = self.qkv(x).view(N, Tq, 3, H, dh).permute(2, 0, 3, 1, 4)
        else:
            Tk = mem.shape[1]
            q = self.q(x).view(N, Tq, H, dh).transpose(1, 2)
            k, v = self.kv(mem).view(N, Tk, 2, H, dh).permute(2, 0, 3, 1, 4)
        s = torch.matmul(q, k.transpose(-1, -2)) * (1.0 / math.sqrt(dh))
        if bias is not None:
            s = s + bias
        p = s.softmax(-1)
        if zero_rows is not None:
            p = p * zero_rows
        if self.p > 0 and self.training:
            p = F.dropout(p, self.p)
        return self.o(torch.matmul(p, v).transpose(1, 2).reshape(N, Tq, D))


class FFN(nn.Module):
    def __init__(self, D, FF, p):
        super().__init__()
        self.w1, self.w2, self.p = nn.Linear(D, FF), nn.Linear(FF, D), p
        xavier_(self.w1.weight, D, FF)
        xavier_(self.w2.weight, FF, D)
        for b in (self.w1.bias, self.w2.bias):
            nn.init.normal_(b, std=1e-6)

    def forward(self, x):
        h = F.gelu(self.w1(x), approximate="tanh")
        if self.p > 0 and self.training:
            h = F.dropout(h, self.p)
        return self.w2(h)


def ln(D):
    return nn.LayerNorm(D, eps=1e-6)


class EncBlock(nn.Module):
    def __init__(self, c):
        super().__init__()
        D = c["d_model"]
        self.p = c["dropout"]
        self.ln1, self.ln2 = ln(D), ln(D)
        self.attn = Attention(D, c["n_heads"], c["attn_dropout"], True)
        self.ffn = FFN(D, c["d_ff"], c["dropout"])

    def drop(self, x):
        return F.dropout(x, self.p) if self.p > 0 and self.training else x

    def forward(self, x, kbias, kzero):
        x = x + self.drop(self.attn(self.ln1(x), None, kbias, kzero))
        return x + self.drop(self.ffn(self.ln2(x)))


class DecBlock(nn.Module):
    """Self-attention (causal, or not for the output encoder), cross-attention,
    FFN; pre-LN."""

    def __init__(self, c):
        super().__init__()
        D = c["d_model"]
        self.p = c["dropout"]
        self.ln1, self.ln2, self.ln3 = ln(D), ln(D), ln(D)
        self.self_attn = Attention(D, c["n_heads"], c["attn_dropout"], True)
        self.cross_attn = Attention(D, c["n_heads"], c["attn_dropout"], False)
        self.ffn = FFN(D, c["d_ff"], c["dropout"])

    def drop(self, x):
        return F.dropout(x, self.p) if self.p > 0 and self.training else x

    def forward(self, x, sbias, szero, mem, mbias, mzero):
        x = x + self.drop(self.self_attn(self.ln1(x), None, sbias, szero))
        x = x + self.drop(self.cross_attn(self.ln2(x), mem, mbias, mzero))
        return x + self.drop(self.ffn(self.ln3(x)))


def embedding(V, D, pad):
    e = nn.Embedding(V, D, padding_idx=pad)
    with torch.no_grad():
        e.weight.normal_(0.0, 1.0)
        e.weight[pad].zero_()  # lpsynth reads a pad id as a zero vector
    return e


class RobustFill(nn.Module):
    def __init__(self, c):
        super().__init__()
        D, V = c["d_model"], PROG_VOCAB
        self.c, self.D = c, D
        self.p = c["dropout"]
        n = max(c["max_spec_len"], c["max_program_len"])
        self.register_buffer("pe", sinusoid(n, D), persistent=False)
        self.emb_in = embedding(SPEC_VOCAB, D, SPEC_PAD)
        self.enc_in = nn.ModuleList(EncBlock(c) for _ in range(c["enc_layers"]))
        self.ln_in = ln(D)
        self.emb_out = embedding(SPEC_VOCAB, D, SPEC_PAD)
        self.enc_out = nn.ModuleList(DecBlock(c) for _ in range(c["enc_layers"]))
        self.ln_out = ln(D)
        self.emb_prog = embedding(PROG_VOCAB, D, PROG_PAD)
        self.dec = nn.ModuleList(DecBlock(c) for _ in range(c["dec_layers"]))
        self.ln_dec = ln(D)
        self.out = nn.Linear(D, V)
        xavier_(self.out.weight, D, V)
        nn.init.normal_(self.out.bias, std=1e-6)

    def embed(self, table, ids):
        x = table(ids) + self.pe[: ids.shape[1]]
        return F.dropout(x, self.p) if self.p > 0 and self.training else x

    @staticmethod
    def key_mask(ids):
        """Additive bias [N,1,1,T] for pad keys, and the zeroing mask when some row
        has no visible key (else None: every softmax row has a key)."""
        keep = ids != SPEC_PAD
        bias = (~keep).float().mul_(NEG)[:, None, None, :]
        zero = keep.float()[:, None, None, :] if not bool(keep.any(1).all()) else None
        return bias, zero

    def forward(self, b):
        B, E, T = b["B"], b["E"], b["Tp"]
        si, so, prog = b["spec_in"], b["spec_out"], b["prog"]
        ibias, izero = self.key_mask(si)
        obias, ozero = self.key_mask(so)
        x = self.embed(self.emb_in, si)
        for blk in self.enc_in:
            x = blk(x, ibias, izero)
        e_in = self.ln_in(x)
        x = self.embed(self.emb_out, so)
        for blk in self.enc_out:
            x = blk(x, obias, ozero, e_in, ibias, izero)
        e_out = self.ln_out(x)
        # decoder input BOS y_1 .. y_{T-1}, the same for every example slot
        dec_in = torch.cat([torch.full((B, 1), PROG_BOS, dtype=torch.long), prog[:, :-1]], 1)
        x = self.embed(self.emb_prog, dec_in).repeat_interleave(E, 0)
        causal = torch.full((T, T), NEG).triu_(1)
        for blk in self.dec:
            x = blk(x, causal, None, e_out, obias, ozero)
        h = self.ln_dec(x).view(B, E, T, self.D)
        if not b["full"]:
            h = h.masked_fill(~b["emask"][:, :, None, None], float("-inf"))
        pooled = h.max(1).values
        logits = self.out(pooled)
        return F.cross_entropy(logits.reshape(B * T, -1), prog.reshape(-1),
                               ignore_index=PROG_PAD)


# ---- lpsynth checkpoints (include/lpsynth/checkpoint.h, format version 1) ------

def read_lpsynth_ckpt(path):
    """The sections this twin needs: config text, layout, position, parameters,
    Adam state (numpy-free: torch.frombuffer over the little-endian floats)."""
    import struct
    data = open(path, "rb").read()
    if data[:8] != b"LPSYNCKP" or struct.unpack_from("<I", data, 8)[0] != 1:
        sys.exit(f"{path}: not an lpsynth checkpoint of format version 1")
    out, at, end = {}, 24, len(data) - 4
    while at < end:
        tag = data[at:at + 4].decode("ascii")
        (n,) = struct.unpack_from("<Q", data, at + 8)
        out[tag] = data[at + 16:at + 16 + n]
        at += 16 + n
    r = {"config": out["CONF"].decode("utf-8")}
    lay, (nt,) = out["LAYT"], struct.unpack_from("<Q", out["LAYT"], 0)
    o, r["layout"] = 8, []
    for _ in range(nt):
        (n,) = struct.unpack_from("<I", lay, o)
        name = lay[o + 4:o + 4 + n].decode("ascii")
        o += 4 + n
        (nd,) = struct.unpack_from("<I", lay, o)
        shape = struct.unpack_from(f"<{nd}I", lay, o + 4)
        o += 4 + 4 * nd
        r["layout"].append((name, tuple(shape)))
    step, _, _, _, _, _, next_task = struct.unpack_from("<qQQIIQQ", out["TPOS"], 0)
    r["step"], r["next_task"] = step, next_task

    def f32s(buf, off, n):
        return torch.frombuffer(bytearray(buf[off:off + 4 * n]), dtype=torch.float32)

    (n,) = struct.unpack_from("<Q", out["PARM"], 0)
    r["params"] = f32s(out["PARM"], 8, n)
    t, na = struct.unpack_from("<qQ", out["ADAM"], 0)
    r["adam_t"] = t
    r["adam_m"] = f32s(out["ADAM"], 16, na) if na else None
    r["adam_v"] = f32s(out["ADAM"], 16 + 4 * na, na) if na else None
    return r


def lpsynth_targets(model, get):
    """(lpsynth tensor name, torch view, transposed) for every lpsynth tensor;
    get(p) maps a torch parameter to the tensor to fill (itself or an Adam
    moment of the same shape). lpsynth stores a linear map as [in, out]."""
    D = model.D

    def mha(pre, a):
        if a.self_attn:
            w = get(a.qkv.weight)
            yield from ((f"{pre}.w{x}", w[j * D:(j + 1) * D], True) for j, x in enumerate("qkv"))
        else:
            yield f"{pre}.wq", get(a.q.weight), True
            w = get(a.kv.weight)
            yield from ((f"{pre}.w{x}", w[j * D:(j + 1) * D], True) for j, x in enumerate("kv"))
        yield f"{pre}.wo", get(a.o.weight), True

    def lnorm(pre, m):
        yield f"{pre}.scale", get(m.weight), False
        yield f"{pre}.bias", get(m.bias), False

    def ffn(pre, f):
        yield f"{pre}.ffn.w1", get(f.w1.weight), True
        yield f"{pre}.ffn.b1", get(f.w1.bias), False
        yield f"{pre}.ffn.w2", get(f.w2.weight), True
        yield f"{pre}.ffn.b2", get(f.w2.bias), False

    yield "spec.in.embed", get(model.emb_in.weight), False
    for l, b in enumerate(model.enc_in):
        p = f"spec.in.block{l}"
        yield from lnorm(p + ".ln1", b.ln1)
        yield from mha(p + ".attn", b.attn)
        yield from lnorm(p + ".ln2", b.ln2)
        yield from ffn(p, b.ffn)
    yield from lnorm("spec.in.ln", model.ln_in)
    yield "spec.out.embed", get(model.emb_out.weight), False
    for pre, blocks in (("spec.out.block", model.enc_out), ("dec.block", model.dec)):
        if pre == "dec.block":
            yield from lnorm("spec.out.ln", model.ln_out)
            yield "dec.embed", get(model.emb_prog.weight), False
        for l, b in enumerate(blocks):
            p = f"{pre}{l}"
            yield from lnorm(p + ".ln1", b.ln1)
            yield from mha(p + ".self_attn", b.self_attn)
            yield from lnorm(p + ".ln2", b.ln2)
            yield from mha(p + ".cross_attn", b.cross_attn)
            yield from lnorm(p + ".ln3", b.ln3)
            yield from ffn(p, b.ffn)
    yield from lnorm("dec.ln", model.ln_dec)
    yield "out.w", get(model.out.weight), True
    yield "out.b", get(model.out.bias), False


def load_lpsynth_state(model, opt, ck):
    """Parameters and Adam moments of an lpsynth checkpoint into model / opt."""
    offs, o = {}, 0
    for name, shape in ck["layout"]:
        offs[name] = (o, shape)
        o += math.prod(shape)
    if o != ck["params"].numel():
        sys.exit("checkpoint: layout and parameters disagree")
    sources = [("params", lambda p: p.data)]
    if ck["adam_m"] is not None:
        for p in model.parameters():
            opt.state[p] = {"step": torch.tensor(float(ck["adam_t"])),
                            "exp_avg": torch.zeros_like(p), "exp_avg_sq": torch.zeros_like(p)}
        sources += [("adam_m", lambda p: opt.state[p]["exp_avg"]),
                    ("adam_v", lambda p: opt.state[p]["exp_avg_sq"])]
    seen = set()
    with torch.no_grad():
        for key, get in sources:
            flat = ck[key]
            for name, view, tr in lpsynth_targets(model, get):
                if name not in offs:
                    sys.exit(f"checkpoint: no tensor {name}")
                off, shape = offs[name]
                src = flat[off:off + math.prod(shape)].view(shape)
                src = src.t() if tr else src
                if tuple(src.shape) != tuple(view.shape):
                    sys.exit(f"checkpoint: {name} has shape {shape}, the twin {tuple(view.shape)}")
                view.copy_(src)
                seen.add(name)
        for e in (model.emb_in, model.emb_out, model.emb_prog):
            e.weight[e.padding_idx].zero_()  # read as zeros by both; never updated
    if seen != set(offs):
        sys.exit(f"checkpoint: tensors the twin does not have: {sorted(set(offs) - seen)}")


def lr_at(c, t):
    w = c["warmup"]
    if w <= 0:
        return c["lr"] / math.sqrt(max(t, 1))
    return c["lr"] * min(1.0, t / w) * math.sqrt(w / max(t, w))


def num_params(m):
    return sum(p.numel() for p in m.parameters())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--expect-params", type=int, default=0,
                    help="fail unless the model has this many parameters (lpsynth's)")
    ap.add_argument("--from-ckpt", metavar="CKPT",
                    help="start from an lpsynth checkpoint of this config (parameters, Adam "
                    "state, step and task position): the steps that follow then compute the "
                    "same losses as lpsynth's, up to float rounding")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    c = read_config(a.config)
    tasks = read_tasks(a.data, c)
    model = RobustFill(c)
    model.train()
    npar = num_params(model)
    if a.expect_params and npar != a.expect_params:
        sys.exit(f"parameter count {npar} differs from the expected {a.expect_params}")
    opt = torch.optim.AdamW(model.parameters(), lr=lr_at(c, 1), betas=(c["beta1"], c["beta2"]),
                            eps=c["adam_eps"], weight_decay=c["weight_decay"])
    step0, task0 = 0, 0
    if a.from_ckpt:
        ck = read_lpsynth_ckpt(a.from_ckpt)
        load_lpsynth_state(model, opt, ck)
        step0, task0 = ck["step"], ck["next_task"]
    bs = c["batch_size"]
    losses, ms, shapes = [], [], []
    t0, c0 = time.perf_counter(), time.process_time()
    for step in range(step0 + 1, step0 + a.steps + 1):
        ts = time.perf_counter()
        b = make_batch(tasks, task0 + (step - step0 - 1) * bs, bs)
        opt.zero_grad(set_to_none=True)
        loss = model(b)
        loss.backward()
        if c["clip_norm"] > 0:
            nn.utils.clip_grad_norm_(model.parameters(), c["clip_norm"])
        for g in opt.param_groups:
            g["lr"] = lr_at(c, step)
        opt.step()
        losses.append(loss.item())
        ms.append(1e3 * (time.perf_counter() - ts))
        shapes.append([b["E"], b["Ti"], b["To"], b["Tp"]])
        if not a.json:
            print(f"step {step}: loss {losses[-1]:.5f}  {ms[-1]:.0f} ms  "
                  f"E {b['E']} Ti {b['Ti']} To {b['To']} Tp {b['Tp']}", file=sys.stderr)
    el, cpu = time.perf_counter() - t0, time.process_time() - c0
    res = {
        "framework": "pytorch", "torch": torch.__version__, "threads": a.threads,
        "openblas_threads": os.environ.get("OPENBLAS_NUM_THREADS", ""),
        "config": a.config, "data": a.data, "from_ckpt": a.from_ckpt, "first_step": step0 + 1,
        "steps": a.steps, "batch_size": bs,
        "num_params": npar, "seconds": el, "tasks_per_s": a.steps * bs / el,
        "cpu_seconds": cpu, "tasks_per_cpu_s": a.steps * bs / cpu,
        "median_ms": statistics.median(ms), "ms": [round(v, 1) for v in ms],
        "loss": [round(v, 6) for v in losses], "shapes_E_Ti_To_Tp": shapes,
    }
    if a.json:
        print(json.dumps(res))
    else:
        print(f"{npar} parameters; {res['tasks_per_s']:.2f} tasks/s, median "
              f"{res['median_ms']:.0f} ms/step over {a.steps} steps")


if __name__ == "__main__":
    main()
