#!/usr/bin/env python3
"""Mutation check of the test suite: flips a sign in one backward pass at a time (every layer kind,
the VAE's sampling stage), runs ae-core's tests, restores the file, and prints which tests caught
it. Every mutation must fail at least one test.

    python3 bench/mutations.py [LABEL ...]      # all, or only the named mutations
"""
import subprocess, sys, os
ROOT=os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
L='crates/ae-core/src/engine/layers/'
M=[
 ("dense (dW)", L+'dense.rs', "                WeightLayout::OutIn => matmul(\n                    gw,", "                WeightLayout::OutIn => matmul(\n                    &mut gw.iter().map(|v| -v).collect::<Vec<f32>>(),"),
 ("dense (bias)", L+'dense.rs', "                    *g += d;", "                    *g -= d;"),
 ("activation relu", L+'activation.rs', "Activation::Relu => map2(y, dy, dx, |y, dy| if y > 0.0 { dy } else { 0.0 }),", "Activation::Relu => map2(y, dy, dx, |y, dy| if y > 0.0 { -dy } else { 0.0 }),"),
 ("activation tanh", L+'activation.rs', "Activation::Tanh => map2(y, dy, dx, |y, dy| dy * (1.0 - y * y)),", "Activation::Tanh => map2(y, dy, dx, |y, dy| dy * (y * y - 1.0)),"),
 ("activation sigmoid", L+'activation.rs', "Activation::Sigmoid => map2(y, dy, dx, |y, dy| dy * y * (1.0 - y)),", "Activation::Sigmoid => map2(y, dy, dx, |y, dy| dy * y * (y - 1.0)),"),
 ("conv2d patch path (dW)", L+'conv.rs', "                    matmul(&mut s.dwmat, co, width, rows, d, true, &s.cols, false, true);", "                    matmul(&mut s.dwmat, co, width, rows, d, true, &s.cols, false, true);\n                    s.dwmat.iter_mut().for_each(|v| *v = -*v);"),
 ("conv2d direct path (dx)", L+'direct.rs', "                                axpy(&mut dx[xi..xi + len], go, &w[wr]);", "                                axpy(&mut dx[xi..xi + len], -go, &w[wr]);"),
 ("conv-transpose (dx)", L+'conv.rs', "                    &s.wmat,\n                    true,\n                    false,\n                );\n            }\n        }\n        if want_w {", "                    &s.wmat,\n                    true,\n                    false,\n                );\n                dx.data_mut()[r0 * ci..(r0 + rows) * ci].iter_mut().for_each(|v| *v = -*v);\n            }\n        }\n        if want_w {"),
 ("max-pool", L+'spatial.rs', "*d = if hit { gv } else { 0.0 };", "*d = if hit { -gv } else { 0.0 };"),
 ("upsample", L+'spatial.rs', "                            *d += v;", "                            *d -= v;"),
 ("gaussian (VAE)", 'crates/ae-core/src/model/vae.rs', "dlv[j] = dz[j] * eps[j] * 0.5 * (0.5 * lv[j]).exp();", "dlv[j] = -dz[j] * eps[j] * 0.5 * (0.5 * lv[j]).exp();"),
]
only = sys.argv[1:]  # optional labels
for label, f, old, new in M:
    if only and label not in only: continue
    p=os.path.join(ROOT,f); src=open(p).read()
    if src.count(old)!=1:
        print(f"{label}: pattern found {src.count(old)} times, skipped", flush=True); continue
    open(p,'w').write(src.replace(old,new))
    try:
        r=subprocess.run(['cargo','test','--release','-p','ae-core','--no-fail-fast','--lib','--tests'],cwd=ROOT,capture_output=True,text=True,timeout=900)
        out=r.stdout+r.stderr
        failed=sorted(set(l.split()[1] for l in out.splitlines() if l.startswith('test ') and l.endswith('FAILED')))
        comp = 'error[' in out
        print(f"{label}: {'COMPILE ERROR' if comp else (str(len(failed))+' failed: '+', '.join(failed[:6]))}", flush=True)
    finally:
        open(p,'w').write(src)
