#!/usr/bin/python3
"""Train inferbox's demo LLM: a tiny llama-architecture model on the King
James Version of Genesis and Exodus, written as a GGUF file that inferbox's
own engine (internal/runtime/llama) runs.

Everything is here: the text comes from Debian's bible-kjv package (the KJV
text's copyright has expired, see README.md), the tokenizer is trained
here (byte-pair merges stored as a SentencePiece-style "llama" vocabulary),
the forward and backward passes are written out by hand in numpy, and the
GGUF writer is at the bottom. No third-party weights, code or data sets are
downloaded.

    apt-get install bible-kjv python3-numpy
    /usr/bin/python3 examples/llm/train.py             # writes examples/llm/model/kjv-tiny.gguf
    /usr/bin/python3 examples/llm/train.py --check     # gradient check only

The run is deterministic for a given numpy/BLAS (seeded); on a 2-vCPU VM it
takes about 20 minutes.
"""

import argparse
import collections
import math
import re
import struct
import subprocess
import sys
import time

import numpy as np

# ---------------------------------------------------------------- text

def kjv_verses():
    """Genesis 1:1 to Exodus 40:38, one string per verse, references removed."""
    out = subprocess.run(["bible", "-f", "gen1:1-exo40:38"], stdin=subprocess.DEVNULL,
                         capture_output=True, text=True, check=True).stdout
    lines = []
    for line in out.splitlines():
        m = re.match(r"^\S+\d+:\d+ (.*)$", line)
        if m:
            lines.append(m.group(1).strip())
    return lines

# ---------------------------------------------------------------- tokenizer

SP = "\u2581"  # SentencePiece's visible space


def words_of(text):
    """Splits text (spaces already turned into SP, with the dummy prefix)
    into the units merges never cross: a word with its leading SP, or a
    newline."""
    return re.findall(SP + "?[^" + SP + "\n]+|\n|" + SP, text)


def train_bpe(text, vocab_size, n_fixed):
    """Byte-pair merges over words; returns the merged strings in order."""
    counts = collections.Counter(words_of(text))
    words = {w: list(w) for w in counts}
    chars = sorted({c for w in counts for c in w})
    merges = []
    seen = set(chars)
    while n_fixed + len(chars) + len(merges) < vocab_size:
        pairs = collections.Counter()
        for w, n in counts.items():
            s = words[w]
            for a, b in zip(s, s[1:]):
                pairs[a, b] += n
        if not pairs:
            break
        (a, b), _ = max(pairs.items(), key=lambda kv: (kv[1], kv[0]))
        ab = a + b
        for w in counts:
            s = words[w]
            i, t = 0, []
            while i < len(s):
                if i + 1 < len(s) and s[i] == a and s[i + 1] == b:
                    t.append(ab)
                    i += 2
                else:
                    t.append(s[i])
                    i += 1
            words[w] = t
        if ab not in seen:
            seen.add(ab)
            merges.append(ab)
    return chars, merges


class SPM:
    """The tokenizer as inferbox's engine (and llama.cpp's llm_tokenizer_spm)
    applies it: start from characters, repeatedly merge the adjacent pair
    whose concatenation is in the vocabulary with the highest score
    (leftmost on ties), bytes for characters not in the vocabulary."""

    def __init__(self, tokens, scores):
        self.id = {t: i for i, t in enumerate(tokens)}
        self.scores = scores
        self.cache = {}

    def encode_word(self, w):
        if w in self.cache:
            return self.cache[w]
        syms = list(w)
        while True:
            best, at = None, -1
            for i in range(len(syms) - 1):
                j = self.id.get(syms[i] + syms[i + 1])
                if j is not None and (best is None or self.scores[j] > best):
                    best, at = self.scores[j], i
            if at < 0:
                break
            syms[at:at + 2] = [syms[at] + syms[at + 1]]
        ids = []
        for s in syms:
            if s in self.id:
                ids.append(self.id[s])
            else:
                ids.extend(3 + b for b in s.encode("utf-8"))  # <0xNN>
        self.cache[w] = ids
        return ids

    def encode(self, text):
        return [i for w in words_of(SP + text.replace(" ", SP)) for i in self.encode_word(w)]

# ---------------------------------------------------------------- model

class Config:
    def __init__(self, vocab, dim=128, layers=4, heads=4, hidden=384, ctx=128):
        self.vocab, self.dim, self.layers, self.heads, self.hidden, self.ctx = vocab, dim, layers, heads, hidden, ctx
        self.hd = dim // heads


def init_params(c, rng, dtype):
    def mat(o, i, scale=1.0):
        return (rng.standard_normal((o, i)) * scale / math.sqrt(i)).astype(dtype)
    p = {"emb": (rng.standard_normal((c.vocab, c.dim)) * 0.02).astype(dtype),
         "out_norm": np.ones(c.dim, dtype)}
    resid = 1 / math.sqrt(2 * c.layers)
    for l in range(c.layers):
        p[f"{l}.attn_norm"] = np.ones(c.dim, dtype)
        p[f"{l}.ffn_norm"] = np.ones(c.dim, dtype)
        p[f"{l}.wq"] = mat(c.dim, c.dim)
        p[f"{l}.wk"] = mat(c.dim, c.dim)
        p[f"{l}.wv"] = mat(c.dim, c.dim)
        p[f"{l}.wo"] = mat(c.dim, c.dim, resid)
        p[f"{l}.gate"] = mat(c.hidden, c.dim)
        p[f"{l}.up"] = mat(c.hidden, c.dim)
        p[f"{l}.down"] = mat(c.dim, c.hidden, resid)
    return p


EPS = 1e-5


def rms_fwd(x, w):
    r = 1 / np.sqrt((x * x).mean(-1, keepdims=True) + EPS)
    return x * r * w, r


def rms_bwd(dy, x, w, r):
    dw = (dy * x * r).reshape(-1, x.shape[-1]).sum(0)
    dn = dy * w
    dx = r * dn - (r ** 3) * x * (dn * x).mean(-1, keepdims=True)
    return dx, dw


def rope_tables(c, T, dtype):
    inv = 10000.0 ** (-np.arange(0, c.hd, 2) / c.hd)       # (hd/2,)
    ang = np.arange(T)[:, None] * inv[None, :]              # (T, hd/2)
    return np.cos(ang).astype(dtype), np.sin(ang).astype(dtype)


def rope(x, cos, sin, inverse=False):
    """Rotates adjacent pairs (2i, 2i+1) of x (B,H,T,hd): llama.cpp's
    "normal" rope, which the engine applies to the llama architecture."""
    if inverse:
        sin = -sin
    x0, x1 = x[..., 0::2], x[..., 1::2]
    y = np.empty_like(x)
    y[..., 0::2] = x0 * cos - x1 * sin
    y[..., 1::2] = x0 * sin + x1 * cos
    return y


def forward_backward(p, c, tok, tgt, want_grad=True):
    B, T = tok.shape
    D, H, hd = c.dim, c.heads, c.hd
    dt = p["emb"].dtype
    cos, sin = rope_tables(c, T, dt)
    mask = np.triu(np.full((T, T), -np.inf, dt), 1)
    scale = 1 / math.sqrt(hd)
    x = p["emb"][tok]
    caches = []
    heads = lambda a: a.reshape(B, T, H, hd).transpose(0, 2, 1, 3)
    unheads = lambda a: a.transpose(0, 2, 1, 3).reshape(B, T, D)
    for l in range(c.layers):
        g = lambda n: p[f"{l}.{n}"]
        h, r1 = rms_fwd(x, g("attn_norm"))
        q = rope(heads(h @ g("wq").T), cos, sin)
        k = rope(heads(h @ g("wk").T), cos, sin)
        v = heads(h @ g("wv").T)
        s = q @ k.transpose(0, 1, 3, 2) * scale + mask
        s = np.exp(s - s.max(-1, keepdims=True))
        P = s / s.sum(-1, keepdims=True)
        o = unheads(P @ v)
        x1 = x + o @ g("wo").T
        h2, r2 = rms_fwd(x1, g("ffn_norm"))
        gt = h2 @ g("gate").T
        up = h2 @ g("up").T
        sg = 1 / (1 + np.exp(-gt))
        a = gt * sg * up
        x2 = x1 + a @ g("down").T
        caches.append((x, h, r1, q, k, v, P, o, x1, h2, r2, gt, up, sg, a))
        x = x2
    hf, rf = rms_fwd(x, p["out_norm"])
    logits = hf @ p["emb"].T
    logits = logits - logits.max(-1, keepdims=True)
    e = np.exp(logits)
    probs = e / e.sum(-1, keepdims=True)
    N = B * T
    flat = probs.reshape(N, -1)
    loss = -np.log(flat[np.arange(N), tgt.reshape(-1)] + 1e-12).mean()
    if not want_grad:
        return loss, None
    gr = {n: np.zeros_like(v) for n, v in p.items()}
    dlog = flat.copy()
    dlog[np.arange(N), tgt.reshape(-1)] -= 1
    dlog /= N
    gr["emb"] += dlog.T @ hf.reshape(N, D)
    dhf = (dlog @ p["emb"]).reshape(B, T, D)
    dx, gr["out_norm"] = rms_bwd(dhf, x, p["out_norm"], rf)
    for l in reversed(range(c.layers)):
        g = lambda n: p[f"{l}.{n}"]
        x0, h, r1, q, k, v, P, o, x1, h2, r2, gt, up, sg, a = caches[l]
        # feed-forward
        da = dx @ g("down")
        gr[f"{l}.down"] += dx.reshape(N, D).T @ a.reshape(N, -1)
        dup = da * gt * sg
        dgt = da * up * sg * (1 + gt * (1 - sg))
        gr[f"{l}.gate"] += dgt.reshape(N, -1).T @ h2.reshape(N, D)
        gr[f"{l}.up"] += dup.reshape(N, -1).T @ h2.reshape(N, D)
        dh2 = dgt @ g("gate") + dup @ g("up")
        dn, gr[f"{l}.ffn_norm"] = rms_bwd(dh2, x1, g("ffn_norm"), r2)
        dx = dx + dn
        # attention
        gr[f"{l}.wo"] += dx.reshape(N, D).T @ o.reshape(N, D)
        do = heads(dx @ g("wo"))
        dP = do @ v.transpose(0, 1, 3, 2)
        dv = P.transpose(0, 1, 3, 2) @ do
        dS = P * (dP - (dP * P).sum(-1, keepdims=True)) * scale
        dq = rope(dS @ k, cos, sin, inverse=True)
        dk = rope(dS.transpose(0, 1, 3, 2) @ q, cos, sin, inverse=True)
        dq, dk, dv = unheads(dq), unheads(dk), unheads(dv)
        hN = h.reshape(N, D)
        gr[f"{l}.wq"] += dq.reshape(N, D).T @ hN
        gr[f"{l}.wk"] += dk.reshape(N, D).T @ hN
        gr[f"{l}.wv"] += dv.reshape(N, D).T @ hN
        dh = dq @ g("wq") + dk @ g("wk") + dv @ g("wv")
        dn, gr[f"{l}.attn_norm"] = rms_bwd(dh, x0, g("attn_norm"), r1)
        dx = dx + dn
    np.add.at(gr["emb"], tok.reshape(-1), dx.reshape(N, D))
    return loss, gr


def grad_check():
    """Compares the hand-written gradients with central differences."""
    rng = np.random.default_rng(0)
    c = Config(vocab=11, dim=8, layers=2, heads=2, hidden=12, ctx=6)
    p = init_params(c, rng, np.float64)
    for n in p:
        p[n] = p[n] + rng.standard_normal(p[n].shape) * 0.1
    tok = rng.integers(0, 11, (2, 6))
    tgt = rng.integers(0, 11, (2, 6))
    _, gr = forward_backward(p, c, tok, tgt)
    worst = 0.0
    for n in p:
        for _ in range(4):
            idx = tuple(rng.integers(0, s) for s in p[n].shape)
            old = p[n][idx]
            p[n][idx] = old + 1e-6
            lp, _ = forward_backward(p, c, tok, tgt, False)
            p[n][idx] = old - 1e-6
            lm, _ = forward_backward(p, c, tok, tgt, False)
            p[n][idx] = old
            num = (lp - lm) / 2e-6
            err = abs(num - gr[n][idx]) / max(1e-8, abs(num) + abs(gr[n][idx]))
            worst = max(worst, err)
            if err > 1e-4:
                print(f"gradient mismatch {n}{idx}: numeric {num:.6g} analytic {gr[n][idx]:.6g}")
    print(f"gradient check: worst relative error {worst:.2e}")
    return worst < 1e-4

# ---------------------------------------------------------------- GGUF

GGUF_U32, GGUF_I32, GGUF_F32, GGUF_BOOL, GGUF_STR, GGUF_ARR = 4, 5, 6, 7, 8, 9
T_F32, T_F16 = 0, 1


def gguf_write(path, kvs, tensors, align=32):
    def s(x):
        b = x.encode("utf-8")
        return struct.pack("<Q", len(b)) + b

    def val(v):
        if isinstance(v, bool):
            return struct.pack("<I", GGUF_BOOL) + struct.pack("<B", v)
        if isinstance(v, str):
            return struct.pack("<I", GGUF_STR) + s(v)
        if isinstance(v, int):
            return struct.pack("<I", GGUF_U32) + struct.pack("<I", v)
        if isinstance(v, float):
            return struct.pack("<I", GGUF_F32) + struct.pack("<f", v)
        kind, items = v
        head = struct.pack("<I", GGUF_ARR) + struct.pack("<IQ", kind, len(items))
        if kind == GGUF_STR:
            return head + b"".join(s(x) for x in items)
        if kind == GGUF_F32:
            return head + np.asarray(items, "<f4").tobytes()
        return head + np.asarray(items, "<i4").tobytes()

    out = bytearray(b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kvs)))
    for k, v in kvs:
        out += s(k) + val(v)
    off, blobs = 0, []
    for name, arr in tensors:
        typ = T_F16 if arr.dtype == np.float16 else T_F32
        dims = list(reversed(arr.shape))  # GGUF lists the fastest dimension first
        out += s(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims)
        out += struct.pack("<IQ", typ, off)
        data = arr.astype("<f2" if typ == T_F16 else "<f4").tobytes()
        blobs.append(data)
        off += (len(data) + align - 1) // align * align
    out += b"\0" * (-len(out) % align)
    for data in blobs:
        out += data + b"\0" * (-len(data) % align)
    with open(path, "wb") as f:
        f.write(out)

# ---------------------------------------------------------------- training

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="examples/llm/model/kjv-tiny.gguf")
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--check", action="store_true")
    a = ap.parse_args()
    if not grad_check():
        sys.exit("gradient check failed")
    if a.check:
        return

    # The corpus is the verses as running text; every training window
    # starts at a verse, after BOS, as a prompt does.
    verses = kjv_verses()
    text = " ".join(verses)
    fixed = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
    chars, merges = train_bpe(SP + text.replace(" ", SP), 512, len(fixed))
    tokens = fixed + chars + merges
    scores = [0.0] * len(fixed) + [-1e6] * len(chars) + [-float(i) for i in range(len(merges))]
    types = [2, 3, 3] + [6] * 256 + [1] * (len(chars) + len(merges))  # unknown, control, byte, normal
    spm = SPM(tokens, scores)
    enc = [spm.encode(v) for v in verses]
    starts = np.cumsum([0] + [len(e) for e in enc[:-1]])
    ids = np.array([i for e in enc for i in e], np.int32)
    print(f"text: {len(verses)} verses, {len(text)} characters, {len(ids)} tokens, vocabulary {len(tokens)}", flush=True)
    c = Config(vocab=len(tokens))
    rng = np.random.default_rng(1611)
    p = init_params(c, rng, np.float32)
    nparams = sum(v.size for v in p.values())
    print(f"model: {nparams} parameters", flush=True)
    m = {n: np.zeros_like(v) for n, v in p.items()}
    vv = {n: np.zeros_like(v) for n, v in p.items()}
    b1, b2, wd = 0.9, 0.95, 0.01
    ids = np.concatenate([ids, np.full(c.ctx, 2, np.int32)])  # EOS padding after the last verse
    split = int(len(verses) * 0.95)
    train, held = starts[:split], starts[split:]

    def batch(pool, n):
        s = rng.choice(pool, n)
        w = np.stack([np.concatenate([[1], ids[i:i + c.ctx]]) for i in s])  # BOS + ctx tokens
        return w[:, :-1], w[:, 1:]

    t0 = time.time()
    for step in range(1, a.steps + 1):
        x, y = batch(train, a.batch)
        loss, gr = forward_backward(p, c, x, y)
        norm = math.sqrt(sum(float((g * g).sum()) for g in gr.values()))
        clip = min(1.0, 1.0 / (norm + 1e-6))
        warm = min(1.0, step / 100)
        lr = a.lr * warm * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * step / a.steps)))
        for n in p:
            g = gr[n] * clip
            m[n] = b1 * m[n] + (1 - b1) * g
            vv[n] = b2 * vv[n] + (1 - b2) * g * g
            mh = m[n] / (1 - b1 ** step)
            vh = vv[n] / (1 - b2 ** step)
            decay = wd * p[n] if p[n].ndim == 2 else 0
            p[n] -= (lr * (mh / (np.sqrt(vh) + 1e-8) + decay)).astype(np.float32)
        if step % 100 == 0 or step == 1:
            hx, hy = batch(held, 8)
            hl, _ = forward_backward(p, c, hx, hy, False)
            print(f"step {step}: loss {loss:.3f}, held-out {hl:.3f}, lr {lr:.2e}, {time.time() - t0:.0f}s", flush=True)

    kvs = [
        ("general.architecture", "llama"),
        ("general.name", "kjv-tiny"),
        ("general.description", "inferbox demo model: trained by examples/llm/train.py on the King James Version of Genesis and Exodus"),
        ("general.license", "CC0-1.0"),
        ("llama.context_length", c.ctx),
        ("llama.embedding_length", c.dim),
        ("llama.block_count", c.layers),
        ("llama.feed_forward_length", c.hidden),
        ("llama.attention.head_count", c.heads),
        ("llama.attention.head_count_kv", c.heads),
        ("llama.rope.dimension_count", c.hd),
        ("llama.attention.layer_norm_rms_epsilon", EPS),
        ("llama.rope.freq_base", 10000.0),
        ("tokenizer.ggml.model", "llama"),
        ("tokenizer.ggml.tokens", (GGUF_STR, tokens)),
        ("tokenizer.ggml.scores", (GGUF_F32, scores)),
        ("tokenizer.ggml.token_type", (GGUF_I32, types)),
        ("tokenizer.ggml.bos_token_id", 1),
        ("tokenizer.ggml.eos_token_id", 2),
        ("tokenizer.ggml.unknown_token_id", 0),
        ("tokenizer.ggml.add_bos_token", True),
    ]
    h16 = lambda n: p[n].astype(np.float16)
    ts = [("token_embd.weight", h16("emb")), ("output_norm.weight", p["out_norm"])]
    names = {"attn_norm": "attn_norm", "ffn_norm": "ffn_norm", "wq": "attn_q", "wk": "attn_k", "wv": "attn_v",
             "wo": "attn_output", "gate": "ffn_gate", "up": "ffn_up", "down": "ffn_down"}
    for l in range(c.layers):
        for n, g in names.items():
            arr = p[f"{l}.{n}"]
            ts.append((f"blk.{l}.{g}.weight", arr if arr.ndim == 1 else arr.astype(np.float16)))
    gguf_write(a.out, kvs, ts)
    print(f"wrote {a.out}", flush=True)

    # The greedy continuation with the weights as written (F16-rounded):
    # inferbox's engine must produce the same tokens (its test checks).
    q = {n: v.astype(np.float16).astype(np.float32) if v.ndim == 2 else v for n, v in p.items()}
    prompt = "In the beginning"
    seq = [1] + spm.encode(prompt)
    n0 = len(seq)
    while len(seq) < 48:
        x = np.array([seq])
        logits = forward_logits(q, c, x)
        seq.append(int(np.argmax(logits[0, -1])))
    pieces = [tokens[i].replace(SP, " ") for i in seq[n0:]]
    print(f"greedy ids after {prompt!r}: {seq[n0:]}")
    print(f"greedy text: {''.join(pieces)!r}")


def forward_logits(p, c, tok):
    """Logits for every position (the forward half of forward_backward)."""
    B, T = tok.shape
    D, H, hd = c.dim, c.heads, c.hd
    cos, sin = rope_tables(c, T, np.float32)
    mask = np.triu(np.full((T, T), -np.inf, np.float32), 1)
    heads = lambda a: a.reshape(B, T, H, hd).transpose(0, 2, 1, 3)
    unheads = lambda a: a.transpose(0, 2, 1, 3).reshape(B, T, D)
    x = p["emb"][tok]
    for l in range(c.layers):
        g = lambda n: p[f"{l}.{n}"]
        h, _ = rms_fwd(x, g("attn_norm"))
        q = rope(heads(h @ g("wq").T), cos, sin)
        k = rope(heads(h @ g("wk").T), cos, sin)
        v = heads(h @ g("wv").T)
        s = q @ k.transpose(0, 1, 3, 2) / math.sqrt(hd) + mask
        s = np.exp(s - s.max(-1, keepdims=True))
        x = x + unheads((s / s.sum(-1, keepdims=True)) @ v) @ g("wo").T
        h2, _ = rms_fwd(x, g("ffn_norm"))
        gt = h2 @ g("gate").T
        x = x + (gt / (1 + np.exp(-gt)) * (h2 @ g("up").T)) @ g("down").T
    hf, _ = rms_fwd(x, p["out_norm"])
    logits = hf @ p["emb"].T
    return logits


if __name__ == "__main__":
    main()
