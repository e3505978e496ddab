#!/usr/bin/env python3
"""Checkpoint files for the CLI tests: sections(path) and crc32c(bytes) (for
a file changed on purpose: cli_ckpt.sh imports them), and the checks of
cli_ckpt_half.sh (`lpsynth ckpt strip --half`), run as `ckpt_check.py CHECK ...`:

  sections FP32.ckpt HALF.ckpt fp16|bf16
      HALF is FP32 (a stripped checkpoint) with its PARM section replaced by
      PR16 (format version 2): every other section byte for byte the same,
      every 16-bit value FP32's parameter rounded to nearest, ties to even
      (fp16: Python's struct "e"; bf16: rounded here in float64), and about
      half the size.
  poke IN.ckpt OUT.ckpt VALUE
      OUT is IN (version 1) with its first parameter set to VALUE and the
      checksum recomputed.
  holdout TASKS.jsonl PREFIX
      writes PREFIX1.json, PREFIX2.json, ...: each task without its last
      example (what `eval --holdout 1` searches on), for `synth --examples`.
  synth FULL.json HALF.json TOL [latent]
      the programs of `synth --rank model --json` with the full and the half
      model: every program both list scores within TOL of the full model's,
      and the same programs in the same order at every rank the full model
      decides (its score at least 2 x TOL above the next one's: rounding that
      moves no score by more than TOL cannot reorder it); TOL 0: the very same
      programs and scores. Prints the number of decided ranks at the top (0:
      even the first is a near-tie). With "latent" (an LP: a program's score
      is the best over a beam of 3 latent codes, so a near-tie among codes can
      let the rounded model keep another code and move every score by whole
      nats - seen with bf16 on a barely trained LP), a task whose top program
      moved by more than 10 x TOL prints "flip" instead (not compared: the
      scores are of other codes).
  eval FULL.jsonl HALF.jsonl DECIDED
      the --details rows of `eval` are the same but for "seconds"; "generalised"
      (which depends on the top program) only where DECIDED (a comma-separated
      list of 0/1 per task line) says the top program is decided.
"""
import json
import math
import struct
import sys

FP16, BF16 = 1, 2


def sections(path):
    """The file's bytes and {tag: payload} of its sections."""
    d = open(path, "rb").read()
    assert d[:8] == b"LPSYNCKP", path
    out, pos = {}, 24
    while pos < len(d) - 4:
        tag, _, n = struct.unpack_from("<4sIQ", d, pos)
        out[tag] = d[pos + 16:pos + 16 + n]
        pos += 16 + n
    return d, out


def crc32c(b):
    """CRC-32C of the bytes b, as the file's last four bytes hold it."""
    tab = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        tab.append(c)
    c = 0xFFFFFFFF
    for x in b:
        c = (c >> 8) ^ tab[(c ^ x) & 0xFF]
    return c ^ 0xFFFFFFFF


def bf16_bits(x):
    """x (a float32 value) rounded to bfloat16, ties to even, as bits."""
    if x == 0:
        r = x
    else:
        e = math.frexp(x)[1] - 1  # floor(log2 |x|)
        q = math.ldexp(1.0, max(e, -126) - 7)  # the bf16 spacing at x
        r = math.copysign(round(x / q) * q, x)  # round(): ties to even
    return struct.unpack("<I", struct.pack("<f", r))[0] >> 16


def fp16_bits(x):
    return struct.unpack("<H", struct.pack("<e", x))[0]


def check_sections(fp32_path, half_path, prec):
    want = {"fp16": FP16, "bf16": BF16}[prec]
    d32, a = sections(fp32_path)
    d16, b = sections(half_path)
    assert struct.unpack_from("<I", d32, 8)[0] == 1, "the fp32 file is version 1"
    assert struct.unpack_from("<I", d16, 8)[0] == 2, "the half file is version 2"
    assert b"PR16" not in a and b"PARM" not in b, (sorted(a), sorted(b))
    assert sorted(set(a) - {b"PARM"}) == sorted(set(b) - {b"PR16"}), (sorted(a), sorted(b))
    for tag in a:
        if tag != b"PARM":
            assert a[tag] == b[tag], "section %s differs" % tag.decode()
    (n,) = struct.unpack_from("<Q", a[b"PARM"], 0)
    n16, storage = struct.unpack_from("<QI", b[b"PR16"], 0)
    assert n16 == n and storage == want, (n16, n, storage, want)
    assert len(b[b"PR16"]) == 16 + 2 * n, len(b[b"PR16"])
    xs = struct.unpack_from("<%df" % n, a[b"PARM"], 8)
    hs = struct.unpack_from("<%dH" % n, b[b"PR16"], 16)
    rnd = fp16_bits if want == FP16 else bf16_bits
    bad = [(i, x, h, rnd(x)) for i, x, h in zip(range(n), xs, hs) if h != rnd(x)]
    assert not bad, "%d values not rounded to nearest even, first %s" % (len(bad), bad[:3])
    assert len(d16) < 0.55 * len(d32), (len(d16), len(d32))
    print("%s: %d parameters, %d bytes (fp32 stripped: %d, %.3f of it)"
          % (prec, n, len(d16), len(d32), len(d16) / len(d32)))


def poke(src, dst, value):
    d, s = sections(src)
    x = bytearray(d)
    at = d.index(b"PARM") + 16 + 8  # the first value, after the header and n
    struct.pack_into("<f", x, at, value)
    struct.pack_into("<I", x, len(x) - 4, crc32c(bytes(x[:-4])))
    open(dst, "wb").write(x)


def holdout(tasks, prefix):
    for i, line in enumerate(open(tasks), 1):
        t = json.loads(line)
        t = {"inputs": t["inputs"][:-1], "outputs": t["outputs"][:-1]}
        with open("%s%d.json" % (prefix, i), "w") as f:
            f.write(json.dumps(t) + "\n")


def compare_synth(full_path, half_path, tol, latent):
    F = json.load(open(full_path))["programs"]
    H = json.load(open(half_path))["programs"]
    assert len(F) == len(H) and F, (len(F), len(H))
    if tol == 0:  # the same parameters: the same programs and scores
        same = [(p["program"], p["score"]) for p in F] == [(p["program"], p["score"]) for p in H]
        assert same, "the programs or scores differ"
        print(len(F))
        return
    hs = {p["program"]: p["score"] for p in H}
    top = F[0]["program"]
    if latent and top in hs and abs(hs[top] - F[0]["score"]) > 10 * tol:
        print("flip")
        return
    for p in F:
        if p["program"] in hs:
            d = abs(hs[p["program"]] - p["score"])
            assert d <= tol, "%s: score %.6f vs %.6f" % (p["program"], p["score"], hs[p["program"]])
    k = 0
    while k + 1 < len(F) and F[k]["score"] - F[k + 1]["score"] >= 2 * tol:
        k += 1
    top_f = [p["program"] for p in F[:k]]
    top_h = [p["program"] for p in H[:k]]
    assert top_f == top_h, "the top %d differ:\n  %s\n  %s" % (k, top_f, top_h)
    print(k)


def compare_eval(full_path, half_path, decided):
    dec = [c == "1" for c in decided.split(",")]

    def rows(path):
        out = []
        for line in open(path):
            r = json.loads(line)
            r.pop("seconds", None)
            if not dec[r["line"] - 1]:
                r.pop("generalised", None)
            out.append(r)
        return out

    a, b = rows(full_path), rows(half_path)
    assert len(a) == len(b) == len(dec), (len(a), len(b), len(dec))
    for x, y in zip(a, b):
        assert x == y, "eval rows differ:\n  %s\n  %s" % (x, y)


def main(argv):
    cmd = argv[1]
    if cmd == "sections":
        check_sections(argv[2], argv[3], argv[4])
    elif cmd == "poke":
        poke(argv[2], argv[3], float(argv[4]))
    elif cmd == "holdout":
        holdout(argv[2], argv[3])
    elif cmd == "synth":
        compare_synth(argv[2], argv[3], float(argv[4]), argv[5:] == ["latent"])
    elif cmd == "eval":
        compare_eval(argv[2], argv[3], argv[4])
    else:
        sys.exit("unknown check " + cmd)


if __name__ == "__main__":
    main(sys.argv)
