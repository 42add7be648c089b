#!/usr/bin/env python3
"""Writes small valid inputs for each fuzz target into fuzz/corpus/TARGET/, so that libFuzzer starts
from files that get past the magic numbers (standard library only)."""
import gzip
import os
import struct

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def put(target, name, data):
    d = os.path.join(root, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


idx = bytes([0, 0, 8, 3]) + struct.pack(">III", 2, 3, 3) + bytes(range(18))
put("idx", "images", idx)
put("idx", "images.gz", gzip.compress(idx))
put("idx", "labels", bytes([0, 0, 8, 1]) + struct.pack(">I", 3) + bytes([1, 2, 3]))
put("idx", "floats", bytes([0, 0, 0x0D, 2]) + struct.pack(">II", 1, 2) + struct.pack(">ff", 1.5, -2.0))


def npy(descr, shape, payload):
    h = "{'descr': '%s', 'fortran_order': False, 'shape': %s, }" % (descr, shape)
    h += " " * ((64 - (10 + len(h) + 1) % 64) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h)) + h.encode() + payload


put("npy", "u8", npy("|u1", "(2, 3)", bytes(range(6))))
put("npy", "f4", npy("<f4", "(1, 2)", struct.pack("<ff", 0.5, 1.0)))
put("npy", "f8img", npy("<f8", "(1, 2, 2)", struct.pack("<4d", 0, 1, 2, 3)))
put("csv", "header", b"a,b,c\n1,2,3\n4,5.5,6\n")
put("csv", "plain", b"1,2\n3,NaN\n,4\n")
put("config", "settings", b'data = "fashion-mnist"\nhidden = [256, 64]\nactivation = "relu"\n'
    b'output-activation = "sigmoid"\ntied = false\ninit = "auto"\nloss = "mse"\noptimizer = "adam"\n'
    b'lr = 0.001\nmomentum = 0.9\nbatch-size = 256\nepochs = 20\nseed = 0\nthreads = 2\n'
    b'weight-decay = "none"\nval-fraction = 0.1\nsparsity = "kl:0.05:3"\nnoise = "mask:0.3"\n')
