"""The LayerNorm alone: Keras against its own gradient in float32, eager ops and XLA (13 layers, forward and backward)."""
import time, numpy as np, tensorflow as tf, tf_keras as keras
keras.mixed_precision.set_global_policy("mixed_bfloat16")
EPS = 1e-12
x0 = tf.cast(tf.random.normal([32, 24, 384]), tf.bfloat16)
dy0 = tf.cast(tf.random.normal([32, 24, 384]), tf.bfloat16)
ln = keras.layers.LayerNormalization(epsilon=EPS); ln.build([None, None, 384])
gamma, beta = ln.gamma, ln.beta

def ln_forward(x, g, b):
    x = tf.cast(x, tf.float32)
    mean, var = tf.nn.moments(x, axes=[-1], keepdims=True)
    rstd = tf.math.rsqrt(var + EPS)
    xhat = (x - mean) * rstd
    return xhat * g + b, xhat, rstd

def ln_backward(dy, xhat, rstd, g):
    dy = tf.cast(dy, tf.float32)
    dg = tf.reduce_sum(dy * xhat, axis=[0, 1])
    db = tf.reduce_sum(dy, axis=[0, 1])
    dxhat = dy * g
    dx = rstd * (dxhat - tf.reduce_mean(dxhat, -1, keepdims=True) - xhat * tf.reduce_mean(dxhat * xhat, -1, keepdims=True))
    return dx, dg, db

def make(jit):
    fwd = tf.function(ln_forward, jit_compile=True) if jit else ln_forward
    bwd = tf.function(ln_backward, jit_compile=True) if jit else ln_backward
    @tf.custom_gradient
    def f(x, g, b):
        y, xhat, rstd = fwd(x, g, b)
        def grad(dy):
            dx, dg, db = bwd(dy, xhat, rstd, g)
            return tf.cast(dx, x.dtype), dg, db
        return tf.cast(y, x.dtype), grad
    return f

def step_fn(layer_fn):
    @tf.function
    def step(x, dy):
        with tf.GradientTape() as tape:
            tape.watch(x)
            h = x
            for _ in range(13):
                h = layer_fn(h)
            loss = tf.reduce_sum(tf.cast(h, tf.float32) * tf.cast(dy, tf.float32))
        return tape.gradient(loss, [x, gamma, beta])
    return step

variants = {
    "keras": step_fn(lambda h: ln(h)),
    "custom": step_fn(lambda h, f=make(False): f(h, gamma, beta)),
    "custom_xla": step_fn(lambda h, f=make(True): f(h, gamma, beta)),
}
ref = None
for name, s in variants.items():
    out = s(x0, dy0)
    out = [o.numpy() if not isinstance(o, tf.IndexedSlices) else o for o in out]
    if ref is None: ref = out
    print(name, "max dx diff", float(np.max(np.abs(out[0].astype(np.float32) - ref[0].astype(np.float32)))), "dg", float(np.max(np.abs(out[1]-ref[1]))))
for rnd in range(3):
    for name, s in variants.items():
        for _ in range(3): s(x0, dy0)
        t = time.perf_counter()
        for _ in range(20): r = s(x0, dy0); r[0].numpy()
        print(rnd, name, "ms per layer fwd+bwd", 1000 * (time.perf_counter() - t) / 20 / 13)
