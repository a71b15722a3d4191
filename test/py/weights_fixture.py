"""Fixtures for the published-weights tests: torchvision ResNets with random weights (and
random batch-norm statistics), saved as torch.save state dicts and as safetensors (written
here: Debian has no Python safetensors module), with a batch of images and the model's
logits and pooled features in eval mode.

    python3 weights_fixture.py OUT_DIR ARCH [SIZE]
"""
import json
import struct
import sys

import torch
import torchvision

DTYPES = {torch.float32: "F32", torch.int64: "I64"}


def save_safetensors(path, tensors, metadata=None):
    header = {}
    offset = 0
    blobs = []
    for name, t in tensors.items():
        t = t.detach().contiguous().cpu()
        data = t.numpy().tobytes()
        header[name] = {"dtype": DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    if metadata:
        header["__metadata__"] = metadata
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def main():
    out, arch = sys.argv[1], sys.argv[2]
    size = int(sys.argv[3]) if len(sys.argv) > 3 else 64
    torch.manual_seed(0)
    model = getattr(torchvision.models, arch)(num_classes=1000)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    model.eval()
    state = model.state_dict()
    torch.save(state, f"{out}/{arch}.pth")
    save_safetensors(f"{out}/{arch}.safetensors", state)
    images = torch.rand(4, 3, size, size)
    with torch.no_grad():
        logits = model(images)
        model.fc = torch.nn.Identity()
        features = model(images)
    save_safetensors(f"{out}/{arch}-expected.safetensors", {"images": images, "logits": logits, "features": features})


if __name__ == "__main__":
    main()
