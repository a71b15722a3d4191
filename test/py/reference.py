"""PyTorch reference computations for the tests. Usage:
    python3 reference.py CASE DIR '{"json": "args"}'
reads DIR/in.safetensors, writes DIR/out.safetensors."""
import json
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(__file__))
import st  # noqa: E402

torch.set_num_threads(1)


def with_grads(inputs, names):
    for n in names:
        if n in inputs and inputs[n] is not None:
            inputs[n].requires_grad_(True)


def conv2d(t, a):
    with_grads(t, ["x", "w", "b"])
    y = F.conv2d(t["x"], t["w"], t.get("b"), stride=a["stride"], padding=a["padding"], dilation=a["dilation"], groups=a["groups"])
    (y * t["gy"]).sum().backward()
    out = {"y": y, "gx": t["x"].grad, "gw": t["w"].grad}
    if "b" in t:
        out["gb"] = t["b"].grad
    return out


def batch_norm(t, a):
    with_grads(t, ["x", "weight", "bias"])
    rm, rv = t["rm"].clone(), t["rv"].clone()
    y = F.batch_norm(t["x"], rm, rv, t["weight"], t["bias"], training=a["training"], momentum=a["momentum"], eps=a["eps"])
    (y * t["gy"]).sum().backward()
    return {"y": y, "gx": t["x"].grad, "gweight": t["weight"].grad, "gbias": t["bias"].grad, "rm": rm, "rv": rv}


def grid_sample(t, a):
    with_grads(t, ["x", "grid"])
    y = F.grid_sample(t["x"], t["grid"], mode=a["mode"], padding_mode=a["padding"], align_corners=a["align"])
    (y * t["gy"]).sum().backward()
    return {"y": y, "gx": t["x"].grad, "ggrid": t["grid"].grad}


def affine_grid(t, a):
    return {"grid": F.affine_grid(t["theta"], a["size"], align_corners=a["align"])}


def cross_entropy(t, a):
    with_grads(t, ["logits"])
    loss = F.cross_entropy(t["logits"], t["target"], label_smoothing=a.get("smoothing", 0.0), reduction=a.get("reduction", "mean"))
    loss.backward(torch.ones_like(loss))
    return {"loss": loss, "glogits": t["logits"].grad}


def resnet(t, a):
    import torchvision

    model = getattr(torchvision.models, a["arch"])(num_classes=a["classes"])
    state = {k[len("state.") :]: v for k, v in t.items() if k.startswith("state.")}
    model.load_state_dict(state, strict=True)
    model.train(a["training"])
    x = t["x"].requires_grad_(True)
    y = model(x)
    (y * t["gy"]).sum().backward()
    out = {"y": y, "gx": x.grad}
    for name, p in model.named_parameters():
        out["grad." + name] = p.grad
    for name, b in model.named_buffers():
        out["buffer." + name] = b
    return out


def roundtrip(t, a):
    # Echo every tensor back doubled (numbers) / negated (bool), plus tensors of our own.
    out = {}
    for k, v in t.items():
        out[k] = ~v if v.dtype == torch.bool else v * 2
    out["py_f32"] = torch.arange(12, dtype=torch.float32).reshape(3, 4) / 7
    out["py_bf16"] = torch.tensor([1.5, -2.25, 3.0], dtype=torch.bfloat16)
    out["py_i64"] = torch.tensor([[-(2**40), 7]], dtype=torch.int64)
    out["py_empty"] = torch.zeros(0, 3)
    return out


def nt_xent(t, a):
    # The paper's form: all 2N views in one similarity matrix, diagonal masked out; times 2,
    # the official code's scale (the sum of the two directions' means).
    with_grads(t, ["z1", "z2"])
    n = t["z1"].shape[0]
    z = F.normalize(torch.cat([t["z1"], t["z2"]]), dim=1)
    sim = z @ z.T / a["temperature"]
    sim = sim.masked_fill(torch.eye(2 * n, dtype=torch.bool), float("-inf"))
    targets = torch.cat([torch.arange(n) + n, torch.arange(n)])
    loss = 2 * F.cross_entropy(sim, targets)
    loss.backward()
    return {"loss": loss, "gz1": t["z1"].grad, "gz2": t["z2"].grad}


def distill(t, a):
    with_grads(t, ["student"])
    temp = a["temperature"]
    soft = -(F.softmax(t["teacher"] / temp, dim=1) * F.log_softmax(t["student"] / temp, dim=1)).sum(1).mean()
    loss = (1 - a["alpha"]) * F.cross_entropy(t["student"], t["labels"]) + a["alpha"] * soft
    loss.backward()
    return {"loss": loss, "gstudent": t["student"].grad}


def lars(t, a):
    # SimCLR's LARS, written out: decay into the gradient, trust ratio, momentum of the scaled step.
    params = {k[2:]: v.clone() for k, v in t.items() if k.startswith("p.")}
    bufs = {k: torch.zeros_like(v) for k, v in params.items()}
    for step in range(a["steps"]):
        for k, w in params.items():
            g = t["g%d.%s" % (step, k)].clone()
            excluded = w.dim() <= 1
            if not excluded:
                g = g + a["wd"] * w
                wn, gn = w.norm(), g.norm()
                trust = a["eta"] * wn / gn if (wn > 0 and gn > 0) else torch.tensor(1.0, dtype=w.dtype)
                scaled = a["lr"] * trust
            else:
                scaled = a["lr"]
            bufs[k] = a["momentum"] * bufs[k] + scaled * g
            params[k] = w - bufs[k]
    out = {"p." + k: v for k, v in params.items()}
    out.update({"m." + k: v for k, v in bufs.items()})
    return out


def schedule(t, a):
    import math

    peak = a["base"] * a["batch"] / 256 if a["scaling"] == "linear" else a["base"] * math.sqrt(a["batch"])
    lrs = []
    for step in range(a["steps"]):
        if step < a["warmup"]:
            lrs.append(peak * step / a["warmup"])
        else:
            lrs.append(0.5 * peak * (1 + math.cos(math.pi * (step - a["warmup"]) / (a["total"] - a["warmup"]))))
    return {"lr": torch.tensor(lrs, dtype=torch.float64)}


CASES = {f.__name__: f for f in [conv2d, batch_norm, grid_sample, affine_grid, cross_entropy, resnet, roundtrip, nt_xent, distill, lars, schedule]}

if __name__ == "__main__":
    case, folder = sys.argv[1], sys.argv[2]
    args = json.loads(sys.argv[3]) if len(sys.argv) > 3 else {}
    tensors, _ = st.load(os.path.join(folder, "in.safetensors"))
    result = CASES[case](tensors, args)
    st.save(os.path.join(folder, "out.safetensors"), {k: v for k, v in result.items() if v is not None}, {"torch": torch.__version__})
