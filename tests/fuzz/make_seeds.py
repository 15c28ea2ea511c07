#!/usr/bin/env python3
"""Write the seed corpora of tests/fuzz/corpus/ (numpy and the gmle command).

    python3 tests/fuzz/make_seeds.py PATH/TO/gmle

Seeds are small valid files of each kind and the edge cases of
/work/shared/BAD_INPUTS.md cases 22 (models), 24 and 25 (.npy), 27 (CSV),
plus structured inputs of the batch-ingest harness. libFuzzer grows the
corpora from here; scripts/fuzz.sh never writes into them. Rerunning this
script rewrites the files it makes (names seed-*) and leaves the others.
"""
import io
import os
import struct
import subprocess
import sys
import tempfile
import zlib

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")


def put(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


def npy_bytes(a, version=None):
    b = io.BytesIO()
    if version is None:
        np.save(b, a)
    else:
        np.lib.format.write_array(b, a, version=version)
    return b.getvalue()


def raw_npy(header, payload=b"", major=1, minor=0, align=64):
    """A .npy file with a hand-written header dict."""
    h = header.encode("utf-8")
    pre = 10 if major == 1 else 12
    pad = (-(pre + len(h) + 1)) % align
    h = h + b" " * pad + b"\n"
    lenf = struct.pack("<H", len(h)) if major == 1 else struct.pack("<I", len(h))
    return b"\x93NUMPY" + bytes([major, minor]) + lenf + h + payload


def npy_seeds():
    rng = np.random.default_rng(6)
    x = rng.normal(size=(4, 3))
    put("npy", "f8-c", npy_bytes(x))
    put("npy", "f4-c", npy_bytes(x.astype("<f4")))
    put("npy", "f8-fortran", npy_bytes(np.asfortranarray(rng.normal(size=(5, 3)))))
    put("npy", "f4-big-endian", npy_bytes(x.astype(">f4")))
    put("npy", "f8-big-fortran", npy_bytes(np.asfortranarray(x.astype(">f8"))))
    put("npy", "f2", npy_bytes(x.astype("<f2")))
    put("npy", "scalar", npy_bytes(np.float64(2.5)))
    put("npy", "empty-0xD", npy_bytes(np.zeros((0, 3))))
    put("npy", "vector", npy_bytes(np.arange(6, dtype="<f8")))
    put("npy", "nan-inf", npy_bytes(np.array([[1.0, np.nan], [np.inf, -np.inf]])))
    put("npy", "v2", npy_bytes(x, version=(2, 0)))
    put("npy", "v3-utf8", raw_npy("{'descr': '<f8', 'fortran_order': False, "
                                  "'shape': (1,), } # \u00e9", struct.pack("<d", 1.0),
                                  major=3))
    put("npy", "legacy-align16", raw_npy("{'descr': '<f8', 'fortran_order': False, "
                                         "'shape': (2,), }", struct.pack("<2d", 1, 2),
                                         align=16))
    put("npy", "labels-i8", npy_bytes(np.array([0, 2, 1, 2, 0], dtype="<i8")))
    put("npy", "labels-i4-col", npy_bytes(np.array([[3], [1], [3]], dtype="<i4")))
    put("npy", "labels-u1", npy_bytes(np.array([1, 0, 1], dtype="u1")))
    put("npy", "labels-bool", npy_bytes(np.array([True, False, True])))
    put("npy", "labels-U", npy_bytes(np.array(["cat", "dog", "\u00e9t\u00e9"])))
    put("npy", "labels-S", npy_bytes(np.array([b"a", b"bc"])))
    put("npy", "labels-f8-whole", npy_bytes(np.array([1.0, 2.0, 7.0])))
    put("npy", "labels-i8-big", npy_bytes(np.array([5, -3], dtype=">i8")))
    # Header attacks (BAD_INPUTS 24).
    good = "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2), }"
    pay = struct.pack("<4d", 1, 2, 3, 4)
    put("npy", "bad-magic", b"\x93NUMPX" + raw_npy(good, pay)[6:])
    put("npy", "version-4", raw_npy(good, pay)[:6] + b"\x04\x00" + raw_npy(good, pay)[8:])
    put("npy", "v2-huge-header-len", b"\x93NUMPY\x02\x00\xf0\xff\xff\xff")
    put("npy", "header-too-long", raw_npy("{'descr': '<f8', 'fortran_order': False, "
                                          "'shape': (1,), }" + " " * 10050,
                                          struct.pack("<d", 1), major=2))
    put("npy", "missing-key", raw_npy("{'descr': '<f8', 'shape': (2, 2), }", pay))
    put("npy", "extra-key", raw_npy("{'descr': '<f8', 'fortran_order': False, "
                                    "'shape': (2, 2), 'x': 1, }", pay))
    put("npy", "object", raw_npy("{'descr': '|O', 'fortran_order': False, "
                                 "'shape': (2,), }", b"\x80\x04N."))
    put("npy", "descr-ixy", raw_npy("{'descr': '<ixy', 'fortran_order': False, "
                                    "'shape': (2,), }", pay))
    put("npy", "negative-shape", raw_npy("{'descr': '<f8', 'fortran_order': False, "
                                         "'shape': (-1, 2), }", pay))
    put("npy", "float-shape", raw_npy("{'descr': '<f8', 'fortran_order': False, "
                                      "'shape': (2.0, 2), }", pay))
    put("npy", "shape-overflow", raw_npy("{'descr': '<f8', 'fortran_order': False, "
                                         "'shape': (4611686018427387904, 4), }", pay))
    put("npy", "shape-past-end", raw_npy("{'descr': '<f8', 'fortran_order': False, "
                                         "'shape': (1000, 2), }", pay))
    put("npy", "truncated-data", npy_bytes(x)[:-5])
    put("npy", "structured", raw_npy("{'descr': [('a', '<f8')], 'fortran_order': "
                                     "False, 'shape': (1,), }", pay[:8]))
    put("npy", "3d", npy_bytes(np.zeros((2, 1, 2))))


def csv_seeds():
    put("csv", "header-label", b"a,b,label\n1.5,2,cat\n-3e2,0.25,dog\n4,5,cat\n")
    put("csv", "no-header", b"1,2,3\n4,5,6\n7,8,9\n")
    put("csv", "semicolon", b"x;y\n1;2\n3;4\n")
    put("csv", "tab", b"x\ty\tlabel\n1\t2\t0\n3\t4\t1\n")
    put("csv", "spaces", b"  1   2\t3\n 4 5   6\n")
    put("csv", "ragged", b"1,2,3\n4,5\n")
    put("csv", "empty-field", b"1,,3\n4,5,6\n")
    put("csv", "nan-inf", b"nan,INF,-Infinity\n1,2,3\n")
    put("csv", "erange", b"1e400,1\n2,3\n")
    put("csv", "underflow", b"1e-400,1\n2,3\n")
    put("csv", "hex-float", b"0x1.8p1,0X10\n-0x.1p-3,1\n")
    put("csv", "bom-crlf", b"\xef\xbb\xbfa,b\r\n1,2\r\n3,4\r\n")
    put("csv", "trailing-delim", b"1,2,\n3,4,\n")
    put("csv", "nul", b"1,2\n3\x004\n")
    put("csv", "quoted", b'"a,b",c\n"1",2\n"x ""y""",3\n')
    put("csv", "unterminated-quote", b'a,b\n"1,2\n')
    put("csv", "blank-lines", b"\n1,2\n\n3,4\n\n")
    put("csv", "labels-text", b"cat\ndog\n\"a, b\"\ncat\n\n")
    put("csv", "labels-blank-middle", b"cat\n\ndog\n")
    put("csv", "labels-ints", b"0\n1\n2\n10\n")
    put("csv", "long-line", (",".join(["1.25"] * 600) + "\n").encode() * 2)
    put("csv", "label-first", b"label,x,y\n0,1,2\n1,3,4\n")
    put("csv", "many-digits", b"0.1234567890123456789,123456789012345678901234567890\n1,2\n")
    put("csv", "exponent-forms", b"1E5,.5,5.,+3,-0\n1e-5,1e+5,0.0e0,00012,-.0\n")


def run(gmle, *args):
    subprocess.run([gmle, *args, "-q"], check=True)


def model_seeds(gmle, tmp):
    rng = np.random.default_rng(22)
    x = np.vstack([rng.normal(size=(30, 2)), rng.normal(size=(30, 2)) + 3])
    lab = ["cat"] * 30 + ["dog"] * 30
    data = os.path.join(tmp, "x.npy")
    np.save(data, x)
    with open(os.path.join(tmp, "y.txt"), "w") as f:
        f.write("\n".join(lab) + "\n")
    with open(os.path.join(tmp, "yi.txt"), "w") as f:
        f.write("\n".join(str(i // 20) for i in range(60)) + "\n")
    models = {}
    for cov in ("full", "diag", "spherical", "tied"):
        out = os.path.join(tmp, cov + ".npz")
        run(gmle, "fit", data, "--labels", os.path.join(tmp, "y.txt"), "--cov", cov,
            "-o", out)
        models[cov] = open(out, "rb").read()
        put("model", cov, models[cov])
    out = os.path.join(tmp, "int.npz")
    run(gmle, "fit", data, "--labels", os.path.join(tmp, "yi.txt"), "-o", out)
    put("model", "int-classes-3", open(out, "rb").read())
    out = os.path.join(tmp, "one.npz")
    run(gmle, "fit", data, "-o", out)
    put("model", "one-class", open(out, "rb").read())
    # Written by numpy alone: the minimal members.
    b = io.BytesIO()
    np.savez(b, means=np.array([[0.0, 1.0]]), covariances=np.array([[[2.0, 0.5], [0.5, 1.0]]]),
             priors=np.array([1.0]), covariance_type=np.array("full"),
             format_version=np.array(1))
    put("model", "numpy-minimal", b.getvalue())
    b = io.BytesIO()
    np.savez(b, means=np.array([[0.0], [1.0]], dtype=">f8"),
             covariances=np.array([1.0, 2.0], dtype=">f4"),
             priors=np.array([0.5, 0.5]), covariance_type=np.array("spherical"),
             format_version=np.array(1, dtype=">i2"), classes=np.array([b"a", b"b"]))
    put("model", "numpy-big-endian", b.getvalue())
    # Damage (BAD_INPUTS 22).
    full = models["full"]
    put("model", "truncated-half", full[: len(full) // 2])
    put("model", "truncated-eocd", full[:-3])
    flipped = bytearray(full)
    flipped[len(full) // 3] ^= 0x10
    put("model", "bit-flip", bytes(flipped))
    b = io.BytesIO()
    np.savez(b, means=np.array([[0.0]]), covariances=np.array([[[1.0]]]),
             priors=np.array([1.0]), covariance_type=np.array("full"),
             format_version=np.array(99))
    put("model", "version-99", b.getvalue())
    b = io.BytesIO()
    np.savez_compressed(b, means=np.array([[0.0]]), covariances=np.array([[[1.0]]]),
                        priors=np.array([1.0]), covariance_type=np.array("full"),
                        format_version=np.array(1))
    put("model", "compressed", b.getvalue())
    b = io.BytesIO()
    np.savez(b, means=np.array([[0.0, 0.0]]), covariances=np.array([[[1.0, 2.0], [2.0, 1.0]]]),
             priors=np.array([1.0]), covariance_type=np.array("full"),
             format_version=np.array(1))
    put("model", "not-pd", b.getvalue())


def mixture_seeds():
    """Mixture models (issue 13), written by numpy as gmle writes them."""
    rng = np.random.default_rng(13)
    K, D = 3, 2
    em = dict(em_n_iter=np.uint64(3), em_converged=True, em_lower_bound=-2.5,
              em_history=np.array([-3.0, -2.6, -2.5]), em_n_reseeded=np.uint64(0),
              em_n_init=np.uint64(1), em_best_init=np.uint64(0), em_mode="soft",
              em_init="kmeans++", em_reg_covar=1e-6, em_n_rows=60.0)
    spd = lambda n: np.array([a @ a.T + np.eye(D) for a in rng.normal(size=(n, D, D))])
    w = np.array([0.5, 0.3, 0.2])
    b = io.BytesIO()
    np.savez(b, weights=w, means=rng.normal(size=(K, D)), covariances=rng.uniform(0.5, 2, (K, D)),
             precisions_cholesky=np.ones((K, D)), covariance_type="diag", format_version=2,
             counts=np.array([60.0]), rows=np.array([60], dtype=np.uint64), **em)
    put("model", "mixture-unsupervised-diag", b.getvalue())
    b = io.BytesIO()
    np.savez(b, weights=np.array([w, w[::-1]]), means=rng.normal(size=(2, K, D)),
             covariances=spd(2 * K).reshape(2, K, D, D), covariance_type="full",
             priors=np.array([0.5, 0.5]), classes=np.array(["cat", "dog"]), format_version=2)
    put("model", "mixture-per-class-full", b.getvalue())
    b = io.BytesIO()
    np.savez(b, weights=np.array([w, w]), means=rng.normal(size=(2, K, D)),
             covariances=spd(2), covariance_type="tied")
    put("model", "mixture-init-tied", b.getvalue())
    b = io.BytesIO()
    np.savez(b, weights=np.array([0.5, 0.4]), means=np.zeros((2, 1)),
             covariances=np.ones(2), covariance_type="spherical")
    put("model", "mixture-weights-sum", b.getvalue())


def stats_seeds(gmle, tmp):
    data = os.path.join(tmp, "x.npy")
    y = os.path.join(tmp, "y.txt")
    out = os.path.join(tmp, "s.st")
    run(gmle, "stats", data, "--labels", y, "-o", out)
    full = open(out, "rb").read()
    put("stats", "full-names", full)
    run(gmle, "stats", data, "--labels", y, "--diag", "-o", out)
    put("stats", "diag-names", open(out, "rb").read())
    run(gmle, "stats", data, "-o", out)
    one = open(out, "rb").read()
    put("stats", "one-class", one)
    run(gmle, "stats", data, "--labels", y, "--classes", "ant,cat,dog", "-o", out)
    put("stats", "empty-class", open(out, "rb").read())
    # Version 1: no names section (N = 0), reserved field 0.
    names_len = struct.unpack("<Q", full[56:64])[0]
    body = bytearray(full[: len(full) - 4 - names_len])
    body[8:12] = struct.pack("<I", 1)
    body[56:64] = struct.pack("<Q", 0)
    put("stats", "version-1", bytes(body) + struct.pack("<I", zlib.crc32(body)))
    put("stats", "truncated", full[: len(full) // 2])
    bad = bytearray(one)
    bad[12:16] = b"\x01\x02\x03\x04"
    put("stats", "wrong-bom", bytes(bad))
    bad = bytearray(one)
    bad[8:12] = struct.pack("<I", 3)
    put("stats", "version-3", bytes(bad))


def ingest_seeds():
    # Header (features, classes/mode/merge), then batches of
    # op, [fault], rows, stride, label mode, label class, scale, offset,
    # seed (2), fault row, fault column.
    def batch(op, rows, fault=None, stride=0, lmode=0, scale=20, off=0, seed=(1, 2)):
        b = [op] + ([fault] if op & 8 else [])
        return bytes(b + [rows, stride, lmode, 1, scale, off, seed[0], seed[1], 3, 1])

    put("ingest", "clean-f64", bytes([3, 2]) + batch(0, 40) + batch(0, 17, stride=2))
    put("ingest", "clean-f32-weights", bytes([4, 1]) + batch(3, 30) + batch(3, 5, off=3))
    put("ingest", "big-batch", bytes([8, 3]) + batch(0, 250) + batch(1, 200, off=4))
    put("ingest", "diag-merge", bytes([5, 4 | 8 | 2]) + batch(0, 20) + batch(2, 20) + batch(1, 9))
    put("ingest", "offset-1e4-f32", bytes([2, 0]) + batch(1, 47, scale=16, off=3) * 3)
    put("ingest", "tiny-scale", bytes([2, 0]) + batch(0, 30, scale=0, off=4) + batch(1, 30, scale=40))
    for k in range(1, 13):
        put("ingest", "fault-%02d" % k, bytes([3, 2]) + batch(0, 10) + batch(8, 12, fault=k)
            + batch(4, 6))
    put("ingest", "empty-batches", bytes([1, 0]) + batch(0, 0) + batch(8, 0, fault=10) + batch(0, 3))


def main():
    gmle = sys.argv[1] if len(sys.argv) > 1 else "gmle"
    npy_seeds()
    csv_seeds()
    ingest_seeds()
    mixture_seeds()
    with tempfile.TemporaryDirectory() as tmp:
        model_seeds(gmle, tmp)
        stats_seeds(gmle, tmp)


if __name__ == "__main__":
    main()
